package fleetdm

import (
	"context"
	"time"

	"github.com/mdmctl/mdmctl/pkg/webhook"
)

// Polling starts fast, for the devices that answer at once, and slows down
// for those that take minutes, to spare the server.
const (
	firstPoll = 250 * time.Millisecond
	maxPoll   = 5 * time.Second
)

// Watch polls Fleet for the answers col awaits and delivers each new one,
// until ctx ends. NotNow is delivered once per time Fleet records it, so
// the collector counts each postponement once. Polling errors go to
// onError (which may be nil); the devices concerned stay unanswered.
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
		// Fleet returns every answer to a command, not just the awaited
		// ones: the reply is bounded by all of the command's devices.
		hosts := map[string]int{}
		awaited := map[string]bool{}
		var order []string
		for _, r := range col.Results() {
			if hosts[r.CommandUUID] == 0 {
				order = append(order, r.CommandUUID)
			}
			hosts[r.CommandUUID]++
			if !r.Answered() && !r.Forgotten {
				awaited[r.CommandUUID] = true
			}
		}
		for _, uuid := range order {
			if !awaited[uuid] {
				continue
			}
			answers, known, err := c.Results(ctx, uuid, hosts[uuid])
			if ctx.Err() != nil {
				return
			}
			if err == nil && !known {
				continue // not queued yet: the enqueue request is still in flight
			}
			if err != nil {
				if onError != nil {
					onError(err)
				}
				continue
			}
			for _, a := range answers {
				k, mark := [2]string{uuid, a.HostUUID}, a.Status+" "+a.UpdatedAt
				if a.Status == "" || a.Status == "Pending" || seen[k] == mark {
					continue
				}
				seen[k] = mark
				col.DeliverFor(a.HostUUID, a.Response())
			}
		}
	}
}
