// Package simplemdm is the adapter for SimpleMDM (simplemdm.com), whose
// REST API locks one device per request and says nothing afterwards about
// what became of the lock.
//
// Read from SimpleMDM's API reference (https://api.simplemdm.com, sections
// Authentication, Errors, Pagination, Devices: List all, Lock):
//
//   - HTTP Basic with the secret API key as the user name and an empty
//     password, over HTTPS only. The server is https://a.simplemdm.com; the
//     admin puts it in the context (mdmctl has no per-kind default URL).
//   - Errors are an HTTP status with {"errors": [{"title": "..."}]}, e.g.
//     "object not found".
//   - GET /api/v1/devices?search=X lists devices whose name, UDID, serial
//     number, IMEI, MAC address or phone number matches X, with cursor
//     pagination: limit (1 to 100, default 10), starting_after (the last
//     id of the previous page) and "has_more" in the reply. Each device is
//     {"type": "device", "id": 121, "attributes": {...}} with status,
//     unique_identifier (the UDID), serial_number, product_name (the model
//     identifier, "MacBookAir10,1"), os_version and processor_architecture.
//   - POST /api/v1/devices/{id}/lock with form fields message, phone_number
//     and pin answers 202 Accepted with no body: no command id. The pin is
//     "required for macOS devices, not supported by iOS, a 6-digit number".
//
// What mdmctl makes of it:
//
//   - Targets stay UDIDs (or serials, resolved to UDIDs): each is looked up
//     by search, matched exactly on unique_identifier (serial_number for a
//     serial; the search matches names too), and locked by its SimpleMDM
//     id. A UDID SimpleMDM does not list, or lists as not enrolled, is
//     failed before anything is sent. The API has no bulk look-up by UDID:
//     for many targets mdmctl reads the whole device list (100 a page)
//     while that costs fewer requests than a search each, and searches
//     concurrently (cfg.Concurrency) for the rest.
//   - A Mac without a PIN is failed before sending (SimpleMDM requires it);
//     an iPhone or iPad is locked without the PIN, with a warning (SimpleMDM
//     takes none for iOS, and the guard already notes the device ignores it).
//   - SimpleMDM has no command status endpoint: the driver sets NoStatus
//     (the lock refuses --wait) and NoInformation (no DeviceInformation
//     preflight: the guard weighs SimpleMDM's inventory instead).
//   - Retries: nothing makes a resent lock safe. The API has no idempotency
//     key and no status to look at first, and a second lock on a Mac sets
//     a second PIN. So a lock request is resent only while no attempt can
//     have reached SimpleMDM (refused connections, 429 and 503 answers);
//     after a lost reply or a 5xx, or in a resumed run whose earlier attempt
//     may have landed (MayHaveLanded), the device is reported unknown and
//     never sent again. Reads (the device searches) are retried freely.
//   - 429: Retry-After is honoured (server.Retry). Some public clients read
//     an X-RateLimit-Reset header (an epoch time) instead; when a 429 has
//     that and no Retry-After, it is turned into one.
//
// Not confirmed at the source, and so modelled by the stand-in as the
// nearest documented shape: the status and title SimpleMDM answers for a
// missing PIN, a malformed PIN or a PIN sent to an iPhone (422 is assumed),
// its 401 and 403 bodies, its rate limit (public clients speak of about one
// request a second, or 60 a minute) and its rate-limit headers, and the
// API key permission names (public clients say "Devices: write" for lock).
package simplemdm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// Paths of SimpleMDM's API under the server URL.
const (
	DevicesPath = "/api/v1/devices"
)

// LockPath is the lock action of the device with SimpleMDM id id.
func LockPath(id string) string { return DevicesPath + "/" + url.PathEscape(id) + "/lock" }

// Permission is what a 401 or 403 names: the API key and the access it
// needs (per public clients' documentation, not SimpleMDM's own).
const Permission = "check the API key (SimpleMDM: Settings, API): it needs the Devices permission, with write access to lock"

// MissingPIN is why a Mac without a PIN is not sent the lock.
const MissingPIN = "not sent: SimpleMDM locks a Mac only with a six-digit PIN; give one with MDMCTL_PIN or --pin-file, or let mdmctl make one per Mac with --pin-generate --pin-escrow FILE"

// Client talks to one SimpleMDM account.
type Client struct {
	// BaseURL is https://a.simplemdm.com, or a stand-in; it may carry a
	// path prefix.
	BaseURL *url.URL
	// APIKey is the account's secret API key, sent as the Basic user.
	APIKey string
	HTTP   *http.Client
	// Retry governs every request; lock requests are resent only while no
	// attempt may have reached SimpleMDM (see Enqueue).
	Retry server.Retry
	// Workers bounds concurrent device look-ups (cfg.Concurrency).
	Workers int
	// Warn, when set, tells the user what the adapter does differently
	// (a PIN left off for an iPhone).
	Warn func(string)

	mu          sync.Mutex
	known       map[string]*lookup // by UDID or "serial:" + serial, upper case
	warnPINOnce sync.Once
}

var _ server.Server = (*Client)(nil)

// errorReply is SimpleMDM's error body.
type errorReply struct {
	Errors []struct {
		Title string `json:"title"`
	} `json:"errors"`
}

// text is the titles as one line.
func (e errorReply) text() string {
	var parts []string
	for _, x := range e.Errors {
		if t := strings.TrimSpace(x.Title); t != "" {
			parts = append(parts, t)
		}
	}
	return strings.Join(parts, "; ")
}

// errorText reads SimpleMDM's error body; ok is false for a body that is not
// one (a proxy's page, an empty body).
func errorText(resp *http.Response, body []byte) (string, bool) {
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var e errorReply
	if mediaType != "application/json" || json.Unmarshal(body, &e) != nil || e.text() == "" {
		return "", false
	}
	return e.text(), true
}

// checkReply classifies a reply that is not the expected success: 401 and
// 403 name the key's permission, the rest as server.CheckStatus does with
// SimpleMDM's own words when it gave them.
func (c *Client) checkReply(resp *http.Response, body []byte, ok ...int) error {
	origin := server.Origin(c.BaseURL)
	status := resp.StatusCode
	for _, s := range ok {
		if status == s {
			return nil
		}
	}
	text, isSimpleMDM := errorText(resp, body)
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		why := Permission
		if isSimpleMDM {
			why = text + " (" + Permission + ")"
		}
		return &server.HTTPError{Server: origin, Status: status, Body: why}
	}
	switch {
	case !isSimpleMDM:
		return server.CheckStatus(origin, status, body)
	case status == http.StatusTooManyRequests:
		return &server.UnavailableError{Server: origin, Err: fmt.Errorf("HTTP 429: %s (SimpleMDM's rate limit)", text)}
	case status >= 500:
		return &server.UnavailableError{Server: origin, Err: fmt.Errorf("HTTP %d: %s", status, text)}
	}
	return &server.HTTPError{Server: origin, Status: status, Body: text}
}

func (c *Client) newRequest(ctx context.Context, method, path string, body string) (*http.Request, error) {
	u, err := server.JoinPath(c.BaseURL, path)
	if err != nil {
		return nil, err
	}
	var r *http.Request
	if body == "" {
		r, err = http.NewRequestWithContext(ctx, method, u.String(), nil)
	} else {
		r, err = http.NewRequestWithContext(ctx, method, u.String(), strings.NewReader(body))
		if err == nil {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if err != nil {
		return nil, err
	}
	r.Header.Set("Accept", "application/json")
	r.SetBasicAuth(c.APIKey, "")
	return r, nil
}

// lockForm is the lock action's form: only the values given, and the PIN
// only when the device takes one.
func lockForm(lock apple.DeviceLock, withPIN bool) string {
	v := url.Values{}
	if lock.Message != "" {
		v.Set("message", lock.Message)
	}
	if lock.PhoneNumber != "" {
		v.Set("phone_number", lock.PhoneNumber)
	}
	if withPIN && lock.PIN != "" {
		v.Set("pin", lock.PIN)
	}
	return v.Encode()
}

// lockReplyLimit bounds the lock reply: empty on success, a short error
// body otherwise.
const lockReplyLimit = 64 << 10

// NotResent is why a device whose lock may have reached SimpleMDM is
// reported unknown rather than sent again.
const NotResent = "SimpleMDM has no command status to look at and no idempotency key, so mdmctl does not send the lock again " +
	"(a second lock on a Mac sets a second PIN): check the device in the SimpleMDM console before locking it again"

// Enqueue locks the one device of req. It looks the device up first (its
// SimpleMDM id, whether it is a Mac), fails it unsent when SimpleMDM does
// not know it or it is a Mac without a PIN, then posts the lock once:
// resent only after attempts SimpleMDM provably turned away.
func (c *Client) Enqueue(ctx context.Context, req server.Request) (*server.Result, error) {
	switch {
	case len(req.IDs) != 1:
		return nil, fmt.Errorf("SimpleMDM locks one device per request, not %d", len(req.IDs))
	case req.IsInformation():
		return nil, errors.New("SimpleMDM cannot send DeviceInformation: its API has a lock action, no command of mdmctl's own")
	}
	id := req.IDs[0]
	if req.MayHaveLanded {
		return one(id, server.Unknown, "an earlier run's lock may have reached SimpleMDM; "+NotResent, ""), nil
	}
	d, err := c.Device(ctx, id)
	switch {
	case err != nil:
		return nil, err
	case d == nil:
		return one(id, server.Failed, "not sent: SimpleMDM has no enrolled device with this UDID", ""), nil
	case d.Attributes.Status != "" && d.Attributes.Status != "enrolled":
		return one(id, server.Failed, fmt.Sprintf("not sent: SimpleMDM lists this device as %q, not enrolled", d.Attributes.Status), ""), nil
	}
	ref := "SimpleMDM device " + d.ID.String()
	platform := d.platform()
	withPIN := true
	switch {
	case platform == apple.PlatformMacOS && req.Lock.PIN == "":
		return one(id, server.Failed, MissingPIN, ref), nil
	case req.Lock.PIN != "" && platform != apple.PlatformMacOS && platform != apple.PlatformUnknown:
		withPIN = false
		c.warnPINOnce.Do(func() {
			if c.Warn != nil {
				c.Warn(fmt.Sprintf("SimpleMDM takes no PIN for iOS and iPadOS devices (%s is %s): their locks go without it, and they unlock with their own passcode", id, article(platform)))
			}
		})
	}
	form := lockForm(req.Lock, withPIN)
	newReq := func(ctx context.Context, _ bool) (*http.Request, error) {
		return c.newRequest(ctx, http.MethodPost, LockPath(d.ID.String()), form)
	}
	retry := c.Retry
	retry.OnlyUnlanded = true
	resp, body, sent, err := retry.Do(ctx, c.HTTP, newReq, lockReplyLimit)
	if err != nil {
		if server.MayBeQueued(err) {
			return one(id, server.Unknown, "the lock may have reached SimpleMDM, and no answer came back ("+err.Error()+"); "+NotResent, ref), nil
		}
		return nil, err
	}
	switch status := resp.StatusCode; {
	case status == http.StatusAccepted || status == http.StatusOK || status == http.StatusNoContent:
		return one(id, server.Queued, "", ref), nil
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return nil, c.checkReply(resp, body)
	case status >= 500 && status != http.StatusServiceUnavailable:
		// A gateway or a crash after SimpleMDM may have taken the lock.
		return one(id, server.Unknown, fmt.Sprintf("SimpleMDM answered HTTP %d, which may come after the lock was taken; %s", status, NotResent), ref), nil
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		return nil, sent.Unanswered(c.checkReply(resp, body))
	}
	text, ok := errorText(resp, body)
	if !ok {
		text = server.Excerpt(body)
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
		return one(id, server.Failed, "not locked: SimpleMDM no longer knows device "+d.ID.String()+" ("+text+")", ref), nil
	case http.StatusUnprocessableEntity:
		return one(id, server.Failed, "not locked: SimpleMDM refused the lock: "+text, ref), nil
	}
	return one(id, server.Failed, fmt.Sprintf("not locked: SimpleMDM answered HTTP %d: %s", resp.StatusCode, text), ref), nil
}

func one(id string, o server.Outcome, why, ref string) *server.Result {
	return &server.Result{Devices: []server.DeviceResult{{ID: id, Outcome: o, Error: why, Reference: ref}}}
}

func article(p apple.Platform) string {
	switch p {
	case apple.PlatformIOS:
		return "an iOS device"
	case apple.PlatformIPadOS:
		return "an iPadOS device"
	}
	return "a " + string(p) + " device"
}
