// Package kandji is the adapter for Kandji (now Iru Endpoint Management),
// whose API locks one device per request with a PIN it makes itself.
//
// Read from Kandji's API documentation (api-docs.kandji.io, as carried by
// the OpenAPI file of MScottBlake/kandji-go-sdk, api/openapi.yaml) and
// Kandji's own examples (kandji-inc/support: api-tools, Okta Workflows):
//
//   - The server URL is the tenant's API host, https://TENANT.api.kandji.io
//     (US) or https://TENANT.api.eu.kandji.io (EU), from Settings > Access;
//     the API token goes as Bearer. 401: a wrong, revoked or expired token;
//     403: a token without the endpoint's permission.
//   - POST /api/v1/devices/{device_id}/action/lock, an optional JSON body
//     {"Message": ..., "PhoneNumber": ...}; for a Mac Kandji makes a six
//     digit unlock PIN and answers 200 {"PIN": "496406"}. It cannot be
//     given one. 400 "Command already running": a lock is already pending
//     for the device; other 400s: "Command is not allowed for current
//     device", "This device is already locked.".
//   - GET /api/v1/devices (limit at most 300, offset) lists devices:
//     device_id, serial_number (its filter matches partial serials),
//     platform ("Mac", "iPhone", "iPad", "AppleTV"), os_version and a
//     marketing model name, but no UDID and no model identifier.
//   - GET /api/v1/devices/{device_id}/details: general.platform,
//     general.os_version, hardware_overview.model_identifier
//     ("MacBookAir10,1"), .processor_name ("Apple M1"), .udid, .serial_number.
//   - GET /api/v1/devices/{device_id}/commands (limit, offset): the MDM
//     commands sent to the device, {"commands": {"count", "next",
//     "previous", "results": [{"uuid", "request_type", "status",
//     "date_requested", "date_completed", "error_chain", ...}]}}, status
//     1 pending, 2 running, 3 completed, 4 failed, 5 NotNow.
//   - GET /api/v1/devices/{device_id}/secrets/unlockpin: {"pin": ...}, the
//     Mac's unlock PIN, read again when a lock's reply was lost.
//   - Rate limit: 10,000 requests per hour per customer.
//
// Unconfirmed (no source shows them; the adapter reads them leniently):
// the shape of error bodies (a JSON string, a list, or {"detail": ...}); a
// 429 reply and its Retry-After; the order of the command list; that a
// lock shows in it as request_type "DeviceLock" as soon as the lock
// request is answered; the keys inside error_chain; that
// hardware_overview.udid is the MDM UDID (it is what Kandji shows as the
// device's UDID).
//
// Targets are UDIDs (or Kandji device IDs). The API finds no device by
// UDID: the adapter lists the tenant once and reads device details until
// it has found every UDID asked for (one request per device at worst),
// caching what it reads for the session.
//
// What makes a resend safe: Kandji's reply names no command and Kandji has
// no idempotency key, so before any resend of a lock that may have reached
// it (a lost reply, a 5xx, a resumed run's MayHaveLanded) the adapter reads
// the device's command list; a lock there is the earlier attempt's (see
// findLock and landedWindow), and nothing is sent again. A 429 or 503 took
// nothing: those are resent after Retry-After. Requests are paced under
// the hourly limit (Pacer).
package kandji

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mdmctl/mdmctl/pkg/server"
)

// Paths of Kandji's API under the server URL.
const (
	DevicesPath = "/api/v1/devices"
)

// Permissions names the API token permissions the adapter uses, as
// Kandji's token settings group its endpoints (the group names are
// confirmed; the exact labels of the lock, commands and PIN entries are not).
const Permissions = "Device list (GET /devices), Device details (GET /devices/{device_id}/details), " +
	"Device actions: Lock Device (POST /devices/{device_id}/action/lock) and Get Device Commands " +
	"(GET /devices/{device_id}/commands), Device secrets: Get Unlock PIN (GET /devices/{device_id}/secrets/unlockpin)"

// Client talks to one Kandji tenant. Its methods are safe for concurrent use.
type Client struct {
	BaseURL *url.URL
	// Token is a Kandji API token, sent as Bearer.
	Token string
	HTTP  *http.Client
	// Retry resends a lock only after Kandji's command list shows no lock
	// from an earlier attempt (see Enqueue).
	Retry server.Retry
	// Workers bounds the lookups in flight at once (0: 4).
	Workers int
	// Pace spaces requests under Kandji's hourly limit (nil: no pacing).
	Pace *Pacer
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	inv   inventory
	mu    sync.Mutex
	locks map[lockKey]*sentLock // what Enqueue sent, for Watch
}

var _ server.Server = (*Client)(nil)

type lockKey struct{ commandUUID, id string }

// sentLock is a lock Kandji took: where to look for its outcome.
type sentLock struct {
	deviceID string
	// ref is Kandji's command UUID, once known.
	ref string
	// since bounds the command list: a lock requested before it is not ours.
	since time.Time
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) workers() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return 4
}

// lockBody is the lock action's JSON body.
type lockBody struct {
	Message     string `json:"Message,omitempty"`
	PhoneNumber string `json:"PhoneNumber,omitempty"`
}

var (
	errLanded     = errors.New("lock already held by Kandji")
	errUnverified = errors.New("unverified")
)

// landedWindow bounds how far back a resumed run (MayHaveLanded) takes a
// lock in Kandji's command list for its own: an earlier run's attempt.
const landedWindow = 24 * time.Hour

// skew allows for Kandji's clock being behind ours when matching a lock's
// date_requested to the moment it was sent.
const skew = 2 * time.Minute

// Enqueue locks each of req.IDs (one per request, as Kandji's API takes
// them; the driver's Limits give one per call).
//
// A resend could lock a Mac twice with two PINs, so before resending
// after an attempt that may have reached Kandji, and before the first
// attempt of a resumed run's command (MayHaveLanded), Enqueue reads the
// device's command list: a lock there (pending, or since the first
// attempt) is the earlier attempt's, reported queued, its PIN read back
// from Kandji's unlock PIN; no lock there means Kandji took none, and it
// sends. When the list cannot be read, nothing is sent again: the device
// may be locked, the outcome unknown. After attempts Kandji provably
// turned away (429, 503) it resends without looking.
func (c *Client) Enqueue(ctx context.Context, req server.Request) (*server.Result, error) {
	switch {
	case len(req.IDs) != 1:
		return nil, fmt.Errorf("one device per Kandji lock request, not %d", len(req.IDs))
	case req.IsInformation():
		return nil, errors.New("no DeviceInformation through Kandji: its API sends no command of mdmctl's")
	}
	ids, err := c.resolve(ctx, req.IDs)
	if err != nil {
		return nil, fmt.Errorf("looking the devices up in Kandji: %w; nothing was sent", err)
	}
	id := req.IDs[0]
	deviceID, ok := ids[id]
	if !ok {
		return &server.Result{Devices: []server.DeviceResult{{ID: id, Outcome: server.Failed,
			Error: "not sent: Kandji knows no device with this UDID or device ID"}}}, nil
	}
	d, err := c.lockOne(ctx, req, id, deviceID)
	if err != nil {
		return nil, err
	}
	return &server.Result{Devices: []server.DeviceResult{d}}, nil
}

// lockOne sends the lock for one device, Kandji's deviceID.
func (c *Client) lockOne(ctx context.Context, req server.Request, id, deviceID string) (server.DeviceResult, error) {
	origin := server.Origin(c.BaseURL)
	start := c.now()
	if req.MayHaveLanded {
		found, err := c.findLock(ctx, deviceID, start.Add(-landedWindow))
		switch {
		case err != nil:
			return server.DeviceResult{}, &server.MaybeQueuedError{Err: &server.UnavailableError{Server: origin, Err: fmt.Errorf(
				"an earlier run's lock may have reached Kandji, and reading the device's commands to tell failed (%w); not sent again, to never lock it twice", err)}}
		case found != nil:
			return c.landed(ctx, req, id, deviceID, found, "an earlier run's lock is in Kandji's command list"), nil
		}
	}
	u, err := server.JoinPath(c.BaseURL, DevicesPath+"/"+url.PathEscape(deviceID)+"/action/lock")
	if err != nil {
		return server.DeviceResult{}, err
	}
	body, err := json.Marshal(lockBody{Message: req.Lock.Message, PhoneNumber: req.Lock.PhoneNumber})
	if err != nil {
		return server.DeviceResult{}, err
	}
	var (
		sent     int
		found    *command
		checkErr error
	)
	newReq := func(ctx context.Context, landed bool) (*http.Request, error) {
		if landed {
			f, err := c.findLock(ctx, deviceID, start.Add(-skew))
			switch {
			case err != nil:
				checkErr = err
				return nil, errUnverified
			case f != nil:
				found = f
				return nil, errLanded
			}
		}
		if err := c.Pace.Wait(ctx); err != nil {
			return nil, err
		}
		sent++
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		r.Header.Set("Content-Type", "application/json")
		c.headers(r)
		return r, nil
	}
	resp, reply, attempts, err := c.Retry.Do(ctx, c.HTTP, newReq, 64<<10)
	switch {
	case errors.Is(err, errLanded):
		return c.landed(ctx, req, id, deviceID, found, "an earlier attempt's reply was lost, and Kandji's command list holds its lock"), nil
	case errors.Is(err, errUnverified):
		return server.DeviceResult{}, &server.MaybeQueuedError{Err: &server.UnavailableError{Server: origin, Elapsed: c.now().Sub(start), Attempts: sent, Err: fmt.Errorf(
			"no usable reply, and reading the device's commands from Kandji to tell whether the lock landed failed (%v); not sent again, to never lock it twice", checkErr)}}
	case err != nil:
		return c.settle(ctx, req, id, deviceID, start, err)
	}
	d, err := c.interpret(ctx, req, id, deviceID, start, resp, reply, attempts.Landed || req.MayHaveLanded)
	if err != nil {
		return c.settle(ctx, req, id, deviceID, start, attempts.Unanswered(err))
	}
	return d, nil
}

// settle decides a lock whose reply was lost or is no answer: a lock in
// Kandji's command list since it was sent is queued; none means Kandji
// took nothing, and the failure stands; an unreadable list leaves it
// possibly queued.
func (c *Client) settle(ctx context.Context, req server.Request, id, deviceID string, start time.Time, failure error) (server.DeviceResult, error) {
	if !server.MayBeQueued(failure) {
		return server.DeviceResult{}, failure
	}
	found, err := c.findLock(ctx, deviceID, start.Add(-skew))
	switch {
	case err != nil:
		return server.DeviceResult{}, failure
	case found != nil:
		return c.landed(ctx, req, id, deviceID, found, failure.Error()), nil
	}
	var m *server.MaybeQueuedError
	errors.As(failure, &m)
	return server.DeviceResult{}, m.Err
}

// landed reports a lock Kandji holds from an attempt whose reply mdmctl
// did not read: queued, not sent again, its PIN read back from Kandji.
func (c *Client) landed(ctx context.Context, req server.Request, id, deviceID string, cmd *command, why string) server.DeviceResult {
	d := server.DeviceResult{ID: id, Outcome: server.Queued,
		Error: "Kandji holds a lock for this device (" + why + "); not sent again"}
	since := c.now().Add(-landedWindow)
	if cmd != nil {
		d.Reference = cmd.UUID
		if t, ok := cmd.requested(); ok {
			since = t.Add(-skew)
		}
	}
	c.remember(req.CommandUUID, id, &sentLock{deviceID: deviceID, ref: d.Reference, since: since})
	pin, err := c.UnlockPIN(ctx, deviceID)
	switch {
	case err != nil:
		d.Error += "; reading its unlock PIN back failed (" + err.Error() + "): read it in Kandji (device record, or GET .../secrets/unlockpin)"
	default:
		d.PIN = pin
	}
	return d
}

// interpret reads the lock action's reply; landed says an earlier
// attempt may have reached Kandji.
func (c *Client) interpret(ctx context.Context, req server.Request, id, deviceID string, start time.Time, resp *http.Response, body []byte, landed bool) (server.DeviceResult, error) {
	origin := server.Origin(c.BaseURL)
	status := resp.StatusCode
	switch {
	case status >= 200 && status < 300:
		var r struct {
			PIN string `json:"PIN"`
		}
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &r); err != nil {
				return server.DeviceResult{}, &server.ProtocolError{Server: origin, Problem: fmt.Sprintf("HTTP %d reply to the lock is not Kandji's JSON: %v", status, err)}
			}
		}
		d := server.DeviceResult{ID: id, Outcome: server.Queued, PIN: r.PIN}
		sl := &sentLock{deviceID: deviceID, since: start.Add(-skew)}
		// Kandji's reply names no command: its UUID is read from the
		// device's command list, for the console and for --wait.
		if cmd, err := c.findLock(ctx, deviceID, sl.since); err == nil && cmd != nil {
			d.Reference, sl.ref = cmd.UUID, cmd.UUID
		}
		c.remember(req.CommandUUID, id, sl)
		return d, nil
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return server.DeviceResult{}, authError(origin, status, body)
	case status == http.StatusTooManyRequests || status >= 500:
		return server.DeviceResult{}, server.CheckStatus(origin, status, body)
	}
	text := message(body)
	switch {
	case status == http.StatusBadRequest && strings.Contains(strings.ToLower(text), "already running"):
		if landed {
			// The earlier attempt's lock is the one pending.
			found, _ := c.findLock(ctx, deviceID, start.Add(-landedWindow))
			return c.landed(ctx, req, id, deviceID, found, "a retry was answered "+quote(text)), nil
		}
		return server.DeviceResult{ID: id, Outcome: server.Failed,
			Error: "not sent: Kandji: " + quote(text) + " (an earlier lock is pending for this device; mdmctl sends no second one)"}, nil
	case status == http.StatusNotFound:
		return server.DeviceResult{ID: id, Outcome: server.Failed, Error: "not sent: Kandji does not know this device (HTTP 404: " + text + ")"}, nil
	}
	return server.DeviceResult{ID: id, Outcome: server.Failed, Error: fmt.Sprintf("not sent: Kandji: %s (HTTP %d)", text, status)}, nil
}

func quote(s string) string { return "\u201c" + s + "\u201d" }

// authError is a 401 or 403, naming what the token needs.
func authError(origin string, status int, body []byte) error {
	why := "the API token is wrong, revoked or expired"
	if status == http.StatusForbidden {
		why = "the API token lacks a permission this needs"
	}
	text := message(body)
	if text != "" {
		text += "; "
	}
	return &server.HTTPError{Server: origin, Status: status, Body: text + why + " (it needs " + Permissions + ")"}
}

// message is the words of a Kandji error body: a JSON string, a list of
// strings, an object's detail/message/error, or the text itself.
func message(body []byte) string {
	var s string
	if json.Unmarshal(body, &s) == nil {
		return server.Excerpt([]byte(s))
	}
	var list []string
	if json.Unmarshal(body, &list) == nil && len(list) > 0 {
		return server.Excerpt([]byte(strings.Join(list, "; ")))
	}
	var obj map[string]any
	if json.Unmarshal(body, &obj) == nil {
		for _, k := range []string{"detail", "message", "error", "non_field_errors"} {
			switch v := obj[k].(type) {
			case string:
				return server.Excerpt([]byte(v))
			case []any:
				var parts []string
				for _, x := range v {
					if s, ok := x.(string); ok {
						parts = append(parts, s)
					}
				}
				if len(parts) > 0 {
					return server.Excerpt([]byte(strings.Join(parts, "; ")))
				}
			}
		}
	}
	return server.Excerpt(body)
}

func (c *Client) remember(commandUUID, id string, sl *sentLock) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.locks == nil {
		c.locks = map[lockKey]*sentLock{}
	}
	c.locks[lockKey{commandUUID, id}] = sl
}

func (c *Client) sentLock(commandUUID, id string) (sentLock, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sl, ok := c.locks[lockKey{commandUUID, id}]
	if !ok {
		return sentLock{}, false
	}
	return *sl, true
}

func (c *Client) setRef(commandUUID, id, ref string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sl, ok := c.locks[lockKey{commandUUID, id}]; ok {
		sl.ref = ref
	}
}

func (c *Client) headers(r *http.Request) {
	r.Header.Set("Accept", "application/json")
	r.Header.Set("Authorization", "Bearer "+c.Token)
}

// get reads the Kandji resource at path (escaped, under BaseURL) into v,
// paced and retried per Retry (GETs are safe to resend). found is false
// for a 404.
func (c *Client) get(ctx context.Context, path string, limit int64, v any, what string) (found bool, err error) {
	u, err := server.JoinPath(c.BaseURL, path)
	if err != nil {
		return false, err
	}
	newReq := func(ctx context.Context, _ bool) (*http.Request, error) {
		if err := c.Pace.Wait(ctx); err != nil {
			return nil, err
		}
		r, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, err
		}
		c.headers(r)
		return r, nil
	}
	resp, body, _, err := c.Retry.Do(ctx, c.HTTP, newReq, limit)
	if err != nil {
		return false, err
	}
	origin := server.Origin(c.BaseURL)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return false, nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return false, authError(origin, resp.StatusCode, body)
	default:
		return false, server.CheckStatus(origin, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return false, &server.ProtocolError{Server: origin, Problem: fmt.Sprintf("%s are not Kandji's JSON: %v", what, err)}
	}
	return true, nil
}

// UnlockPIN reads a Mac's unlock PIN back from Kandji.
func (c *Client) UnlockPIN(ctx context.Context, deviceID string) (string, error) {
	var r struct {
		PIN string `json:"pin"`
	}
	found, err := c.get(ctx, DevicesPath+"/"+url.PathEscape(deviceID)+"/secrets/unlockpin", 16<<10, &r, "unlock PIN")
	switch {
	case err != nil:
		return "", err
	case !found || r.PIN == "":
		return "", errors.New("no unlock PIN for this device in Kandji")
	}
	return r.PIN, nil
}
