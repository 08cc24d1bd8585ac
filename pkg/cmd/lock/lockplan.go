package lock

import (
	"fmt"

	"github.com/mdmctl/mdmctl/pkg/dispatch"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/report"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// planLocks asks the kind how it carries each target's lock values, before
// anything is sent: values it cannot carry stop the run, a PIN it makes
// itself needs the escrow, and what it does differently is warned about.
// It may run again over targets added since (those given by serial); a
// target's plan does not change.
func (r *runner) planLocks(d server.Driver, targets []*dispatch.Target) error {
	opts := r.opts
	if d.PlanLock != nil {
		if r.warnedPlan == nil {
			r.warnedPlan = map[string]bool{}
		}
		for _, t := range targets {
			plan, err := d.PlanLock(*t.Lock)
			if err != nil {
				if src := t.Source(); t.Line > 0 {
					err = fmt.Errorf("%s: %w", src, err)
				}
				return &exitcode.UsageError{Err: err}
			}
			t.ServerPIN = plan.ServerPIN
			r.serverPINs = r.serverPINs || plan.ServerPIN
			if w := plan.Warning; w != "" && !r.warnedPlan[w] {
				r.warnedPlan[w] = true
				r.warnLater(w)
			}
		}
	}
	switch {
	case r.serverPINs && opts.PINEscrow == "" && !opts.DryRun:
		return exitcode.Usagef("the %s kind makes each device's unlock PIN itself: give --pin-escrow FILE, where mdmctl keeps it before showing it anywhere", d.Kind)
	case opts.PINEscrow != "" && !opts.PINGenerate && !r.serverPINs && len(targets) > 0:
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
