package lock

import (
	"context"
	"fmt"

	"github.com/mdmctl/mdmctl/pkg/connect"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/output"
	"github.com/mdmctl/mdmctl/pkg/report"
	"github.com/mdmctl/mdmctl/pkg/targets"
)

// addSerials adds the --serial values to the entries to resolve, checked as
// IDs are; a serial already there (from a CSV row) is kept once.
func (opts *Options) addSerials(in *collected) error {
	seen := make(map[string]bool, len(in.serials))
	for _, e := range in.serials {
		seen[e.Serial] = true
	}
	for _, s := range splitIDs(opts.Serials) {
		if _, err := opts.target(targets.Entry{ID: s}, in.def); err != nil {
			return exitcode.Usagef("invalid --serial: %v", err)
		}
		if !seen[s] {
			seen[s] = true
			in.serials = append(in.serials, targets.Entry{Serial: s})
		}
	}
	return nil
}

// resolveSerials asks the server which device has each serial number,
// before anything is sent: a known serial becomes a target with its row's
// values (once, even when its UDID was given too), an unknown one is
// reported failed.
func (r *runner) resolveSerials(ctx context.Context, conn *connect.Connection, in *collected) error {
	serials := make([]string, len(in.serials))
	for i, e := range in.serials {
		serials[i] = e.Serial
	}
	ids, err := conn.Serials(ctx, serials)
	if err != nil {
		return fmt.Errorf("looking up serial numbers on %s: %w; nothing was sent", conn.Name, err)
	}
	have := make(map[string]bool, len(in.targets))
	for _, t := range in.targets {
		have[t.ID] = true
	}
	for _, e := range in.serials {
		id, ok := ids[e.Serial]
		switch {
		case !ok:
			in.unresolved = append(in.unresolved, report.Device{ID: e.Serial, Source: e.Source(), Outcome: report.Failed,
				Error: "not a serial number " + conn.Name + " knows; nothing was sent to it"})
		case !have[id]:
			have[id] = true
			e.ID = id
			t, err := r.opts.target(e, in.def)
			if err != nil {
				return exitcode.Usagef("serial %s: the server's ID for it: %v", e.Serial, err)
			}
			in.targets = append(in.targets, &t)
		}
	}
	if len(in.targets)+len(in.invalid)+len(in.unresolved) > 1 {
		output.AlignColumns(r.printer, in.idWidth(), outcomeWidth(r.opts))
	}
	return nil
}
