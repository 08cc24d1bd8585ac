package kandji

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/mdmctl/mdmctl/pkg/webhook"
)

// Polling starts at FirstPoll, for the devices that answer at once, and
// slows to MaxPoll for those that take minutes: each round asks once per
// awaited device, and the Pacer keeps the rounds within the hourly limit.
var (
	FirstPoll = time.Second
	MaxPoll   = 30 * time.Second
)

// pollWorkers bounds the command-list requests in flight.
const pollWorkers = 4

// Watch polls each awaited device's command list and delivers its lock's
// status, under mdmctl's CommandUUID, until ctx ends. A lock this session
// sent is known by Kandji's command UUID (or the time it was sent); one it
// did not (mdmctl status in a later run: Kandji's list does not carry
// mdmctl's CommandUUID) is known by the Result's Reference, Kandji's UUID
// as the history kept it, and without one the device's newest lock in
// Kandji is taken for it. NotNow is delivered
// once per time Kandji records it. Polling errors go to onError (which may
// be nil); the devices concerned stay unanswered.
func (c *Client) Watch(ctx context.Context, col *webhook.Collector, onError func(error)) {
	seen := map[lockKey]string{}
	wait := FirstPoll
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, MaxPoll)
		type polled struct {
			key lockKey
			sl  sentLock
			// adopt: a lock this session did not send (mdmctl status,
			// in a later run): the one its Reference names, else the
			// device's newest lock.
			adopt bool
			cmd   *command
			err   error
		}
		var round []*polled
		for _, r := range col.Results() {
			if r.Answered() || r.Forgotten {
				continue
			}
			k := lockKey{r.CommandUUID, r.ID}
			sl, ok := c.sentLock(k.commandUUID, k.id)
			if !ok {
				sl.ref = r.Reference
			}
			round = append(round, &polled{key: k, sl: sl, adopt: !ok})
		}
		var wg sync.WaitGroup
		limit := make(chan struct{}, pollWorkers)
		for _, p := range round {
			wg.Add(1)
			limit <- struct{}{}
			go func() {
				defer func() { <-limit; wg.Done() }()
				if p.adopt {
					ids, err := c.resolve(ctx, []string{p.key.id})
					switch {
					case err != nil:
						p.err = err
						return
					case ids[p.key.id] == "":
						p.err = fmt.Errorf("device %s is unknown to Kandji", p.key.id)
						return
					}
					p.sl.deviceID = ids[p.key.id]
				}
				cmds, err := c.Commands(ctx, p.sl.deviceID)
				if err != nil {
					p.err = err
					return
				}
				if p.sl.ref != "" {
					p.cmd = commandByUUID(cmds, p.sl.ref)
					return
				}
				p.cmd = newestLockSince(cmds, p.sl.since)
			}()
		}
		wg.Wait()
		for _, p := range round {
			switch {
			case ctx.Err() != nil:
				return
			case p.err != nil:
				if onError != nil {
					onError(p.err)
				}
				continue
			case p.cmd == nil:
				continue
			}
			switch {
			case p.adopt:
				c.remember(p.key.commandUUID, p.key.id, &sentLock{deviceID: p.sl.deviceID, ref: p.cmd.UUID})
			case p.sl.ref == "":
				c.setRef(p.key.commandUUID, p.key.id, p.cmd.UUID)
			}
			resp, ok := p.cmd.Response(p.key.commandUUID, p.key.id)
			mark := strconv.Itoa(p.cmd.Status) + " " + strconv.Itoa(p.cmd.Attempts) + " " + p.cmd.DateCompleted
			if !ok || seen[p.key] == mark {
				continue
			}
			seen[p.key] = mark
			col.DeliverFor(p.key.id, resp)
		}
	}
}

// newestLockSince is the newest DeviceLock requested at or after since.
func newestLockSince(cmds []command, since time.Time) *command {
	var best *command
	var bestAt time.Time
	for i := range cmds {
		at, ok := cmds[i].requested()
		if !cmds[i].isLock() || !ok || at.Before(since) {
			continue
		}
		if best == nil || at.After(bestAt) {
			best, bestAt = &cmds[i], at
		}
	}
	return best
}
