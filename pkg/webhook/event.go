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
// has a webhook HMAC key (NanoMDM's -webhook-hmac-key).
const SignatureHeader = "X-Hmac-Signature"

// Event topics: mdm.Connect carries an Acknowledge, the check-in topics
// (these and others, e.g. mdm.UserAuthenticate) carry a Checkin.
const (
	TopicConnect      = "mdm.Connect"
	TopicAuthenticate = "mdm.Authenticate"
	TopicTokenUpdate  = "mdm.TokenUpdate"
	TopicCheckOut     = "mdm.CheckOut"
)

// Event is a webhook event as NanoMDM v0.9.0 and MicroMDM post it.
type Event struct {
	Topic       string       `json:"topic"`
	EventID     string       `json:"event_id,omitempty"`
	CreatedAt   time.Time    `json:"created_at"`
	Acknowledge *Acknowledge `json:"acknowledge_event,omitempty"`
	Checkin     *Checkin     `json:"checkin_event,omitempty"`
}

// IDs is NanoMDM's own view of the enrollment that reported; MicroMDM
// sends no such object.
type IDs struct {
	// ID is the enrollment ID commands are queued to: the UDID or
	// EnrollmentID for a device channel, "<device>:<user>" for a user channel.
	ID       string `json:"id"`
	ParentID string `json:"parent_id,omitempty"`
	// Type is "Device", "User", "Shared iPad", "User Enrollment (Device)"
	// or "User Enrollment".
	Type string `json:"type"`
}

// Acknowledge is a device's report on a command (topic mdm.Connect); an
// Idle poll is one too, without a command UUID.
type Acknowledge struct {
	UDID         string            `json:"udid,omitempty"`
	EnrollmentID string            `json:"enrollment_id,omitempty"`
	IDs          *IDs              `json:"ids,omitempty"`
	Status       string            `json:"status"`
	CommandUUID  string            `json:"command_uuid,omitempty"`
	RawPayload   []byte            `json:"raw_payload"` // the device's plist; base64 in JSON
	URLParams    map[string]string `json:"url_params,omitempty"`
}

// Checkin is a check-in message (Authenticate, TokenUpdate, CheckOut, ...).
type Checkin struct {
	UDID             string            `json:"udid,omitempty"`
	EnrollmentID     string            `json:"enrollment_id,omitempty"`
	IDs              *IDs              `json:"ids,omitempty"`
	RawPayload       []byte            `json:"raw_payload"`
	URLParams        map[string]string `json:"url_params,omitempty"`
	TokenUpdateTally *int              `json:"token_update_tally,omitempty"`
}

// DecodeEvent parses one event's JSON. Unknown fields are ignored so that
// newer servers keep working.
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

// Response is the device's answer the event carries; it fails for an event
// that is not a command report.
func (e Event) Response() (apple.Response, error) {
	if e.Acknowledge == nil {
		return apple.Response{}, fmt.Errorf("webhook event %q carries no command response (no acknowledge_event)", e.Topic)
	}
	return e.Acknowledge.Response()
}

// Response is the device's answer: its raw result plist when present
// (identifiers the plist lacks are taken from the event), else what the
// event's own fields say.
func (a *Acknowledge) Response() (apple.Response, error) {
	if len(a.RawPayload) == 0 {
		if a.Status == "" {
			return apple.Response{}, errors.New("acknowledge event has neither raw_payload nor status")
		}
		return a.fieldsResponse(), nil
	}
	r, err := apple.DecodeResponse(a.RawPayload)
	if err != nil {
		return apple.Response{}, err
	}
	if r.CommandUUID == "" {
		r.CommandUUID = a.CommandUUID
	}
	if r.UDID == "" && r.EnrollmentID == "" {
		r.UDID, r.EnrollmentID = a.UDID, a.EnrollmentID
	}
	return r, nil
}

// fieldsResponse is the answer as the server summarized it, without the
// device's details (MessageResult, ErrorChain).
func (a *Acknowledge) fieldsResponse() apple.Response {
	return apple.Response{Status: a.Status, CommandUUID: a.CommandUUID, UDID: a.UDID, EnrollmentID: a.EnrollmentID}
}

// Sign returns the signature header value for body, as NanoMDM computes it.
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// VerifySignature checks an X-Hmac-Signature header against body. The
// comparison is constant-time so the header cannot be guessed byte by byte.
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
