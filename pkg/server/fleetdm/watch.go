package fleetdm

import (
	"context"
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
// to, in the order the commands were expected.
func (c *Client) pollRound(ctx context.Context, col *webhook.Collector) []polled {
	// Fleet returns every answer to a command, not just the awaited ones:
	// the reply is bounded by all of the command's devices.
	hosts := map[string]int{}
	awaited := map[string]bool{}
	var round []polled
	for _, r := range col.Results() {
		if hosts[r.CommandUUID] == 0 {
			round = append(round, polled{uuid: r.CommandUUID})
		}
		hosts[r.CommandUUID]++
		if !r.Answered() && !r.Forgotten {
			awaited[r.CommandUUID] = true
		}
	}
	var wg sync.WaitGroup
	limit := make(chan struct{}, pollWorkers)
	for i := range round {
		p := &round[i]
		if !awaited[p.uuid] {
			p.known = true // nothing to ask: no answers, no error
			continue
		}
		wg.Add(1)
		limit <- struct{}{}
		go func() {
			defer func() { <-limit; wg.Done() }()
			p.answers, p.known, p.err = c.Results(ctx, p.uuid, hosts[p.uuid])
		}()
	}
	wg.Wait()
	return round
}
