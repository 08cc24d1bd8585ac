package lock

import (
	"fmt"
	"strings"
	"time"

	"github.com/mdmctl/mdmctl/pkg/report"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

// waiting says what --wait waits for, where, and what Ctrl-C does, before
// the commands go out.
func (r *runner) waiting(where string, n int) {
	fmt.Fprintf(r.opts.IO.ErrOut, "waiting up to %s for %s %s (Ctrl-C stops waiting; commands stay queued)\n",
		shortDuration(r.opts.Wait), plural(n, "answer"), where)
}

// noEventsHint runs when the wait is over: devices that stayed silent while
// not one event reached the receiver point at NanoMDM's webhook setting,
// not at the devices.
func (r *runner) noEventsHint(rc *webhook.Receiver, c *webhook.Collector) {
	if len(c.Pending()) == 0 {
		return
	}
	switch {
	case rc.Accepted.Load()+rc.Ignored.Load()+rc.Rejected.Load() == 0:
		r.warn("not one webhook event arrived during the wait: does NanoMDM's -webhook-url point at this receiver?")
	case rc.Accepted.Load()+rc.Ignored.Load() == 0:
		r.warn(fmt.Sprintf("all %d webhook events were rejected: does NanoMDM's -webhook-hmac-key match --webhook-hmac-key-file?", rc.Rejected.Load()))
	}
}

// shortDuration prints 2m for 2m0s and 1h for 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// outcomeWidth is the text outcome column's width for the outcomes a run of
// this mode usually reports; a rarer, longer one overflows it.
func outcomeWidth(opts *Options) int {
	switch {
	case opts.DryRun:
		return len(report.Planned)
	case opts.Wait > 0:
		return len(report.Acknowledged)
	case opts.NoPush:
		return len(report.NotSent)
	}
	return len(report.QueuedNotPushed)
}
