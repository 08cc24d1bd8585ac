package lock

import (
	"fmt"

	"github.com/mdmctl/mdmctl/pkg/dispatch"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/report"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// planLocks asks the kind how it carries each target's lock values, before
// anything is sent: values it cannot carry stop the run, and what it does
// differently is warned about. It runs again once more is known of the
// targets (their serials resolved, the inventory read): a plan may then
// change (a device the inventory shows is not a Mac needs no PIN).
func (r *runner) planLocks(d server.Driver, targets []*dispatch.Target) error {
	if d.PlanLock == nil {
		return nil
	}
	if r.plannedWarnings == nil {
		r.plannedWarnings = map[*dispatch.Target]string{}
	}
	for _, t := range targets {
		plan, err := d.PlanLock(*t.Lock, t.MayBeMac())
		if err != nil {
			if src := t.Source(); t.Line > 0 {
				err = fmt.Errorf("%s: %w", src, err)
			}
			return &exitcode.UsageError{Err: err}
		}
		t.ServerPIN = plan.ServerPIN
		r.plannedWarnings[t] = plan.Warning
		if !r.kindMakesPINs {
			// Would it make the PIN were the device a Mac? Then an escrow
			// given for the Macs among the targets is no mistake.
			asMac, _ := d.PlanLock(*t.Lock, true)
			r.kindMakesPINs = asMac.ServerPIN
		}
	}
	return nil
}

// settlePlans takes the targets' final plans: the warnings, once each, and
// the escrow a PIN the server makes needs.
func (r *runner) settlePlans(d server.Driver, targets []*dispatch.Target) error {
	opts := r.opts
	seen := map[string]bool{}
	for _, t := range targets {
		r.serverPINs = r.serverPINs || t.ServerPIN
		if w := r.plannedWarnings[t]; w != "" && !seen[w] {
			seen[w] = true
			r.warnLater(w)
		}
	}
	switch {
	case r.serverPINs && opts.PINEscrow == "" && !opts.DryRun:
		return exitcode.Usagef("the %s kind makes each device's unlock PIN itself: give --pin-escrow FILE, where mdmctl keeps it before showing it anywhere", d.Kind)
	case opts.PINEscrow != "" && !opts.PINGenerate && !r.kindMakesPINs && len(targets) > 0:
		return exitcode.Usagef("--pin-escrow goes with --pin-generate, or with a kind that makes its own PINs (the %s kind takes the PIN it is given)", d.Kind)
	}
	return nil
}

// escrows reports whether the run writes PINs to an escrow: those mdmctl
// generates and those the server makes.
func (r *runner) escrows() bool {
	return (r.opts.PINGenerate || r.serverPINs) && r.opts.PINEscrow != ""
}

// checkIDs applies the kind's own rule for target IDs, once the kind is
// known: an ID it cannot carry is invalid input, as a malformed one is
// (a usage error, or reported invalid with --skip-invalid).
func (r *runner) checkIDs(d server.Driver, in *collected) error {
	if d.CheckID == nil {
		return nil
	}
	kept := in.targets[:0]
	for _, t := range in.targets {
		err := d.CheckID(t.ID)
		switch {
		case err == nil:
			kept = append(kept, t)
		case !r.opts.SkipInvalid && t.Line == 0:
			return exitcode.Usagef("invalid target: %v", err)
		case !r.opts.SkipInvalid:
			return exitcode.Usagef("%s: %v", t.Source(), err)
		default:
			in.invalid = append(in.invalid, report.Device{ID: t.ID, Source: t.Source(), Outcome: report.Invalid, Error: err.Error()})
		}
	}
	in.targets = kept
	return nil
}
