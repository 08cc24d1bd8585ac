package lock

import (
	"context"
	"fmt"
	"strings"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/connect"
	"github.com/mdmctl/mdmctl/pkg/dispatch"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/output"
	"github.com/mdmctl/mdmctl/pkg/report"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// --if-unknown values: what happens to a device whose facts stay unknown.
const (
	ifUnknownWarn   = "warn"
	ifUnknownRefuse = "refuse"
)

// preflight is the run's DeviceInformation round: the devices asked and
// the inquiry awaiting their answers.
type preflight struct {
	asked   []*dispatch.Target
	inquiry *dispatch.Inquiry
}

// undecided reports whether the guard needs the device's own answer: its
// verdict is not "safe" and no source gave the model or the OS version. A
// device refused on facts that are all known stays refused whatever it
// answers (the more dangerous reading wins), so asking it changes nothing.
func undecided(t *dispatch.Target) bool {
	if t.Assessment.Risk == apple.RiskNone {
		return false
	}
	model, version := t.Facts.Model != "", t.Facts.OSVersion != nil
	for _, o := range t.Observed {
		model = model || o.Device.Model != ""
		version = version || o.Device.OSVersion != nil
	}
	return !model || !version
}

// preflightOn reports whether this run asks devices first. --dry-run
// promises to send nothing, so there only an explicit --preflight asks
// (the sandbox's default does not).
func (opts *Options) preflightOn(settingsPreflight bool) bool {
	if opts.DryRun {
		return opts.PreflightGiven && settingsPreflight
	}
	return settingsPreflight
}

// splitForPreflight separates the targets to ask first from those the
// guard has decided on; with no preflight every target is ready.
func splitForPreflight(targets []*dispatch.Target, on bool) (asked, ready []*dispatch.Target) {
	if !on {
		return nil, targets
	}
	ready = make([]*dispatch.Target, 0, len(targets))
	for _, t := range targets {
		if undecided(t) {
			asked = append(asked, t)
		} else {
			ready = append(ready, t)
		}
	}
	return asked, ready
}

// startPreflight sends DeviceInformation, under CommandUUIDs of its own,
// to the asked devices, listening for their answers first.
func (r *runner) startPreflight(ctx context.Context, conn *connect.Connection, feed *connect.AnswerFeed, asked []*dispatch.Target) (*preflight, error) {
	cmds, err := dispatch.PlanInformation(asked, conn.Limits, r.opts.NewUUID)
	if err != nil {
		return nil, err
	}
	p := &preflight{asked: asked, inquiry: dispatch.NewInquiry(cmds)}
	where := ""
	if !conn.Synchronous {
		url, err := feed.Subscribe(p.inquiry.Collector, "--preflight")
		if err != nil {
			return nil, err
		}
		if url != "" {
			where = " at " + url
		}
	}
	fmt.Fprintf(r.opts.IO.ErrOut, "preflight: asking %s for %s facts (DeviceInformation), answers%s within %s\n",
		plural(len(asked), "device"), map[bool]string{true: "its", false: "their"}[len(asked) == 1], where, r.preflight)
	// A request that fails is reported per device when the answers are
	// collected: those devices keep the facts they had.
	_ = p.inquiry.Send(ctx, conn.Server, dispatch.Options{NoPush: r.opts.NoPush, Concurrency: r.opts.Concurrency, NewUUID: r.opts.NewUUID})
	return p, nil
}

// afterPreflight waits for the answers, judges each asked device on what
// it answered, reports those it will not lock, and plans the locks of the
// rest (with held, the devices that were waiting for them: one
// --command-uuid means one command).
func (r *runner) afterPreflight(ctx context.Context, p *preflight, held []*dispatch.Target, limits server.Limits) ([]dispatch.Command, error) {
	replies := p.inquiry.Wait(ctx, r.preflight)
	var silent []string
	lockable := make([]*dispatch.Target, 0, len(p.asked))
	for _, t := range p.asked {
		reply := replies[t.ID]
		if reply.Information == nil {
			silent = append(silent, t.ID+" ("+reply.Problem+")")
			lockable = append(lockable, t)
			continue
		}
		r.mu.Lock()
		r.answered[t.ID] = reply.Information
		r.mu.Unlock()
		dispatch.Answered(t, *reply.Information)
		if dispatch.NeedsPIN(t, *reply.Information) {
			r.errorf("not locking %s: %s", t.ID, dispatch.PINRequired)
			r.settle(report.Device{ID: t.ID, Source: t.Source(), Outcome: report.Refused, Error: dispatch.PINRequired})
			continue
		}
		lockable = append(lockable, t)
	}
	if len(silent) > 0 {
		r.warn(fmt.Sprintf("%s gave no facts, judged on those it had: %s", plural(len(silent), "device"), listSome(silent)))
	}
	r.refuseUnknown(lockable)
	send, refused := r.partition(lockable)
	for _, t := range refused {
		r.errorf("refusing to lock %s: %s; it received no DeviceLock (--allow-deactivation overrides)", t.ID, t.Assessment.Reason)
		r.settle(report.Device{ID: t.ID, Source: t.Source(), Outcome: report.Refused, Error: t.Assessment.Reason})
	}
	if r.history != nil {
		var (
			held []report.Device
			err  error
		)
		if send, held, err = r.holdBack(ctx, send); err != nil {
			return nil, err
		}
		for _, d := range held {
			r.errorf("not locking %s: %s", d.ID, d.Error)
			r.settle(d)
		}
	}
	return dispatch.Plan(append(held, send...), limits, r.opts.NewUUID, r.opts.CommandUUID)
}

// refuseUnknown applies --if-unknown=refuse: a device whose facts leave
// the guard unsure is refused, not sent with a warning.
func (r *runner) refuseUnknown(targets []*dispatch.Target) {
	if r.opts.IfUnknown != ifUnknownRefuse {
		return
	}
	for _, t := range targets {
		if t.Assessment.Risk == apple.RiskUnknown {
			t.Assessment = &apple.Assessment{Risk: apple.RiskDeactivation, Reason: "facts unknown (--if-unknown=refuse): " + t.Assessment.Reason}
		}
	}
}

func (r *runner) errorf(format string, args ...any) {
	io := r.opts.IO
	fmt.Fprintln(io.ErrOut, io.ColorErr().Red("error: "+output.Escape(fmt.Sprintf(format, args...))))
}

// listSome names up to five items and counts the rest.
func listSome(items []string) string {
	const most = 5
	if len(items) <= most {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:most], ", "), len(items)-most)
}

// planLater plans the commands decided only after the first ones went out
// (the locks of the devices a preflight asked); nil plans none.
type planLater func() ([]dispatch.Command, error)

// sendRounds sends the locks decided before the preflight at once, then
// those decided on the devices' answers; it returns the first error.
func (r *runner) sendRounds(ctx context.Context, conn *connect.Connection, cmds []dispatch.Command, later planLater, sendOpts dispatch.Options, emit dispatch.Emit) error {
	sendErr := dispatch.Send(ctx, conn.Server, cmds, sendOpts, emit)
	if later == nil {
		return sendErr
	}
	more, err := later()
	if err != nil {
		return &exitcode.UsageError{Err: err}
	}
	if len(more) > 0 && r.journal != nil {
		if err := r.journal.plan(more); err != nil {
			return err
		}
	}
	if err := dispatch.Send(ctx, conn.Server, more, sendOpts, emit); sendErr == nil {
		sendErr = err
	}
	return sendErr
}
