package dispatch

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/report"
	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

// Request is what the server is sent for c.
func (c Command) Request(noPush bool) server.Request {
	ids := make([]string, len(c.Targets))
	for i, t := range c.Targets {
		ids[i] = t.ID
	}
	rt := c.RequestType
	if rt == "" {
		rt = apple.RequestTypeDeviceLock
	}
	return server.Request{CommandUUID: c.UUID, RequestType: rt, Lock: c.Lock, IDs: ids, NoPush: noPush, MayHaveLanded: c.MayHaveLanded}
}

// Plist is c as Apple's property list: what plist kinds send, what a dry
// run shows and what the journal's digest is taken of.
func (c Command) Plist() ([]byte, error) {
	return server.Request{CommandUUID: c.UUID, RequestType: c.RequestType, Lock: c.Lock}.Plist()
}

// PlanInformation groups targets into DeviceInformation commands (a
// preflight), as many devices to a command as limits allow, each command
// under a new CommandUUID of its own.
func PlanInformation(targets []*Target, limits server.Limits, newUUID func() string) ([]Command, error) {
	// Plan batches by lock values and IDs; give every target the same
	// values and no PIN, so only the limits split them.
	none := &apple.DeviceLock{}
	asked := make([]Target, len(targets))
	view := make([]*Target, len(targets))
	for i, t := range targets {
		asked[i] = Target{ID: t.ID, SourceName: t.SourceName, Line: t.Line, Facts: t.Facts, Lock: none}
		view[i] = &asked[i]
	}
	cmds, err := Plan(view, limits, newUUID, "")
	if err != nil {
		return nil, err
	}
	for i := range cmds {
		c := &cmds[i]
		c.RequestType, c.Lock = apple.RequestTypeDeviceInformation, apple.DeviceLock{}
	}
	return cmds, nil
}

// Inquiry is one DeviceInformation round: its commands, the collector
// awaiting the answers, and what became of each device. The raw kind
// answers in the exchange itself; the others through the collector.
type Inquiry struct {
	Collector *webhook.Collector
	cmds      []Command

	mu      sync.Mutex
	answers map[string]apple.Response // answered in the exchange
	failed  map[string]string         // not queued: the server's reason
}

// NewInquiry awaits an answer from every target of cmds; subscribe its
// Collector to the run's answers before calling Send.
func NewInquiry(cmds []Command) *Inquiry {
	q := &Inquiry{Collector: webhook.NewCollector(), cmds: cmds, answers: map[string]apple.Response{}, failed: map[string]string{}}
	for _, c := range cmds {
		for _, t := range c.Targets {
			q.Collector.Expect(c.UUID, t.ID)
		}
	}
	return q
}

// Send sends the commands as Send does, and returns its error.
func (q *Inquiry) Send(ctx context.Context, srv server.Server, opts Options) error {
	return Send(ctx, srv, q.cmds, opts, q.queued)
}

func (q *Inquiry) queued(d report.Device) {
	switch d.Outcome {
	case report.Queued, report.QueuedNotPushed:
		return
	}
	q.Collector.Forget(d.CommandUUID, d.ID)
	q.mu.Lock()
	defer q.mu.Unlock()
	if d.Response != nil {
		q.answers[d.ID] = *d.Response
		return
	}
	q.failed[d.ID] = d.Error
}

// Reply is what one asked device told mdmctl.
type Reply struct {
	// Information is its answer; nil when it gave none.
	Information *apple.Information
	// Problem says why there is no answer: not queued, an error, no answer in time.
	Problem string
}

// Wait waits until every device answered or ctx ends, stops waiting for
// the rest, and returns each device's reply by ID.
func (q *Inquiry) Wait(ctx context.Context, limit time.Duration) map[string]Reply {
	waitCtx, cancel := context.WithTimeout(ctx, limit)
	_ = q.Collector.Wait(waitCtx)
	cancel()
	replies := map[string]Reply{}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, res := range q.Collector.Results() {
		r, answered := q.answers[res.ID]
		switch {
		case answered:
		case res.Response != nil:
			r = *res.Response
		case q.failed[res.ID] != "":
			replies[res.ID] = Reply{Problem: "DeviceInformation not queued: " + q.failed[res.ID]}
			continue
		default:
			// Forgotten now, so a poller (Fleet) stops asking after it.
			q.Collector.Forget(res.CommandUUID, res.ID)
			replies[res.ID] = Reply{Problem: "no answer to DeviceInformation within " + limit.String()}
			continue
		}
		if r.Status != apple.StatusAcknowledged {
			replies[res.ID] = Reply{Problem: "answered DeviceInformation with " + r.Status}
			continue
		}
		in := r.Information()
		replies[res.ID] = Reply{Information: &in}
	}
	return replies
}

// PINRequired is the reason a Mac that said it needs a PIN is not locked
// without one.
const PINRequired = "this Mac needs a PIN to lock (it answered PINRequiredForDeviceLock); " +
	"give one with MDMCTL_PIN or --pin-file, or let mdmctl make one per Mac with --pin-generate --pin-escrow FILE"

// NeedsPIN reports whether the device said its lock needs a PIN and the
// target has none: DeviceLock would fail on it.
func NeedsPIN(t *Target, in apple.Information) bool {
	return in.PINRequiredForDeviceLock != nil && *in.PINRequiredForDeviceLock && t.Lock.PIN == ""
}

// AnswerSource names the device's own DeviceInformation answer among the
// sources the guard weighs.
const AnswerSource = "device answer"

// Answered adds what the device answered to what is known about the target
// and applies the guard again. The answer is one more source: where it and
// the input or the server's inventory disagree, the guard takes the more
// dangerous reading, so a device cannot talk its way past a fact the input
// or the server gave.
func Answered(t *Target, in apple.Information) {
	t.Observed = append(t.Observed, apple.Observation{Source: AnswerSource, Device: in.Device()})
	Assess([]*Target{t})
}

// ObserveInventory adds what the server knows about each device as a
// source of its own: the guard weighs it with the input, so a flag never
// silently replaces the server's word. A failed lookup is warned about,
// and the devices it could not read stay unknown to the guard; the send
// then reports what the server says of them (a refused credential, exit 4,
// on every device's line).
func ObserveInventory(ctx context.Context, ts []*Target, source string, lookup func(context.Context, []string) (map[string]apple.Device, error), warn func(string)) {
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	known, err := lookup(ctx, ids)
	for _, t := range ts {
		if k, ok := known[t.ID]; ok {
			t.Observed = append(t.Observed, apple.Observation{Source: source, Device: k})
		}
	}
	if err != nil {
		warn(fmt.Sprintf("reading the %s: %v; the guard treats the devices it could not read as unknown", source, err))
	}
}
