package fleetdm

// Fleet's own lock (Premium), read from Fleet's REST API documentation
// ("Lock host") and its service code (LockHost, GetHostLockWipeStatus):
//
//   - POST /api/v1/fleet/hosts/{id}/lock?view_pin=true, {id} being Fleet's
//     host ID. On macOS Fleet queues DeviceLock with a six-digit PIN it
//     makes, and answers 200 {"unlock_pin", "device_status",
//     "pending_action"} (204 without view_pin). On iOS and iPadOS it turns
//     on Lost Mode instead, which is not DeviceLock: mdmctl sends those
//     DeviceLock through the raw command path.
//   - 422 "Host has pending lock request..." and 409 "Host is already
//     locked.": Fleet takes no second lock for a host, so a resend after a
//     lost reply cannot lock it twice, and that answer to a resend means the
//     first attempt landed. 402 on Fleet Free; 404 for a host it does not know.
//   - The host's mdm.device_status ("unlocked", "locking", "locked", ...)
//     and mdm.pending_action ("lock" while DeviceLock waits for the Mac)
//     tell what became of it. Fleet then shows the Mac as locked and keeps
//     its PIN for its own Unlock action, which a DeviceLock sent through the
//     raw command path leaves blind (fleetdm/fleet#34682).

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"sync"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// lockPath is Fleet's "Lock host" under the server URL, for a host ID.
const lockPath = "/api/v1/fleet/hosts/%d/lock?view_pin=true"

// rawLockWarning is why a lock with values of the admin's goes raw.
const rawLockWarning = "Fleet's own lock takes no message, phone number or PIN of yours, so this lock goes through Fleet's raw command path: Fleet will not show the Mac as locked or keep its PIN, and its Unlock action will not know of it (fleetdm/fleet#34682)"

// ownLockTakes reports whether Fleet's own lock can carry l: it takes no
// value of the admin's.
func ownLockTakes(l apple.DeviceLock) bool {
	return l.PIN == "" && l.Message == "" && l.PhoneNumber == "" && !l.RequestRequiresNetworkTether
}

// planLock locks a Mac through Fleet's own lock when it can carry the
// values (Fleet then makes the PIN), through the raw path otherwise.
func planLock(l apple.DeviceLock, mayBeMac bool) (server.LockPlan, error) {
	switch {
	case !mayBeMac:
		// Fleet's own lock is Lost Mode on an iPhone or iPad.
		return server.LockPlan{}, nil
	case ownLockTakes(l):
		return server.LockPlan{ServerPIN: true}, nil
	}
	return server.LockPlan{Warning: rawLockWarning}, nil
}

// ownReference names a host's own lock for the history; a later run
// (mdmctl status) knows an own lock by it.
func ownReference(hostID uint) string { return fmt.Sprintf("Fleet host %d's lock", hostID) }

func isOwnReference(ref string) bool {
	var id uint
	_, err := fmt.Sscanf(ref, "Fleet host %d's lock", &id)
	return err == nil && ref == ownReference(id)
}

// ownKey is a (CommandUUID, host UUID) pair locked through Fleet's own
// lock, whose answer is the host's lock state.
type ownKey struct{ command, host string }

// lockOwn locks req's Macs through Fleet's own lock and sends the other
// hosts (iPhones and iPads; hosts Fleet does not know or whose MDM is off,
// which it refuses there) DeviceLock through the raw command path.
func (c *Client) lockOwn(ctx context.Context, req server.Request) (*server.Result, error) {
	known, err := c.lookedUp(ctx, req.IDs, isolateWorkers)
	if err != nil {
		return nil, err // nothing was sent
	}
	var raw []string
	var macs []*host
	for _, id := range req.IDs {
		if h := known[id]; h != nil && h.Platform == "darwin" && !h.mdmOff() {
			macs = append(macs, h)
		} else {
			// The raw path says what Fleet makes of the others: iPhones
			// locked, unknown hosts and MDM off refused.
			raw = append(raw, id)
		}
	}
	var rawRes *server.Result
	var rawErr error
	if len(raw) > 0 {
		sub := req
		sub.IDs = raw
		rawRes, rawErr = c.run(ctx, sub)
	}
	locked := make([]server.DeviceResult, len(macs))
	errs := make([]error, len(macs))
	var wg sync.WaitGroup
	limit := make(chan struct{}, isolateWorkers)
	for i, h := range macs {
		wg.Add(1)
		limit <- struct{}{}
		go func() {
			defer func() { <-limit; wg.Done() }()
			locked[i], errs[i] = c.lockHost(ctx, req, h)
		}()
	}
	wg.Wait()
	all := errs
	if len(raw) > 0 {
		all = append(all, rawErr)
	}
	if len(all) > 0 && allSame(all) {
		return nil, all[0] // one failure for all: keep its kind (credentials, outage)
	}
	res := &server.Result{}
	switch {
	case rawErr != nil:
		for _, id := range raw {
			res.Devices = append(res.Devices, deviceFailure(id, rawErr))
		}
	case rawRes != nil:
		res.Devices = append(res.Devices, rawRes.Devices...)
	}
	for i, h := range macs {
		if errs[i] != nil {
			locked[i] = deviceFailure(h.UUID, errs[i])
		}
	}
	res.Devices = append(res.Devices, locked...)
	return res, nil
}

// deviceFailure is one device's share of a request's failure: unknown
// when the command may be queued, failed otherwise.
func deviceFailure(id string, err error) server.DeviceResult {
	if server.MayBeQueued(err) {
		return server.DeviceResult{ID: id, Outcome: server.Unknown, Error: err.Error()}
	}
	return server.DeviceResult{ID: id, Outcome: server.Failed, Error: "not locked: " + err.Error()}
}

// allSame: every one failed, and the same way.
func allSame(errs []error) bool {
	for _, e := range errs {
		if e == nil || e.Error() != errs[0].Error() {
			return false
		}
	}
	return true
}

type lockReply struct {
	UnlockPIN     string `json:"unlock_pin"`
	DeviceStatus  string `json:"device_status"`
	PendingAction string `json:"pending_action"`
}

// lockHost locks one Mac through Fleet's own lock. Fleet refuses a second
// lock for a host, so an attempt is resent freely; a refusal of a resend
// for a lock pending or done is the first attempt's lock.
func (c *Client) lockHost(ctx context.Context, req server.Request, h *host) (server.DeviceResult, error) {
	origin := server.Origin(c.BaseURL)
	u, err := server.JoinPath(c.BaseURL, fmt.Sprintf(lockPath, h.ID))
	if err != nil {
		return server.DeviceResult{}, err
	}
	// Awaited as the host's lock state from the first attempt on: an
	// answer may come before the reply.
	c.own.Store(ownKey{req.CommandUUID, h.UUID}, true)
	newReq := func(ctx context.Context, _ bool) (*http.Request, error) {
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), http.NoBody)
		if err != nil {
			return nil, err
		}
		r.Header.Set("Accept", "application/json")
		r.Header.Set("Authorization", "Bearer "+c.Token)
		return r, nil
	}
	resp, body, sent, err := c.Retry.Do(ctx, c.HTTP, newReq, 64<<10)
	if err != nil {
		return server.DeviceResult{}, sent.Unanswered(err)
	}
	ref := ownReference(h.ID)
	d := server.DeviceResult{ID: h.UUID, Outcome: server.Queued, Reference: ref}
	status := resp.StatusCode
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var e errorReply
	fleetSays := mediaType == "application/json" && json.Unmarshal(body, &e) == nil && e.text() != ""
	switch {
	case status == http.StatusOK:
		var r lockReply
		if err := json.Unmarshal(body, &r); err != nil || mediaType != "application/json" {
			return server.DeviceResult{}, sent.Unanswered(&server.ProtocolError{Server: origin, Problem: fmt.Sprintf("HTTP 200 reply to a lock is not Fleet's lock result (%s)", mediaType)})
		}
		d.PIN = r.UnlockPIN
		if r.UnlockPIN == "" {
			d.Error = "Fleet returned no PIN: it shows it under the host's Unlock action"
		}
		return d, nil
	case status == http.StatusNoContent:
		d.Error = "Fleet returned no PIN: it shows it under the host's Unlock action"
		return d, nil
	case fleetSays && (status == http.StatusUnprocessableEntity || status == http.StatusConflict) && (sent.Landed || req.MayHaveLanded):
		d.Error = "Fleet holds the lock an earlier attempt sent; that reply, and the PIN in it, were lost: Fleet shows the PIN under the host's Unlock action"
		return d, nil
	case fleetSays && status == http.StatusPaymentRequired:
		return failedOwn(h, "not locked: Fleet's own lock needs Fleet Premium (Fleet: "+e.text()+")"), nil
	case fleetSays && (status == http.StatusUnauthorized || status == http.StatusForbidden):
		return server.DeviceResult{}, &server.HTTPError{Server: origin, Status: status, Body: e.text() + " (check the API token and its user's role: locking needs a maintainer or admin)"}
	case fleetSays && status >= 400 && status < 500 && status != http.StatusTooManyRequests:
		// A lock already pending or done, MDM off, a host gone: Fleet's
		// words, and no second lock.
		return failedOwn(h, "not locked: "+e.text()), nil
	}
	return server.DeviceResult{}, sent.Unanswered(server.CheckStatus(origin, status, body))
}

func failedOwn(h *host, why string) server.DeviceResult {
	return server.DeviceResult{ID: h.UUID, Outcome: server.Failed, Error: why}
}

// lockAnswer reads a host's lock state as the answer to its lock; false
// while it says nothing final yet.
func (h host) lockAnswer(commandUUID string) (apple.Response, bool) {
	r := apple.Response{CommandUUID: commandUUID, UDID: h.UUID}
	switch {
	case h.MDM.DeviceStatus == "locked":
		r.Status = apple.StatusAcknowledged
	case h.MDM.PendingAction == "" && h.MDM.DeviceStatus == "unlocked":
		r.Status = apple.StatusError
		r.ErrorChain = []apple.ErrorChainItem{{ErrorDomain: "Fleet", LocalizedDescription: "Fleet shows the host unlocked with no lock pending: its lock failed, or it was unlocked since (see the host's activity in Fleet)"}}
	default:
		return r, false // locking, or a wipe or unlock under way
	}
	return r, true
}
