package intune

import (
	"context"
	"sync"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

// Polling starts after a short wait and slows down for devices that take
// minutes, to stay well inside Graph's throttling limits.
const (
	defaultFirstPoll = time.Second
	defaultMaxPoll   = 15 * time.Second
	// pollWorkers bounds the action-result reads in flight.
	pollWorkers = 4
)

// ErrorDomain names Intune in the ErrorChain of an answer mdmctl makes from
// an action state; the ErrorCode is the state's value in Graph's actionState
// enumeration (canceled 2, failed 5, notSupported 6).
const ErrorDomain = "Intune actionState"

var stateCodes = map[string]int{stateCanceled: 2, stateFailed: 5, stateNotSupported: 6}

// answer maps a remoteLock's actionState to the device's answer under
// mdmctl's CommandUUID; final is false while Intune waits for the device.
func answer(uuid, id string, r *actionResult) (resp apple.Response, final bool) {
	resp = apple.Response{CommandUUID: uuid, UDID: id}
	switch r.ActionState {
	case stateDone:
		resp.Status = apple.StatusAcknowledged
	case stateFailed, stateNotSupported, stateCanceled:
		resp.Status = apple.StatusError
		resp.ErrorChain = []apple.ErrorChainItem{{ErrorDomain: ErrorDomain, ErrorCode: stateCodes[r.ActionState],
			LocalizedDescription: "Intune reports the remoteLock action " + r.ActionState + " (last updated " + r.LastUpdatedDateTime + ")"}}
	default: // pending, active, none
		return resp, false
	}
	return resp, true
}

// Watch polls the action results of the devices col awaits and delivers
// each final one, until ctx ends. Polling errors go to onError (which may
// be nil); the devices concerned stay unanswered.
func (c *Client) Watch(ctx context.Context, col *webhook.Collector, onError func(error)) {
	wait := c.PollFirst
	if wait <= 0 {
		wait = defaultFirstPoll
	}
	maxWait := c.PollMax
	if maxWait <= 0 {
		maxWait = defaultMaxPoll
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, maxWait)
		c.pollRound(ctx, col, onError)
	}
}

type awaited struct {
	uuid, id string
	sent     sentLock
}

// pollRound reads, once, the action results of every device col still
// awaits whose lock this session sent, one read per managed device.
func (c *Client) pollRound(ctx context.Context, col *webhook.Collector, onError func(error)) {
	byDevice := map[string][]awaited{}
	var order []string
	for _, r := range col.Results() {
		if r.Answered() || r.Forgotten {
			continue
		}
		s, ok := c.sentFor(r.CommandUUID, r.ID)
		if !ok {
			continue // not sent yet, or its request is still in flight
		}
		if _, seen := byDevice[s.device]; !seen {
			order = append(order, s.device)
		}
		byDevice[s.device] = append(byDevice[s.device], awaited{r.CommandUUID, r.ID, s})
	}
	type read struct {
		last *actionResult
		err  error
	}
	reads := make([]read, len(order))
	var wg sync.WaitGroup
	limit := make(chan struct{}, pollWorkers)
	for i, dev := range order {
		wg.Add(1)
		limit <- struct{}{}
		go func() {
			defer func() { <-limit; wg.Done() }()
			reads[i].last, _, reads[i].err = c.lastLock(ctx, dev)
		}()
	}
	wg.Wait()
	for i, dev := range order {
		switch rd := reads[i]; {
		case ctx.Err() != nil:
			return
		case rd.err != nil:
			if onError != nil {
				onError(rd.err)
			}
		case rd.last != nil:
			for _, a := range byDevice[dev] {
				if !a.sent.owns(rd.last) {
					continue
				}
				if pin := rd.last.UnlockPin; pin != "" {
					// Kept before the answer goes out, so the device's
					// line has it; a PIN not kept stays in Intune, as
					// the line already says.
					if keep := c.takeLatePIN(a.uuid, a.id); keep != nil {
						_ = keep(a.uuid, a.id, pin)
					}
				}
				if resp, final := answer(a.uuid, a.id, rd.last); final {
					col.DeliverFor(a.id, resp)
				}
			}
		}
	}
}

// owns reports whether r is this lock's result: the one found landed, or
// one started after the result Intune showed before the lock.
func (s sentLock) owns(r *actionResult) bool {
	if !s.at.IsZero() {
		return !r.start().Before(s.at)
	}
	return r.start().After(s.after)
}
