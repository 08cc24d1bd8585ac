// Package simdevice simulates Apple devices on the MDM wire: it enrolls with
// a signed Authenticate and TokenUpdate, polls the server when woken,
// receives commands and answers them as a real device would.
package simdevice

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/smallstep/pkcs7"
	"howett.net/plist"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

// Facts describe a simulated device; they are also what the sandbox shows
// and feeds to the guard.
type Facts struct {
	UDID      string
	Name      string
	Platform  apple.Platform
	Model     string // model identifier, e.g. MacBookAir10,1
	OSVersion string
	Serial    string
}

// Received is one command as the device got it.
type Received struct {
	Raw     []byte
	Command apple.ParsedCommand
	Answer  apple.Response
}

// Device is one simulated enrolled device.
type Device struct {
	Facts    Facts
	Behavior Behavior
	// ServerURL is the MDM check-in and command URL (NanoMDM: base + "/mdm").
	ServerURL string
	Identity  Identity
	HTTP      *http.Client
	Topic     string

	mu       sync.Mutex
	received []Received
	seen     map[string]int // CommandUUID -> deliveries answered so far
	checkin  sync.Mutex     // one poll session at a time, as a device does
}

// New returns a device that will talk to serverURL with an identity from ca.
func New(f Facts, b Behavior, serverURL string, ca *CA, hc *http.Client) (*Device, error) {
	id, err := ca.Issue(f.UDID)
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Device{Facts: f, Behavior: b, ServerURL: serverURL, Identity: id, HTTP: hc,
		Topic: "com.apple.mgmt.External.mdmctl-sandbox", seen: map[string]int{}}, nil
}

// Enroll sends Authenticate then TokenUpdate, as a device installing an
// enrollment profile does.
func (d *Device) Enroll(ctx context.Context) error {
	auth := map[string]any{
		"MessageType": "Authenticate",
		"UDID":        d.Facts.UDID,
		"Topic":       d.Topic,
	}
	if d.Facts.Serial != "" {
		auth["SerialNumber"] = d.Facts.Serial
	}
	if d.Facts.Name != "" {
		auth["DeviceName"] = d.Facts.Name
	}
	if d.Facts.Model != "" {
		auth["ProductName"] = d.Facts.Model
	}
	if d.Facts.OSVersion != "" {
		auth["OSVersion"] = d.Facts.OSVersion
	}
	if _, err := d.put(ctx, "application/x-apple-aspen-mdm-checkin", auth); err != nil {
		return fmt.Errorf("%s: Authenticate: %w", d.Facts.UDID, err)
	}
	token := map[string]any{
		"MessageType": "TokenUpdate",
		"UDID":        d.Facts.UDID,
		"Topic":       d.Topic,
		"Token":       []byte("token-" + d.Facts.UDID),
		"PushMagic":   "magic-" + d.Facts.UDID,
	}
	if _, err := d.put(ctx, "application/x-apple-aspen-mdm-checkin", token); err != nil {
		return fmt.Errorf("%s: TokenUpdate: %w", d.Facts.UDID, err)
	}
	return nil
}

// CheckIn runs one poll session, as after a push: report Idle, then run
// and answer each command the server hands over, until it has none.
// Offline devices do nothing.
func (d *Device) CheckIn(ctx context.Context) error {
	if d.Behavior.Offline() {
		return nil
	}
	d.checkin.Lock()
	defer d.checkin.Unlock()
	report := map[string]any{"Status": apple.StatusIdle, "UDID": d.Facts.UDID}
	for {
		body, err := d.put(ctx, "application/x-apple-aspen-mdm; charset=UTF-8", report)
		if err != nil {
			return fmt.Errorf("%s: check-in: %w", d.Facts.UDID, err)
		}
		if len(bytes.TrimSpace(body)) == 0 {
			return nil
		}
		resp := d.Execute(body)
		resp.UDID = d.Facts.UDID
		report = responseMap(resp)
	}
}

// Poll checks in every interval until ctx ends, as a device woken by
// pushes would; check-in errors are retried at the next tick.
func (d *Device) Poll(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		_ = d.CheckIn(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Execute runs one command plist through the behavior and records it.
func (d *Device) Execute(raw []byte) apple.Response {
	cmd, err := apple.ParseCommand(raw)
	if err != nil {
		return apple.Response{Status: apple.StatusCommandFormatError, CommandUUID: cmd.CommandUUID,
			ErrorChain: []apple.ErrorChainItem{{ErrorCode: 12001, ErrorDomain: pinErrorDomain, LocalizedDescription: err.Error()}}}
	}
	d.mu.Lock()
	seen := d.seen[cmd.CommandUUID]
	d.seen[cmd.CommandUUID] = seen + 1
	d.mu.Unlock()
	resp := d.Behavior.Answer(cmd, seen)
	d.mu.Lock()
	d.received = append(d.received, Received{Raw: append([]byte(nil), raw...), Command: cmd, Answer: resp})
	d.mu.Unlock()
	return resp
}

// Received returns the commands delivered so far, oldest first.
func (d *Device) Received() []Received {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Received(nil), d.received...)
}

func responseMap(r apple.Response) map[string]any {
	// Through plist so the keys are exactly the response type's.
	data, _ := r.Encode()
	var m map[string]any
	_, _ = plist.Unmarshal(data, &m)
	return m
}

// put PUTs a signed plist to the server and returns the reply body.
func (d *Device) put(ctx context.Context, contentType string, v any) ([]byte, error) {
	body, err := plist.Marshal(v, plist.XMLFormat)
	if err != nil {
		return nil, err
	}
	sig, err := d.sign(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, d.ServerURL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Mdm-Signature", sig)
	resp, err := d.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(reply)))
	}
	return reply, nil
}

// sign makes the Mdm-Signature header: a detached CMS signature of the
// body by the identity, base64-encoded.
func (d *Device) sign(body []byte) (string, error) {
	sd, err := pkcs7.NewSignedData(body)
	if err != nil {
		return "", err
	}
	if err := sd.AddSigner(d.Identity.Cert, d.Identity.Key, pkcs7.SignerInfoConfig{}); err != nil {
		return "", err
	}
	sd.Detach()
	der, err := sd.Finish()
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(der), nil
}
