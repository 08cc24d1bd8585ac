package lock

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/schollz/progressbar/v3"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/connect"
	"github.com/mdmctl/mdmctl/pkg/dispatch"
	"github.com/mdmctl/mdmctl/pkg/escrow"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/output"
	"github.com/mdmctl/mdmctl/pkg/report"
	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

// Run does the work: validate everything, apply the guard, confirm, then
// send (or print, with --dry-run) and report every device exactly once.
func Run(ctx context.Context, opts *Options) error {
	if opts.Resume != "" {
		return runResume(ctx, opts)
	}
	if err := opts.checkFlags(); err != nil {
		return err
	}
	lock, err := opts.lockValues()
	if err != nil {
		return err
	}
	facts, err := opts.facts()
	if err != nil {
		return err
	}
	in, err := opts.collect(defaults{lock: &lock, facts: &facts})
	if err != nil {
		return err
	}
	if err := opts.addSerials(in); err != nil {
		return err
	}
	if len(in.targets)+len(in.invalid)+len(in.serials) == 0 {
		return exitcode.Usagef("no target: give UDIDs as arguments, --udid, --udid-file, --csv, --serial, or - for stdin")
	}
	printer, err := newPrinter(opts)
	if err != nil {
		return err
	}
	if n := len(in.targets) + len(in.invalid) + len(in.serials); n > 1 {
		output.AlignColumns(printer, in.idWidth(), outcomeWidth(opts))
	}
	r := &runner{opts: opts, printer: printer,
		run: report.Run{RequestType: apple.RequestTypeDeviceLock, DryRun: opts.DryRun, Summary: report.Summary{}}}
	return r.execute(ctx, in)
}

func (opts *Options) checkFlags() error {
	switch {
	case opts.Concurrency < 1:
		return exitcode.Usagef("invalid --concurrency %d: must be at least 1", opts.Concurrency)
	case opts.Retries < 0:
		return exitcode.Usagef("invalid --retries %d: must be 0 or more", opts.Retries)
	case opts.Timeout <= 0:
		return exitcode.Usagef("invalid --timeout %s: must be positive", opts.Timeout)
	case opts.ConnectTimeout <= 0:
		return exitcode.Usagef("invalid --connect-timeout %s: must be positive", opts.ConnectTimeout)
	case opts.PINGenerate && opts.PINEscrow == "" && !opts.DryRun && opts.Resume == "":
		return exitcode.Usagef("--pin-generate needs --pin-escrow FILE: a generated PIN must be kept before it is used")
	case opts.Identity != "" && opts.Resume == "":
		return exitcode.Usagef("--identity goes with --resume: it opens the PINs of an encrypted escrow to resend them")
	}
	if opts.CommandUUID != "" {
		if err := apple.ValidateText(opts.CommandUUID); err != nil || strings.TrimSpace(opts.CommandUUID) != opts.CommandUUID {
			return exitcode.Usagef("invalid --command-uuid %q: must be printable text without surrounding spaces", opts.CommandUUID)
		}
	}
	return nil
}

// runner carries one run's state: the printer, the running summary and
// the progress bar.
type runner struct {
	opts     *Options
	printer  output.Printer
	run      report.Run
	progress *progressbar.ProgressBar
	journal  *runJournal
	history  *runHistory
	// preflight is how long devices are given to answer DeviceInformation
	// (0: not asked); answered holds their answers, shown with their lines.
	preflight time.Duration
	answered  map[string]*apple.Information
	// recipients are the age keys escrowed PINs are encrypted to; none: in clear.
	recipients []age.Recipient
	// settings and driver are the run's server and its kind; conn, once
	// opened, the server; feed brings the devices' answers.
	settings config.Settings
	driver   server.Driver
	conn     *connect.Connection
	feed     *connect.AnswerFeed
	// serverPINs: the kind makes some targets' PINs (settlePlans), which
	// the escrow then keeps.
	serverPINs bool
	// pending are the guard's warnings, shown only once the run gets as far
	// as asking or sending: a usage error or a refusal comes without them.
	pending []string
	// mu serializes output: queue results and device answers arrive on
	// different goroutines.
	mu sync.Mutex
}

func (r *runner) emit(d report.Device) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.opts.ShowPINs {
		d.PIN = ""
	}
	d.Facts = r.answered[d.ID]
	r.run.Summary.Add(d.Outcome)
	if r.history != nil {
		r.history.outcome(d)
	}
	_ = r.printer.Device(d)
	if r.progress != nil {
		_ = r.progress.Add(1)
	}
}

func (r *runner) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.history != nil {
		r.history.write()
	}
	_ = r.printer.Flush()
}

// startProgress shows count, rate and ETA on stderr when a person watches
// it and device lines are not being drawn on the same terminal.
func (r *runner) startProgress(total int) {
	io := r.opts.IO
	if total < 2 || !io.IsStderrTTY() || (io.IsStdoutTTY() && r.opts.Output != output.FormatJSON) {
		return
	}
	r.progress = progressbar.NewOptions(total,
		progressbar.OptionSetWriter(io.ErrOut),
		progressbar.OptionSetDescription("locking"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("devices"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionEnableColorCodes(io.ColorErr().Enabled()),
	)
}

func (r *runner) warn(msg string) { output.Warn(r.opts.IO, msg) }

// warnLater keeps a warning for showWarnings.
func (r *runner) warnLater(msg string) { r.pending = append(r.pending, msg) }

// showWarnings prints the kept warnings, once.
func (r *runner) showWarnings() {
	for _, w := range r.pending {
		r.warn(w)
	}
	r.pending = nil
}

func (r *runner) execute(ctx context.Context, in *collected) error {
	defer r.close(ctx)
	if err := r.resolve(ctx, in); err != nil {
		return err
	}
	sel := r.judge(in)
	if err := r.prepare(ctx, in, sel); err != nil {
		return err
	}
	p, err := r.plan(ctx, sel)
	if err != nil {
		return err
	}
	settled := r.settleEarly(in, sel)
	switch {
	case r.opts.DryRun:
		return r.dryRun(p)
	case len(p.cmds) == 0 && p.preflight == nil:
		return r.finish(nil)
	}
	if err := r.startJournal(r.settings, p.cmds, settled); err != nil {
		return err
	}
	r.showWarnings()
	if r.feed == nil {
		r.feed = connect.NewAnswerFeed(r.conn, r.settings)
	}
	return r.send(ctx, r.conn, r.feed, p.cmds, p.later, len(sel.send)+len(sel.asked)+len(sel.waiting))
}

// close releases what the run opened: the history, the receiver, the server.
func (r *runner) close(ctx context.Context) {
	r.closeHistory()
	r.feed.Close(ctx)
	if r.conn != nil {
		r.conn.Close()
	}
}

// open connects to the server once; later calls keep the connection.
func (r *runner) open(ctx context.Context) error {
	if r.conn != nil {
		return nil
	}
	conn, err := r.connect(ctx, r.settings)
	if err != nil {
		return err
	}
	r.conn = conn
	return nil
}

// resolve settles the settings and what the kind says about the targets:
// the IDs it can carry, how it carries the lock, the devices of serial
// numbers, and (servers that know their devices) the facts the guard
// weighs, in a dry run too, so it plans what the real run would do. Others
// are not contacted yet: a run the guard refuses whole needs no server.
func (r *runner) resolve(ctx context.Context, in *collected) error {
	opts := r.opts
	if len(in.targets)+len(in.serials) == 0 {
		return nil
	}
	var err error
	if r.settings, err = opts.Settings(); err != nil {
		return &exitcode.UsageError{Err: err}
	}
	d, _ := server.Lookup(r.settings.Kind)
	r.driver = d
	if err := refuseUnanswerable(d, opts.Wait > 0, opts.preflightOn(r.settings.Preflight > 0)); err != nil {
		return err
	}
	if err := r.checkIDs(d, in); err != nil {
		return err
	}
	plans, err := r.planLocks(d, in.targets)
	if err != nil {
		return err
	}
	if !opts.DryRun {
		for _, w := range r.settings.Warnings {
			r.warn(w)
		}
	}
	if len(in.serials) > 0 {
		if !d.SerialNumbers {
			return exitcode.Usagef("targets by serial number (--serial, a CSV serial column): the %s kind cannot look up serial numbers (its API keeps no device inventory); give UDIDs", d.Kind)
		}
		if err := r.open(ctx); err != nil {
			return err
		}
		if err := r.resolveSerials(ctx, r.conn, in); err != nil {
			return err
		}
	}
	if d.Inventory {
		if err := r.open(ctx); err != nil {
			return err
		}
		dispatch.ObserveInventory(ctx, in.targets, r.conn.Name+" inventory", r.conn.Facts, r.warn)
	}
	if len(in.serials) > 0 || d.Inventory {
		// What the server knows of the devices may change their plans.
		if plans, err = r.planLocks(d, in.targets); err != nil {
			return err
		}
	}
	if err := r.settlePlans(d, plans, len(in.targets)); err != nil {
		return err
	}
	r.recipients, err = opts.escrowRecipients(r.settings, r.escrows())
	return err
}

// refuseUnanswerable refuses, before anything is sent, a --wait or a
// preflight the kind has no way to hear the answers of.
func refuseUnanswerable(d server.Driver, wait, preflight bool) error {
	switch {
	case wait && d.NoStatus:
		return exitcode.Usagef("--wait: the %s kind cannot read back what became of a command (its API has no command status); run without --wait and check the device in the %s console", d.Kind, d.Kind)
	case preflight && d.NoInformation:
		return exitcode.Usagef("--preflight: the %s kind cannot send DeviceInformation (its API has a lock action, no command of mdmctl's own); run without --preflight: the guard weighs the %s inventory", d.Kind, d.Kind)
	}
	return nil
}

// selection is the guard's verdict on a run's targets.
type selection struct {
	// asked are asked DeviceInformation first (--preflight); send are
	// locked now; refused are refused by the guard; heldBack are Macs an
	// earlier lock's PIN still holds; waiting are locked only once the
	// preflight has answered (one --command-uuid for all).
	asked, send, refused, waiting []*dispatch.Target
	heldBack                      []report.Device
}

// judge runs the guard: who is asked first, who is locked, who is refused.
func (r *runner) judge(in *collected) *selection {
	dispatch.Assess(in.targets)
	if r.opts.preflightOn(r.settings.Preflight > 0) {
		r.preflight, r.answered = r.settings.Preflight, map[string]*apple.Information{}
	}
	sel := &selection{}
	var ready []*dispatch.Target
	sel.asked, ready = splitForPreflight(in.targets, r.preflight > 0)
	r.refuseUnknown(ready)
	sel.send, sel.refused = r.partition(ready)
	if len(sel.refused) > 0 && len(sel.send)+len(sel.asked) == 0 && len(in.invalid)+len(in.unresolved) == 0 {
		io := r.opts.IO
		fmt.Fprintln(io.ErrOut, io.ColorErr().Red(fmt.Sprintf("error: refusing to lock %s: %s; nothing was sent (--allow-deactivation overrides)",
			describeTargets(sel.refused), sel.refused[0].Assessment.Reason)))
	}
	return sel
}

// prepare gets a run that sends ready before anything goes: the server
// connected (that sends nothing yet: settings errors come before the
// question), its answers' receiver checked, Macs an earlier PIN holds held
// back, and the user's confirmation. A dry run sends nothing but an
// explicit preflight's DeviceInformation.
func (r *runner) prepare(ctx context.Context, in *collected, sel *selection) error {
	opts := r.opts
	if len(sel.send)+len(sel.asked) == 0 || (opts.DryRun && len(sel.asked) == 0) {
		return nil
	}
	if err := r.open(ctx); err != nil {
		return err
	}
	if (opts.Wait > 0 || len(sel.asked) > 0) && !r.conn.Synchronous {
		if err := r.checkReceiver(r.conn, r.settings); err != nil {
			return err
		}
	}
	if opts.DryRun {
		return nil
	}
	var err error
	if sel.heldBack, err = r.startHistory(ctx, r.settings, &sel.send); err != nil {
		return err
	}
	switch {
	case len(sel.send)+len(sel.asked) > 0:
		return r.confirm(ctx, destination(r.settings), len(sel.send)+len(sel.asked), len(sel.refused)+len(sel.heldBack), len(in.invalid), unknownRisk(sel.send))
	case len(sel.refused) == 0 && len(in.invalid) == 0:
		r.errorf("not locking %s: %s; nothing was sent", describeHeld(sel.heldBack), sel.heldBack[0].Error)
	}
	return nil
}

// planned is what a run sends: its commands now, and later those of the
// devices asked first, once they answered.
type planned struct {
	cmds      []dispatch.Command
	preflight *preflight
	later     planLater
}

// plan starts the preflight, if any, and groups the locks into commands.
func (r *runner) plan(ctx context.Context, sel *selection) (*planned, error) {
	opts := r.opts
	limits := r.driver.Limits
	if r.conn != nil {
		limits = r.conn.Limits
	}
	p := &planned{}
	if len(sel.asked) > 0 {
		r.feed = connect.NewAnswerFeed(r.conn, r.settings)
		var err error
		if p.preflight, err = r.startPreflight(ctx, r.conn, r.feed, sel.asked); err != nil {
			return nil, err
		}
		if opts.CommandUUID != "" {
			// One CommandUUID is one command: those ready wait for the rest.
			sel.send, sel.waiting = nil, sel.send
		}
	}
	cmds, err := dispatch.Plan(sel.send, limits, opts.NewUUID, opts.CommandUUID)
	if err != nil {
		return nil, &exitcode.UsageError{Err: err}
	}
	p.cmds = cmds
	if len(cmds) == 1 {
		r.run.CommandUUID = cmds[0].UUID
	}
	p.later = func() ([]dispatch.Command, error) {
		if p.preflight == nil {
			return nil, nil
		}
		more, err := r.afterPreflight(ctx, p.preflight, sel.waiting, limits)
		switch total := len(cmds) + len(more); {
		case total == 1 && len(more) == 1:
			r.run.CommandUUID = more[0].UUID
		case total > 1:
			r.run.CommandUUID = ""
		}
		return more, err
	}
	return p, nil
}

// settleEarly reports the devices decided before sending (invalid, unknown
// serials, refused, held back) and returns them, for the journal.
func (r *runner) settleEarly(in *collected, sel *selection) []report.Device {
	settled := append(in.invalid, in.unresolved...)
	for _, a := range sel.refused {
		settled = append(settled, report.Device{ID: a.ID, Source: a.Source(), Outcome: report.Refused, Error: a.Assessment.Reason})
	}
	settled = append(settled, sel.heldBack...)
	for _, d := range settled {
		r.emit(d)
	}
	return settled
}

// dryRun prints the plan, the preflight's locks included, and sends nothing more.
func (r *runner) dryRun(p *planned) error {
	more, err := p.later()
	if err != nil {
		return &exitcode.UsageError{Err: err}
	}
	r.showWarnings()
	if err := r.printPlan(append(p.cmds, more...)); err != nil {
		return err
	}
	return r.finish(nil)
}

// connect opens the server the settings name.
func (r *runner) connect(ctx context.Context, settings config.Settings) (*connect.Connection, error) {
	opts := r.opts
	conn, err := opts.Connect(ctx, settings, connect.Options{Concurrency: opts.Concurrency, Timeout: opts.Timeout,
		ConnectTimeout: opts.ConnectTimeout, Retries: opts.Retries, Debug: opts.Debug})
	if err != nil {
		return nil, err
	}
	if opts.NoPush && !conn.SkipPush {
		conn.Close()
		return nil, exitcode.Usagef("--no-push does not apply to the %s kind: it cannot queue without a push", settings.Kind)
	}
	r.run.Server = conn.Name
	return conn, nil
}

// send sends the commands, then those later plans (the locks decided on a
// preflight's answers), to devices devices in all, journaled, and reports
// them.
func (r *runner) send(ctx context.Context, conn *connect.Connection, feed *connect.AnswerFeed, cmds []dispatch.Command, later planLater, devices int) error {
	opts := r.opts
	r.startProgress(devices)
	sendOpts := dispatch.Options{NoPush: opts.NoPush, Concurrency: opts.Concurrency, Flush: r.flush}
	if opts.CommandUUID == "" {
		sendOpts.NewUUID = opts.NewUUID
	}
	// keepLate escrows a PIN the server publishes after its lock returned.
	var keepLate func(commandUUID, id, pin string) error
	if r.escrows() {
		esc, err := openEscrow(opts.PINEscrow, r.recipients)
		if err != nil {
			return err
		}
		defer esc.Close()
		keepLate = escrowPIN(esc, opts.Now)
		sendOpts.BeforeSend = escrowPINs(esc, opts.Now)
		sendOpts.KeepPIN = func(c dispatch.Command, t *dispatch.Target, pin string) error { return keepLate(c.UUID, t.ID, pin) }
	}
	emit := dispatch.Emit(r.emit)
	if j := r.journal; j != nil {
		sendOpts.BeforeSend = j.beforeSend(sendOpts.BeforeSend)
		sendOpts.Flush = func() { _ = j.w.Flush(); r.flush() }
		emit = j.outcomes(emit)
	}
	if h := r.history; h != nil {
		sendOpts.BeforeSend = h.beforeSend(sendOpts.BeforeSend)
	}
	if opts.Wait > 0 && !conn.Synchronous {
		return r.sendAndWait(ctx, conn, feed, cmds, later, sendOpts, keepLate, devices)
	}
	// The first interrupt stops new requests and retries; attempts in
	// flight finish within --timeout.
	sendErr := r.sendRounds(ctx, conn, cmds, later, sendOpts, emit)
	r.run.Interrupted = ctx.Err() != nil
	return r.finish(sendErr)
}

// sendAndWait sends, then waits up to --wait for every queued device's own
// answer, reporting each device once: with its answer, its queue failure,
// or as no-answer when the wait ends. keepLate, when set, escrows the PINs
// the server publishes while the run waits (Session.PINs).
func (r *runner) sendAndWait(ctx context.Context, conn *connect.Connection, feed *connect.AnswerFeed, cmds []dispatch.Command, later planLater, sendOpts dispatch.Options, keepLate func(commandUUID, id, pin string) error, devices int) error {
	collector := webhook.NewCollector()
	// Answers trickle in one at a time: each leaves at once.
	join := dispatch.NewJoin(collector, func(d report.Device) {
		r.emit(d)
		r.flush()
	})
	join.Expect(cmds)
	if conn.PINs != nil && keepLate != nil {
		late := &latePINs{keep: keepLate, join: join, warn: r.warn, server: conn.Name}
		defer late.stop()
		conn.PINs(late.take)
	}
	url, err := feed.Subscribe(collector, "--wait")
	if err != nil {
		return err
	}
	if url != "" {
		r.waiting("at "+url, devices)
	} else {
		r.waiting("from "+conn.Name, devices)
	}
	r.run.Waited = true
	// A request split under new CommandUUIDs is awaited under those.
	before := sendOpts.BeforeSend
	sendOpts.BeforeSend = func(c dispatch.Command) error {
		join.Expect([]dispatch.Command{c})
		if before != nil {
			return before(c)
		}
		return nil
	}
	queued := dispatch.Emit(join.Queued)
	if j := r.journal; j != nil {
		queued = j.outcomes(queued)
	}
	if h := r.history; h != nil {
		queued = h.outcomes(queued)
	}
	sendErr := r.sendRounds(ctx, conn, cmds, later, sendOpts, queued)
	waitCtx, cancel := context.WithTimeout(ctx, r.opts.Wait)
	defer cancel()
	_ = collector.Wait(waitCtx)
	if rc := feed.Receiver(); rc != nil && ctx.Err() == nil {
		r.noEventsHint(rc, collector)
	}
	join.Finish()
	r.run.Interrupted = ctx.Err() != nil
	return r.finish(sendErr)
}

// unknownRisk counts the devices the guard could not judge.
func unknownRisk(ts []*dispatch.Target) int {
	n := 0
	for _, t := range ts {
		if t.Assessment.Risk == apple.RiskUnknown {
			n++
		}
	}
	return n
}

// partition applies the guard: refused devices are reported, not sent.
func (r *runner) partition(targets []*dispatch.Target) (send, refused []*dispatch.Target) {
	unknown := 0
	send = make([]*dispatch.Target, 0, len(targets))
	for _, a := range targets {
		switch {
		case a.Assessment.Risk == apple.RiskDeactivation && !r.opts.AllowDeactivation:
			refused = append(refused, a)
			continue
		case a.Assessment.Risk == apple.RiskDeactivation:
			r.warnLater(fmt.Sprintf("%s: sending despite the risk (--allow-deactivation): %s", a.ID, a.Assessment.Reason))
		case a.Assessment.Risk == apple.RiskUnknown:
			unknown++
		}
		send = append(send, a)
	}
	if unknown > 0 {
		r.warnLater(fmt.Sprintf("device facts unknown for %s: no check for Apple silicon Macs before macOS 11.5 (give --model and --os-version, or CSV columns)",
			plural(unknown, "device")))
	}
	for _, note := range distinctNotes(send) {
		r.warnLater(note)
	}
	return send, refused
}

// confirm asks on a terminal before locking more than one device; off a
// terminal, --yes is required, since nobody can be asked. where names the
// context and server; one Ctrl-C at the question ends the run.
func (r *runner) confirm(ctx context.Context, where string, sending, refused, invalid, unknown int) error {
	opts := r.opts
	if sending <= 1 || opts.Yes {
		return nil
	}
	if !opts.IO.CanPrompt() {
		return exitcode.Usagef("locking %d devices needs --yes when mdmctl cannot ask (not a terminal)", sending)
	}
	q := fmt.Sprintf("Lock %d devices%s", sending, where)
	var extra []string
	if refused > 0 {
		extra = append(extra, fmt.Sprintf("%d refused by the safety guard", refused))
	}
	if invalid > 0 {
		extra = append(extra, fmt.Sprintf("%d invalid lines skipped", invalid))
	}
	if unknown > 0 {
		extra = append(extra, fmt.Sprintf("%d with unknown facts, see the warning", unknown))
	}
	if len(extra) > 0 {
		q += " (" + strings.Join(extra, ", ") + ")"
	}
	r.showWarnings()
	fmt.Fprintf(opts.IO.ErrOut, "%s? [y/N] ", q)
	answer, err := readAnswer(ctx, opts.IO.In)
	if err != nil {
		fmt.Fprintln(opts.IO.ErrOut) // the cursor still stands after the question
		return &exitcode.CancelError{Interrupted: true}
	}
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return &exitcode.CancelError{}
}

func (r *runner) finish(sendErr error) error {
	if r.progress != nil {
		_ = r.progress.Finish()
		// Erase the whole line: the clear covers the bar's width only, not
		// the ^C the terminal echoed after it.
		fmt.Fprint(r.opts.IO.ErrOut, "\r\x1b[K")
	}
	if err := r.printer.End(r.run); err != nil {
		return err
	}
	code := exitcode.OfRun(r.run.Summary, r.run.Interrupted, sendErr)
	if code != exitcode.OK && sendErr != nil && r.run.Summary.Total() > 1 {
		// Each device's line carries the error; say once what it was. A
		// lone device's line already says it all.
		io := r.opts.IO
		fmt.Fprintln(io.ErrOut, io.ColorErr().Red("error: "+output.Escape(sendErr.Error())))
	}
	if r.journal != nil {
		r.journal.close(r)
	}
	if code == exitcode.OK {
		return nil
	}
	return &exitcode.ExitError{Code: code}
}

// escrowPINs writes each generated PIN to the escrow file, synced, before
// its command is sent.
func escrowPINs(esc *escrow.File, now func() time.Time) func(dispatch.Command) error {
	return func(c dispatch.Command) error {
		var recs []escrow.Record
		for _, t := range c.Targets {
			if t.PINGenerated {
				recs = append(recs, escrow.Record{ID: t.ID, CommandUUID: c.UUID, PIN: t.Lock.PIN, Time: now().UTC()})
			}
		}
		if len(recs) == 0 {
			return nil
		}
		return esc.Append(recs...)
	}
}

// escrowPIN writes a PIN the server made to the escrow file, synced,
// before the device's line shows it: with the lock's result, or later.
func escrowPIN(esc *escrow.File, now func() time.Time) func(commandUUID, id, pin string) error {
	return func(commandUUID, id, pin string) error {
		return esc.Append(escrow.Record{ID: id, CommandUUID: commandUUID, PIN: pin, Time: now().UTC()})
	}
}

// newPrinter picks the printer for -o. A text dry run writes its plan lines
// to stderr, keeping stdout for the plists; -o plist prints plists alone.
func newPrinter(opts *Options) (output.Printer, error) {
	streams := opts.IO
	switch {
	case opts.Output == formatPlist && !opts.DryRun:
		return nil, exitcode.Usagef("invalid --output plist: it goes with --dry-run")
	case opts.Output == formatPlist:
		return output.Discard{}, nil
	case opts.DryRun && (opts.Output == output.FormatText || opts.Output == ""):
		errOnly := *streams
		errOnly.Out = streams.ErrOut
		streams = &errOnly
	}
	p, err := output.New(opts.Output, streams)
	if err != nil {
		return nil, &exitcode.UsageError{Err: fmt.Errorf("invalid --output: %v", err)}
	}
	return p, nil
}

// formatPlist prints the command plists of a dry run and nothing else.
const formatPlist = "plist"

// printPlan reports each device as planned and, for text and plist output,
// writes each command's plist to stdout, PINs redacted unless --show-pins.
func (r *runner) printPlan(cmds []dispatch.Command) error {
	opts := r.opts
	withPlists := opts.Output == output.FormatText || opts.Output == "" || opts.Output == formatPlist
	redacted := false
	for _, c := range cmds {
		for _, t := range c.Targets {
			r.emit(report.Device{ID: t.ID, Source: t.Source(), Outcome: report.Planned, CommandUUID: c.UUID, PIN: t.Lock.PIN})
		}
		if !withPlists {
			continue
		}
		payload, err := c.Plist()
		if err != nil {
			return err
		}
		if c.Lock.PIN != "" && !opts.ShowPINs {
			payload, redacted = apple.RedactPIN(payload), true
		}
		if _, err := opts.IO.Out.Write(payload); err != nil {
			return err
		}
		fmt.Fprintln(opts.IO.Out)
	}
	if redacted {
		fmt.Fprintln(opts.IO.ErrOut, "note: PIN redacted from the plist; --show-pins prints it")
	}
	return nil
}

func describeTargets(ts []*dispatch.Target) string {
	if len(ts) == 1 {
		return ts[0].ID
	}
	return plural(len(ts), "device")
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// distinctNotes lists each lesser warning once, however many devices share it.
func distinctNotes(ts []*dispatch.Target) []string {
	seen := map[*apple.Assessment]bool{}
	var notes []string
	for _, t := range ts {
		if seen[t.Assessment] {
			continue
		}
		seen[t.Assessment] = true
		for _, n := range t.Assessment.Notes {
			if !slices.Contains(notes, n) {
				notes = append(notes, n)
			}
		}
	}
	return notes
}
