// Package webhook receives the webhook events NanoMDM and MicroMDM post for
// every device report, verifies their signature, and hands each device's
// answer to the command mdmctl waits for to a Collector.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

// SignatureHeader carries base64(HMAC-SHA256(key, body)) when the server
// has a webhook HMAC key.
const SignatureHeader = "X-Hmac-Signature"

// Event is a webhook event as NanoMDM v0.9.0 and MicroMDM post it.
type Event struct {
	Topic       string       `json:"topic"`
	EventID     string       `json:"event_id"`
	CreatedAt   time.Time    `json:"created_at"`
	Acknowledge *Acknowledge `json:"acknowledge_event"`
	Checkin     *Checkin     `json:"checkin_event"`
}

// Acknowledge is a device's report on a command (topic mdm.Connect).
type Acknowledge struct {
	UDID         string            `json:"udid"`
	EnrollmentID string            `json:"enrollment_id"`
	Status       string            `json:"status"`
	CommandUUID  string            `json:"command_uuid"`
	RawPayload   []byte            `json:"raw_payload"` // base64 in JSON
	URLParams    map[string]string `json:"url_params"`
}

// Checkin is a check-in message (Authenticate, TokenUpdate, CheckOut).
type Checkin struct {
	UDID         string `json:"udid"`
	EnrollmentID string `json:"enrollment_id"`
	RawPayload   []byte `json:"raw_payload"`
}

// DecodeEvent parses one event's JSON.
func DecodeEvent(data []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return Event{}, fmt.Errorf("webhook event: %v", err)
	}
	if e.Topic == "" {
		return Event{}, errors.New("webhook event has no topic")
	}
	return e, nil
}

// Response is the device's answer the event carries: its raw result plist
// when present, else what the event's own fields say.
func (a *Acknowledge) Response() (apple.Response, error) {
	if len(a.RawPayload) > 0 {
		r, err := apple.DecodeResponse(a.RawPayload)
		if err != nil {
			return apple.Response{}, err
		}
		return r, nil
	}
	if a.Status == "" {
		return apple.Response{}, errors.New("acknowledge event has neither raw_payload nor status")
	}
	return apple.Response{Status: a.Status, CommandUUID: a.CommandUUID, UDID: a.UDID, EnrollmentID: a.EnrollmentID}, nil
}

// Sign returns the signature header value for body.
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// VerifySignature checks header against body in constant time.
func VerifySignature(key, body []byte, header string) error {
	if header == "" {
		return errors.New("missing " + SignatureHeader)
	}
	got, err := base64.StdEncoding.DecodeString(header)
	if err != nil {
		return errors.New("malformed " + SignatureHeader)
	}
	m := hmac.New(sha256.New, key)
	m.Write(body)
	if !hmac.Equal(got, m.Sum(nil)) {
		return errors.New("bad " + SignatureHeader)
	}
	return nil
}
