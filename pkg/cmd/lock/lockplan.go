package lock

import (
	"fmt"

	"github.com/mdmctl/mdmctl/pkg/dispatch"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/report"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// lockPlans is what the kind said of a run's locks.
type lockPlans struct {
	// warnings are the kind's, each once, in the targets' order.
	warnings []string
	// serverPINs: the kind makes some targets' PINs; makesPINs: it would
	// make a Mac's for these locks (so --pin-escrow is no mistake even
	// when no target turns out to be a Mac).
	serverPINs, makesPINs bool
}

// planLocks asks the kind how it carries each target's lock values, before
// anything is sent: values it cannot carry stop the run. It runs again once
// more is known of the targets (their serials resolved, the inventory
// read): a plan may then change (a device the inventory shows is not a Mac
// needs no PIN), and the last one stands.
func (r *runner) planLocks(d server.Driver, targets []*dispatch.Target) (lockPlans, error) {
	var p lockPlans
	if d.PlanLock == nil {
		return p, nil
	}
	seen := map[string]bool{}
	for _, t := range targets {
		mac := t.MayBeMac()
		plan, err := d.PlanLock(*t.Lock, mac)
		if err != nil {
			if src := t.Source(); t.Line > 0 {
				err = fmt.Errorf("%s: %w", src, err)
			}
			return p, &exitcode.UsageError{Err: err}
		}
		t.ServerPIN = plan.ServerPIN
		p.serverPINs = p.serverPINs || plan.ServerPIN
		if w := plan.Warning; w != "" && !seen[w] {
			seen[w] = true
			p.warnings = append(p.warnings, w)
		}
		if !p.makesPINs {
			p.makesPINs = plan.ServerPIN
			if !mac {
				asMac, _ := d.PlanLock(*t.Lock, true)
				p.makesPINs = asMac.ServerPIN
			}
		}
	}
	return p, nil
}

// settlePlans takes the final plans of a run's n targets: their warnings,
// and the escrow a PIN the server makes needs.
func (r *runner) settlePlans(d server.Driver, p lockPlans, n int) error {
	opts := r.opts
	r.serverPINs = p.serverPINs
	for _, w := range p.warnings {
		r.warnLater(w)
	}
	switch {
	case r.serverPINs && opts.PINEscrow == "" && !opts.DryRun:
		return exitcode.Usagef("the %s kind makes each device's unlock PIN itself: give --pin-escrow FILE, where mdmctl keeps it before showing it anywhere", d.Kind)
	case opts.PINEscrow != "" && !opts.PINGenerate && !p.makesPINs && n > 0:
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
