package fleetdm

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/mdmctl/mdmctl/pkg/webhook"
)

// Polling starts fast, for the devices that answer at once, and slows down
// for those that take minutes, to spare the server.
const (
	firstPoll = 250 * time.Millisecond
	maxPoll   = 5 * time.Second
	// pollWorkers bounds the result requests in flight: a run with a PIN
	// per Mac has a command per Mac to ask about.
	pollWorkers = 8
)

// polled is one command's answers from one round of polling.
type polled struct {
	uuid    string
	answers []Answer
	known   bool
	err     error
	// awaited are the hosts still awaited for it.
	awaited []string
}

// Watch polls Fleet for the answers col awaits and delivers each new one,
// until ctx ends. Commands are asked about concurrently; answers are
// delivered from this goroutine alone. NotNow is delivered once per time
// Fleet records it, so the collector counts each postponement once.
// Polling errors go to onError (which may be nil); the devices concerned
// stay unanswered.
func (c *Client) Watch(ctx context.Context, col *webhook.Collector, onError func(error)) {
	seen := map[[2]string]string{} // (command, host) -> status and time last delivered
	wait := firstPoll
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, maxPoll)
		for _, p := range c.pollRound(ctx, col) {
			switch {
			case ctx.Err() != nil:
				return
			case p.err != nil:
				if onError != nil {
					onError(p.err)
				}
				continue
			case !p.known:
				continue // not queued yet: the enqueue request is still in flight
			}
			for _, a := range p.answers {
				k, mark := [2]string{p.uuid, a.HostUUID}, a.Status+" "+a.UpdatedAt
				if a.Status == "" || a.Status == "Pending" || seen[k] == mark {
					continue
				}
				seen[k] = mark
				col.DeliverFor(a.HostUUID, a.Response())
			}
		}
	}
}

// pollRound asks Fleet once about every command col still awaits an answer
// to, in the order the commands were expected, and about the lock state of
// every host locked through Fleet's own lock.
func (c *Client) pollRound(ctx context.Context, col *webhook.Collector) []polled {
	// Fleet returns every answer to a command, not just the awaited ones:
	// the reply is bounded by all of the command's devices.
	hosts := map[string]int{}
	index := map[string]int{}
	var round, states []polled
	for _, r := range col.Results() {
		waiting := !r.Answered() && !r.Forgotten
		// An own lock of this run, or one the history names (mdmctl status).
		if _, own := c.own.Load(ownKey{r.CommandUUID, r.ID}); own || isOwnReference(r.Reference) {
			if waiting {
				states = append(states, polled{uuid: r.CommandUUID, known: true, awaited: []string{r.ID}})
			}
			continue
		}
		i, seen := index[r.CommandUUID]
		if !seen {
			i = len(round)
			index[r.CommandUUID] = i
			round = append(round, polled{uuid: r.CommandUUID, known: true})
		}
		hosts[r.CommandUUID]++
		if waiting {
			round[i].awaited = append(round[i].awaited, r.ID)
		}
	}
	var wg sync.WaitGroup
	limit := make(chan struct{}, pollWorkers)
	ask := func(p *polled, fn func(p *polled)) {
		wg.Add(1)
		limit <- struct{}{}
		go func() {
			defer func() { <-limit; wg.Done() }()
			fn(p)
		}()
	}
	for i := range round {
		if len(round[i].awaited) > 0 { // else nothing to ask: no answers, no error
			ask(&round[i], func(p *polled) { p.answers, p.known, p.err = c.Results(ctx, p.uuid, hosts[p.uuid]) })
		}
	}
	for i := range states {
		ask(&states[i], func(p *polled) { p.answers, p.err = c.lockState(ctx, p.uuid, p.awaited[0]) })
	}
	wg.Wait()
	return append(round, states...)
}

// lockState reads a host's lock state as its answer to commandUUID: none
// while the lock is pending.
func (c *Client) lockState(ctx context.Context, commandUUID, hostUUID string) ([]Answer, error) {
	h, err := c.getHost(ctx, hostUUID)
	switch {
	case err != nil:
		return nil, err
	case h == nil:
		return nil, fmt.Errorf("host %s is gone from Fleet", hostUUID)
	}
	resp, final := h.lockAnswer(commandUUID)
	if !final {
		return nil, nil
	}
	result, err := resp.Encode()
	if err != nil {
		return nil, err
	}
	return []Answer{{HostUUID: hostUUID, CommandUUID: commandUUID, Status: resp.Status, UpdatedAt: h.MDM.DeviceStatus, Result: result}}, nil
}
