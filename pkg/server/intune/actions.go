package intune

import (
	"context"
	"strings"
	"time"
)

// Graph's actionState values.
const (
	statePending      = "pending"
	stateActive       = "active"
	stateDone         = "done"
	stateFailed       = "failed"
	stateNotSupported = "notSupported"
	stateCanceled     = "canceled"
)

// actionRemoteLock is remoteLock's actionName in deviceActionResults.
const actionRemoteLock = "remoteLock"

// actionResult is one deviceActionResult; a remoteLockActionResult adds
// the unlock PIN Intune made for a Mac.
type actionResult struct {
	ODataType           string `json:"@odata.type"`
	ActionName          string `json:"actionName"`
	ActionState         string `json:"actionState"`
	StartDateTime       string `json:"startDateTime"`
	LastUpdatedDateTime string `json:"lastUpdatedDateTime"`
	UnlockPin           string `json:"unlockPin"`
}

func (a *actionResult) start() time.Time {
	t, err := time.Parse(time.RFC3339Nano, a.StartDateTime)
	if err != nil {
		return time.Time{}
	}
	return t
}

// latestLock is the newest remoteLock result among rs, nil for none.
func latestLock(rs []actionResult) *actionResult {
	var best *actionResult
	for i := range rs {
		r := &rs[i]
		if !strings.EqualFold(r.ActionName, actionRemoteLock) {
			continue
		}
		if best == nil || r.start().After(best.start()) {
			best = r
		}
	}
	return best
}

// lastLock reads the newest remoteLock result Intune shows for a managed
// device (nil for none); found is false when Intune has no such device.
func (c *Client) lastLock(ctx context.Context, managedID string) (last *actionResult, found bool, err error) {
	d, err := c.fetch(ctx, managedID, "id,deviceActionResults")
	if err != nil || d == nil {
		return nil, false, err
	}
	return latestLock(d.ActionResults), true, nil
}

// lockAfter is the device's remoteLock result that started after after
// (any, for a zero after): the one this session's lock made.
func (c *Client) lockAfter(ctx context.Context, managedID string, after time.Time) (*actionResult, bool, error) {
	last, found, err := c.lastLock(ctx, managedID)
	if err != nil || last == nil || !last.start().After(after) {
		return nil, found, err
	}
	return last, found, nil
}

func (c *Client) pinWait() time.Duration {
	if c.PINWait > 0 {
		return c.PINWait
	}
	return DefaultPINWait
}

// pinNote is a Mac's line when Intune has not shown its unlock PIN.
const pinNote = "Intune has not shown this Mac's unlock PIN through Graph yet: read it in the Intune admin center (the device's overview) within 30 days"

// readPIN reads the unlock PIN Intune made for this lock (uuid, id) on a
// Mac, for up to wait, paced; note says where the PIN is when it could not
// be read, and the lock is marked for --wait to look again (pinLate).
func (c *Client) readPIN(ctx context.Context, uuid, id string, dev *managedDevice, after time.Time, wait time.Duration) (pin, note string) {
	if !dev.mayBeMac() {
		return "", ""
	}
	defer func() {
		if pin == "" {
			c.markPINLate(uuid, id)
		}
	}()
	poll := c.PINPoll
	if poll <= 0 {
		poll = defaultPINPoll
	}
	deadline := time.Now().Add(wait)
	for {
		ours, _, err := c.lockAfter(ctx, dev.ID, after)
		if err == nil && ours != nil && ours.UnlockPin != "" {
			return ours.UnlockPin, ""
		}
		if time.Now().Add(poll).After(deadline) {
			return "", pinNote
		}
		select {
		case <-ctx.Done():
			return "", pinNote
		case <-time.After(poll):
		}
	}
}

// record remembers a lock this session sent, for --wait.
func (c *Client) record(uuid, id string, s sentLock) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sent == nil {
		c.sent = map[sentKey]sentLock{}
	}
	c.sent[sentKey{uuid, id}] = s
}

func (c *Client) markPINLate(uuid, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := sentKey{uuid, id}
	if s, ok := c.sent[k]; ok {
		s.pinLate = true
		c.sent[k] = s
	}
}

// takeLatePIN returns the run's keep for the PIN of a lock whose Enqueue
// returned without it, once: nil when there is none to keep, or no keep.
func (c *Client) takeLatePIN(uuid, id string) func(commandUUID, id, pin string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := sentKey{uuid, id}
	s, ok := c.sent[k]
	if !ok || !s.pinLate || c.keepPIN == nil {
		return nil
	}
	s.pinLate = false
	c.sent[k] = s
	return c.keepPIN
}

// KeepPINs takes the run's keep for PINs Intune publishes after Enqueue
// returned (Session.PINs).
func (c *Client) KeepPINs(keep func(commandUUID, id, pin string) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keepPIN = keep
}

func (c *Client) sentFor(uuid, id string) (sentLock, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sent[sentKey{uuid, id}]
	return s, ok
}
