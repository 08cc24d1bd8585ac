package lock

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/connect"
	"github.com/mdmctl/mdmctl/pkg/dispatch"
	"github.com/mdmctl/mdmctl/pkg/escrow"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/journal"
	"github.com/mdmctl/mdmctl/pkg/output"
	"github.com/mdmctl/mdmctl/pkg/report"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// runResume continues the run journaled in opts.Resume: it sends again, with
// their original CommandUUIDs and byte-identical plists, the devices whose
// request never went out, got no answer (on servers that recognize a
// duplicate), or failed before reaching the server; every other device of
// the run is reported with its journaled outcome, marked as from the earlier
// run, so the output still names each device of the run once and the exit
// code speaks for the whole run. New records go to the same journal.
func runResume(ctx context.Context, opts *Options) error {
	if err := opts.checkResumeFlags(); err != nil {
		return err
	}
	pinFlags, err := opts.lockValues()
	if err != nil {
		return err
	}
	printer, err := newPrinter(opts)
	if err != nil {
		return err
	}
	settings, err := opts.Settings()
	if err != nil {
		return &exitcode.UsageError{Err: err}
	}
	w, st, err := journal.Append(opts.Resume)
	if err != nil {
		return &exitcode.UsageError{Err: err}
	}
	r := &runner{opts: opts, printer: printer,
		run: report.Run{RequestType: apple.RequestTypeDeviceLock, Summary: report.Summary{}}}
	r.journal = &runJournal{w: w, salt: st.Header.PINSalt, kind: settings.Kind, checks: map[string]string{}}
	closed := false
	defer func() {
		if !closed {
			w.Close()
		}
	}()
	if h := st.Header; strings.TrimRight(h.Server, "/") != strings.TrimRight(settings.Server, "/") || h.Kind != settings.Kind {
		return exitcode.Usagef("run journal %s is of a run against %s (kind %s), not the current %s (kind %s): pick that server with --context or MDMCTL_SERVER",
			opts.Resume, orNone(h.Server), orNone(h.Kind), orNone(settings.Server), orNone(settings.Kind))
	}
	opts.NoPush = st.Header.NoPush
	plan, err := r.rebuild(st, pinFlags.PIN)
	if err != nil {
		return err
	}
	if err := r.planResumed(settings, st, plan); err != nil {
		return err
	}
	// Known once rebuild has found whether the run generated PINs, and the
	// kind whether it makes some.
	if r.recipients, err = opts.escrowRecipients(settings, r.escrows()); err != nil {
		return err
	}
	if plan.devices+len(plan.earlier) > 1 {
		output.AlignColumns(printer, plan.idWidth(), outcomeWidth(opts))
	}
	for _, w := range settings.Warnings {
		r.warn(w)
	}
	var conn *connect.Connection
	if len(plan.cmds) > 0 {
		if err := r.openHistory(settings); err != nil {
			return err
		}
		defer r.closeHistory()
		if err := r.confirm(ctx, destination(settings), plan.devices, 0, 0, 0); err != nil {
			return err
		}
		if conn, err = r.connect(ctx, settings); err != nil {
			return err
		}
		defer conn.Close()
		if opts.Wait > 0 && !conn.Synchronous {
			if err := r.checkReceiver(conn, settings); err != nil {
				return err
			}
		}
	}
	for _, d := range plan.earlier {
		r.emit(d)
	}
	closed = true // finish closes it from here on
	if conn == nil {
		fmt.Fprintln(opts.IO.ErrOut, "nothing to resend: every device of the run has its outcome")
		return r.finish(nil)
	}
	feed := connect.NewAnswerFeed(conn, settings)
	defer feed.Close(ctx)
	r.showWarnings()
	return r.send(ctx, conn, feed, plan.cmds, nil, plan.devices)
}

// planResumed asks the kind again how it carries the resent locks: a PIN
// it makes goes to the run's escrow, as in the first run.
func (r *runner) planResumed(settings config.Settings, st *journal.State, plan *resumePlan) error {
	d, _ := server.Lookup(settings.Kind)
	var targets []*dispatch.Target
	for _, c := range plan.cmds {
		targets = append(targets, c.Targets...)
	}
	if r.opts.PINEscrow == "" && !r.opts.PINGenerate {
		r.opts.PINEscrow = st.Header.PINEscrow
	}
	plans, err := r.planLocks(d, targets)
	if err != nil {
		return err
	}
	if r.opts.PINEscrow == "" {
		// The first run kept no PIN (none of its devices was a Mac whose
		// PIN the server makes): nor does its resume ask for an escrow.
		return nil
	}
	return r.settlePlans(d, plans, len(targets))
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// checkResumeFlags refuses what a resume takes from the journal instead:
// targets, lock values and device facts. The PIN it asks for again.
func (opts *Options) checkResumeFlags() error {
	conflicts := []struct {
		set  bool
		flag string
	}{
		{len(opts.IDs) > 0, "a target (argument, --udid or -)"}, {len(opts.UDIDFiles) > 0, "--udid-file"}, {len(opts.CSVFiles) > 0, "--csv"},
		{opts.Message != "", "--message"}, {opts.Phone != "", "--phone"}, {opts.NetworkTether, "--network-tether"},
		{opts.CommandUUID != "", "--command-uuid"}, {opts.Platform != "", "--platform"}, {opts.Model != "", "--model"},
		{opts.OSVersion != "", "--os-version"}, {opts.AllowDeactivation, "--allow-deactivation"}, {opts.SkipInvalid, "--skip-invalid"},
		{opts.NoPush, "--no-push"}, {opts.DryRun, "--dry-run"}, {opts.Journal != "", "--journal"},
	}
	for _, c := range conflicts {
		if c.set {
			return exitcode.Usagef("%s conflicts with --resume: the journal holds the run's targets and values", c.flag)
		}
	}
	return opts.checkFlags()
}

// resumePlan is what a resume sends and what it reports from the journal.
type resumePlan struct {
	cmds    []dispatch.Command
	devices int
	earlier []report.Device
}

// idWidth is the length of the longest ID of the run, for aligned columns.
func (p resumePlan) idWidth() int {
	w := 0
	for _, d := range p.earlier {
		w = max(w, len(d.ID))
	}
	for _, c := range p.cmds {
		for _, t := range c.Targets {
			w = max(w, len(t.ID))
		}
	}
	return w
}

// rebuild makes, for each command with devices to send again, the very
// plist first sent: same CommandUUID, values and PIN, checked against the
// journal's digest (and the PIN against its check).
func (r *runner) rebuild(st *journal.State, givenPIN string) (*resumePlan, error) {
	opts := r.opts
	resend := resendsUnknown(r.journal.kind)
	byCmd := map[string][]*journal.Device{}
	landed := map[string]bool{}
	for _, d := range st.Devices {
		if d.CommandUUID != "" {
			byCmd[d.CommandUUID] = append(byCmd[d.CommandUUID], d)
			landed[d.CommandUUID] = landed[d.CommandUUID] || d.Landed()
		}
	}
	p := &resumePlan{}
	var pins map[[2]string]string
	usesGiven, usesGenerated := false, false
	sending := map[string]bool{} // device IDs resent
	for _, c := range orderedCommands(st) {
		var devs []*journal.Device
		mayHaveLanded := false
		for _, d := range byCmd[c.UUID] {
			if d.Resendable() && (resend || !d.MayHaveLanded) {
				devs = append(devs, d)
				mayHaveLanded = mayHaveLanded || d.MayHaveLanded
			}
		}
		// A command the server holds for some devices cannot be resent for
		// the others: the duplicate answer would not say which hold it.
		if len(devs) == 0 || landed[c.UUID] {
			continue
		}
		lock := apple.DeviceLock{Message: c.Lock.Message, PhoneNumber: c.Lock.Phone, RequestRequiresNetworkTether: c.Lock.NetworkTether}
		generated := false
		switch c.Lock.PIN {
		case journal.PINGiven:
			usesGiven = true
			if givenPIN == "" {
				return nil, exitcode.Usagef("the run sent a PIN: give it again with %s, --pin-file or --pin", EnvPIN)
			}
			check, err := r.journal.pinCheck(givenPIN)
			if err != nil {
				return nil, err
			}
			if check != c.Lock.PINCheck {
				return nil, exitcode.Usagef("the PIN given is not the one the run sent to %s (command %s): nothing was sent", devs[0].ID, c.UUID)
			}
			lock.PIN = givenPIN
		case journal.PINGenerated:
			usesGenerated = true
			if pins == nil {
				var err error
				if pins, err = r.escrowedPINs(st); err != nil {
					return nil, err
				}
			}
			generated = true
			pin, ok := pins[[2]string{c.UUID, devs[0].ID}]
			switch {
			case ok:
				lock.PIN = pin
			case mayHaveLanded:
				// The escrow is written before sending: a command that may
				// have gone out has its PIN there, unless the file changed.
				return nil, fmt.Errorf("no escrowed PIN for %s (command %s), whose command may have reached the server: is %s the run's escrow file?", devs[0].ID, c.UUID, opts.PINEscrow)
			default:
				// Never sent, so no Mac holds a PIN from it: a new one is
				// escrowed before sending, as in the first run.
				var err error
				if lock.PIN, err = escrow.GeneratePIN(); err != nil {
					return nil, err
				}
			}
		}
		fc := dispatch.Command{UUID: c.UUID, Lock: lock, MayHaveLanded: mayHaveLanded}
		payload, err := fc.Plist()
		if err != nil {
			return nil, err
		}
		if journal.Digest(apple.RedactPIN(payload)) != c.Digest {
			return nil, fmt.Errorf("run journal %s: command %s cannot be rebuilt byte for byte (written by another mdmctl version?): nothing was sent", opts.Resume, c.UUID)
		}
		facts := &apple.Device{}
		for _, d := range devs {
			fc.Targets = append(fc.Targets, &dispatch.Target{ID: d.ID, Facts: facts, Lock: &fc.Lock, PINGenerated: generated})
			sending[d.ID] = true
		}
		p.cmds = append(p.cmds, fc)
		p.devices += len(devs)
	}
	if givenPIN != "" && !usesGiven {
		return nil, exitcode.Usagef("the run left to resend sends no PIN it was given: drop --pin, --pin-file and %s", EnvPIN)
	}
	if opts.PINGenerate && !usesGenerated && st.Header.Lock.PIN != journal.PINGenerated {
		return nil, exitcode.Usagef("--pin-generate conflicts with --resume of a run that generated no PINs")
	}
	for _, d := range st.Devices {
		if !sending[d.ID] {
			p.earlier = append(p.earlier, earlierReport(d))
		}
	}
	return p, nil
}

// orderedCommands lists the journal's commands in the order they were
// recorded, so a resume sends in the run's order.
func orderedCommands(st *journal.State) []*journal.Command {
	seen := map[string]bool{}
	var cmds []*journal.Command
	for _, d := range st.Devices {
		if c := st.Commands[d.CommandUUID]; c != nil && !seen[c.UUID] {
			seen[c.UUID] = true
			cmds = append(cmds, c)
		}
	}
	return cmds
}

// escrowedPINs reads the run's escrow file (or --pin-escrow's) and makes
// the send escrow the PINs it resends, as the first run did.
func (r *runner) escrowedPINs(st *journal.State) (map[[2]string]string, error) {
	opts := r.opts
	if opts.PINEscrow == "" {
		opts.PINEscrow = st.Header.PINEscrow
	}
	if opts.PINEscrow == "" {
		return nil, exitcode.Usagef("the run generated PINs but its journal names no escrow file: give --pin-generate --pin-escrow FILE")
	}
	opts.PINEscrow = filepath.Clean(opts.PINEscrow)
	opts.PINGenerate = true
	return opts.readEscrowedPINs()
}

// earlierReport is a device not sent again, as the journal left it.
func earlierReport(d *journal.Device) report.Device {
	rd := report.Device{ID: d.ID, CommandUUID: d.CommandUUID, Outcome: d.Outcome, Error: d.Error, EarlierRun: true}
	switch {
	case d.Stage == journal.Sent:
		rd.Outcome, rd.Error = report.Unknown, "the run ended before the server's answer was recorded"
	case d.Stage == journal.Planned && d.Outcome == "":
		rd.Outcome, rd.Error = report.NotSent, "never sent"
	}
	return rd
}
