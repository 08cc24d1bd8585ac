package lock

import (
	"bufio"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/escrow"
	"github.com/mdmctl/mdmctl/pkg/fleet"
	"github.com/mdmctl/mdmctl/pkg/output"
	"github.com/mdmctl/mdmctl/pkg/report"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

// Run does the work: validate everything, apply the guard, confirm, then
// send (or print, with --dry-run) and report every device exactly once.
func Run(ctx context.Context, opts *Options) error {
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
	if len(in.targets)+len(in.invalid) == 0 {
		return cmdutil.Usagef("no target: give UDIDs as arguments, --udid, --udid-file, --csv, or - for stdin")
	}
	printer, err := newPrinter(opts)
	if err != nil {
		return err
	}
	r := &runner{opts: opts, printer: printer,
		run: report.Run{RequestType: apple.RequestTypeDeviceLock, DryRun: opts.DryRun, Summary: report.Summary{}}}
	return r.execute(ctx, in)
}

func (opts *Options) checkFlags() error {
	switch {
	case opts.Concurrency < 1:
		return cmdutil.Usagef("invalid --concurrency %d: must be at least 1", opts.Concurrency)
	case opts.Retries < 0:
		return cmdutil.Usagef("invalid --retries %d: must be 0 or more", opts.Retries)
	case opts.Timeout <= 0:
		return cmdutil.Usagef("invalid --timeout %s: must be positive", opts.Timeout)
	case opts.ConnectTimeout <= 0:
		return cmdutil.Usagef("invalid --connect-timeout %s: must be positive", opts.ConnectTimeout)
	case opts.PINGenerate && opts.PINEscrow == "" && !opts.DryRun:
		return cmdutil.Usagef("--pin-generate needs --pin-escrow FILE: a generated PIN must be kept before it is used")
	case opts.PINEscrow != "" && !opts.PINGenerate:
		return cmdutil.Usagef("--pin-escrow goes with --pin-generate")
	}
	if opts.CommandUUID != "" {
		if err := apple.ValidateText(opts.CommandUUID); err != nil || strings.TrimSpace(opts.CommandUUID) != opts.CommandUUID {
			return cmdutil.Usagef("invalid --command-uuid %q: must be printable text without surrounding spaces", opts.CommandUUID)
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
	// preflight is how long devices are given to answer DeviceInformation
	// (0: not asked); answered holds their answers, shown with their lines.
	preflight time.Duration
	answered  map[string]*apple.Information
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
	_ = r.printer.Device(d)
	if r.progress != nil {
		_ = r.progress.Add(1)
	}
}

func (r *runner) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
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

func (r *runner) warn(msg string) {
	io := r.opts.IO
	fmt.Fprintln(io.ErrOut, io.ColorErr().Yellow("warning: "+msg))
}

func (r *runner) execute(ctx context.Context, in *collected) error {
	opts := r.opts
	var (
		conn     *cmdutil.Connection
		settings config.Settings
		err      error
	)
	connect := func() error {
		conn, err = opts.Connect(ctx, settings, cmdutil.ConnectOptions{Concurrency: opts.Concurrency, Timeout: opts.Timeout,
			ConnectTimeout: opts.ConnectTimeout, Retries: opts.Retries, Debug: opts.Debug})
		if err != nil {
			return err
		}
		if opts.NoPush && !conn.CanSkipPush {
			return cmdutil.Usagef("--no-push does not apply to the %s kind: it cannot queue without a push", settings.Kind)
		}
		r.run.Server = conn.Name
		return nil
	}
	var feed *cmdutil.AnswerFeed
	defer func() {
		feed.Close(ctx)
		if conn != nil {
			conn.Close()
		}
	}()
	if (!opts.DryRun || opts.PreflightGiven) && len(in.targets) > 0 {
		if settings, err = opts.Settings(); err != nil {
			return &cmdutil.UsageError{Err: err}
		}
		for _, w := range settings.Warnings {
			r.warn(w)
		}
		// Servers that know their devices feed the guard. Others are not
		// contacted yet: a run the guard refuses whole needs no server.
		if config.KnowsDevices(settings.Kind) {
			if err := connect(); err != nil {
				return err
			}
			fillFacts(ctx, in.targets, conn.Facts)
		}
	}

	fleet.Assess(in.targets)
	if opts.preflightOn(settings.Preflight > 0) {
		r.preflight, r.answered = settings.Preflight, map[string]*apple.Information{}
	}
	asked, ready := splitForPreflight(in.targets, r.preflight > 0)
	r.refuseUnknown(ready)
	send, refused := r.partition(ready)
	if len(refused) > 0 && len(send)+len(asked) == 0 && len(in.invalid) == 0 {
		io := r.opts.IO
		fmt.Fprintln(io.ErrOut, io.ColorErr().Red(fmt.Sprintf("error: refusing to lock %s: %s; nothing was sent (--allow-deactivation overrides)",
			describeTargets(refused), refused[0].Assessment.Reason)))
	}
	limits := fleet.DefaultLimits
	if len(send)+len(asked) > 0 && (!opts.DryRun || len(asked) > 0) {
		if !opts.DryRun {
			if err := r.confirm(len(send)+len(asked), len(refused), len(in.invalid), unknownRisk(send)); err != nil {
				return err
			}
		}
		if conn == nil {
			if err := connect(); err != nil {
				return err
			}
		}
		limits = conn.Limits
	}
	var pf *preflight
	var held []*fleet.Target
	if len(asked) > 0 {
		feed = cmdutil.NewAnswerFeed(conn, settings)
		if pf, err = r.startPreflight(ctx, conn, feed, asked); err != nil {
			return err
		}
		if opts.CommandUUID != "" {
			// One CommandUUID is one command: those ready wait for the rest.
			send, held = nil, send
		}
	}
	cmds, err := fleet.Plan(send, limits, opts.NewUUID, opts.CommandUUID)
	if err != nil {
		return &cmdutil.UsageError{Err: err}
	}
	if len(cmds) == 1 {
		r.run.CommandUUID = cmds[0].UUID
	}
	// later plans the locks of the devices asked first, once they answered.
	later := func() ([]fleet.Command, error) {
		if pf == nil {
			return nil, nil
		}
		more, err := r.afterPreflight(ctx, pf, held, limits)
		switch total := len(cmds) + len(more); {
		case total == 1 && len(more) == 1:
			r.run.CommandUUID = more[0].UUID
		case total > 1:
			r.run.CommandUUID = ""
		}
		return more, err
	}

	for _, d := range in.invalid {
		r.emit(d)
	}
	for _, a := range refused {
		r.emit(report.Device{ID: a.ID, Source: a.Source(), Outcome: report.Refused, Error: a.Assessment.Reason})
	}
	if opts.DryRun {
		more, err := later()
		if err != nil {
			return &cmdutil.UsageError{Err: err}
		}
		if err := r.printPlan(append(cmds, more...)); err != nil {
			return err
		}
		return r.finish(nil)
	}
	if len(cmds) == 0 && pf == nil {
		return r.finish(nil)
	}
	r.startProgress(len(send) + len(asked))

	sendOpts := fleet.Options{NoPush: opts.NoPush, Concurrency: opts.Concurrency, Flush: r.flush}
	if opts.PINGenerate {
		esc, err := escrow.Open(opts.PINEscrow)
		if err != nil {
			return &cmdutil.UsageError{Err: err}
		}
		defer esc.Close()
		sendOpts.BeforeSend = escrowPINs(esc, opts.Now)
	}
	if feed == nil {
		feed = cmdutil.NewAnswerFeed(conn, settings)
	}
	if opts.Wait > 0 && !conn.Synchronous {
		return r.sendAndWait(ctx, conn, feed, cmds, later, sendOpts)
	}
	// The first interrupt stops new requests; those in flight finish under
	// their own timeout.
	sendErr := r.sendRounds(ctx, conn, cmds, later, sendOpts, r.emit)
	r.run.Interrupted = ctx.Err() != nil
	return r.finish(sendErr)
}

// sendAndWait sends, then waits up to --wait for every queued device's own
// answer, reporting each device once: with its answer, its queue failure,
// or as no-answer when the wait ends.
func (r *runner) sendAndWait(ctx context.Context, conn *cmdutil.Connection, feed *cmdutil.AnswerFeed, cmds []fleet.Command, later func() ([]fleet.Command, error), sendOpts fleet.Options) error {
	collector := webhook.NewCollector()
	// Answers trickle in one at a time: each leaves at once.
	join := fleet.NewJoin(collector, func(d report.Device) {
		r.emit(d)
		r.flush()
	})
	join.Expect(cmds)
	url, err := feed.Subscribe(collector, "--wait")
	if err != nil {
		return err
	}
	if url != "" {
		fmt.Fprintf(r.opts.IO.ErrOut, "waiting up to %s for answers at %s\n", r.opts.Wait, url)
	}
	r.run.Waited = true
	sendErr := r.sendRounds(ctx, conn, cmds, func() ([]fleet.Command, error) {
		more, err := later()
		join.Expect(more)
		return more, err
	}, sendOpts, join.Queued)
	waitCtx, cancel := context.WithTimeout(ctx, r.opts.Wait)
	defer cancel()
	_ = collector.Wait(waitCtx)
	join.Finish()
	r.run.Interrupted = ctx.Err() != nil
	return r.finish(sendErr)
}

// fillFacts completes what the input left unknown from what the server
// knows about each device; what the input says stands.
func fillFacts(ctx context.Context, ts []*fleet.Target, lookup func(context.Context, []string) map[string]apple.Device) {
	var ids []string
	for _, t := range ts {
		if f := t.Facts; f.Platform == apple.PlatformUnknown || f.Model == "" || f.OSVersion == nil {
			ids = append(ids, t.ID)
		}
	}
	if len(ids) == 0 {
		return
	}
	known := lookup(ctx, ids)
	for _, t := range ts {
		k, ok := known[t.ID]
		if !ok {
			continue
		}
		f := *t.Facts
		if f.Platform == apple.PlatformUnknown {
			f.Platform = k.Platform
		}
		if f.Model == "" {
			f.Model = k.Model
		}
		if f.OSVersion == nil {
			f.OSVersion = k.OSVersion
		}
		t.Facts = &f
	}
}

// unknownRisk counts the devices the guard could not judge.
func unknownRisk(ts []*fleet.Target) int {
	n := 0
	for _, t := range ts {
		if t.Assessment.Risk == apple.RiskUnknown {
			n++
		}
	}
	return n
}

// partition applies the guard: refused devices are reported, not sent.
func (r *runner) partition(targets []*fleet.Target) (send, refused []*fleet.Target) {
	unknown := 0
	send = make([]*fleet.Target, 0, len(targets))
	for _, a := range targets {
		switch {
		case a.Assessment.Risk == apple.RiskDeactivation && !r.opts.AllowDeactivation:
			refused = append(refused, a)
			continue
		case a.Assessment.Risk == apple.RiskDeactivation:
			r.warn(fmt.Sprintf("%s: sending despite the risk (--allow-deactivation): %s", a.ID, a.Assessment.Reason))
		case a.Assessment.Risk == apple.RiskUnknown:
			unknown++
		}
		send = append(send, a)
	}
	if unknown > 0 {
		r.warn(fmt.Sprintf("device facts unknown for %s: %s. Give --platform, --model and --os-version (or CSV columns) to let mdmctl check",
			plural(unknown, "device"), apple.DeactivationRule))
	}
	for _, note := range distinctNotes(send) {
		r.warn(note)
	}
	return send, refused
}

// confirm asks on a terminal before locking more than one device; off a
// terminal, --yes is required, since nobody can be asked.
func (r *runner) confirm(sending, refused, invalid, unknown int) error {
	opts := r.opts
	if sending <= 1 || opts.Yes {
		return nil
	}
	if !opts.IO.CanPrompt() {
		return cmdutil.Usagef("locking %d devices needs --yes when mdmctl cannot ask (not a terminal)", sending)
	}
	q := fmt.Sprintf("Lock %d devices", sending)
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
	fmt.Fprintf(opts.IO.ErrOut, "%s? [y/N] ", q)
	answer, _ := bufio.NewReader(opts.IO.In).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return &cmdutil.CancelError{}
}

func (r *runner) finish(sendErr error) error {
	if r.progress != nil {
		_ = r.progress.Finish()
	}
	if err := r.printer.End(r.run); err != nil {
		return err
	}
	code := cmdutil.RunExitCode(r.run.Summary, sendErr)
	if r.run.Interrupted {
		code = cmdutil.ExitInterrupted
	}
	if code == cmdutil.ExitOK {
		return nil
	}
	if sendErr != nil {
		// Each device's line carries the error; say once what it was.
		io := r.opts.IO
		fmt.Fprintln(io.ErrOut, io.ColorErr().Red("error: "+sendErr.Error()))
	}
	return &cmdutil.ExitError{Code: code}
}

// escrowPINs writes each generated PIN to the escrow file, synced, before
// its command is sent.
func escrowPINs(esc *escrow.File, now func() time.Time) func(fleet.Command) error {
	return func(c fleet.Command) error {
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

// newPrinter picks the printer for -o. A text dry run writes its plan lines
// to stderr, keeping stdout for the plists; -o plist prints plists alone.
func newPrinter(opts *Options) (output.Printer, error) {
	streams := opts.IO
	switch {
	case opts.Output == formatPlist && !opts.DryRun:
		return nil, cmdutil.Usagef("invalid --output plist: it goes with --dry-run")
	case opts.Output == formatPlist:
		return output.Discard{}, nil
	case opts.DryRun && (opts.Output == output.FormatText || opts.Output == ""):
		errOnly := *streams
		errOnly.Out = streams.ErrOut
		streams = &errOnly
	}
	p, err := output.New(opts.Output, streams)
	if err != nil {
		return nil, &cmdutil.UsageError{Err: fmt.Errorf("invalid --output: %v", err)}
	}
	return p, nil
}

// formatPlist prints the command plists of a dry run and nothing else.
const formatPlist = "plist"

// printPlan reports each device as planned and, for text and plist output,
// writes each command's plist to stdout, PINs redacted unless --show-pins.
func (r *runner) printPlan(cmds []fleet.Command) error {
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
		payload := c.Payload
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

func describeTargets(ts []*fleet.Target) string {
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
func distinctNotes(ts []*fleet.Target) []string {
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
