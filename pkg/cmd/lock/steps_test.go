package lock

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/dispatch"
	"github.com/mdmctl/mdmctl/pkg/iostreams"
	"github.com/mdmctl/mdmctl/pkg/report"
	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/server/nanomdm"
)

// stepRunner parses args as lock does and collects their targets, for
// the run's steps to be tested one at a time, with no server: the
// settings name a NanoMDM kind with the given preflight.
func stepRunner(t *testing.T, args string, preflight time.Duration) (*runner, *collected) {
	t.Helper()
	streams, _, _, _ := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: streams, Getenv: func(string) string { return "" }, Now: time.Now,
		Settings: func(*pflag.FlagSet) (config.Settings, error) {
			return config.Settings{Kind: nanomdm.Kind, Server: "https://fake", Preflight: preflight}, nil
		},
	}
	opts, err := parseLock(f, args)
	if err != nil {
		t.Fatal(err)
	}
	lock, err := opts.lockValues()
	if err != nil {
		t.Fatal(err)
	}
	facts, err := opts.facts()
	if err != nil {
		t.Fatal(err)
	}
	in, err := opts.collect(defaults{lock: &lock, facts: &facts})
	if err != nil {
		t.Fatal(err)
	}
	printer, err := newPrinter(opts)
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{opts: opts, printer: printer, run: report.Run{Summary: report.Summary{}}}
	if err := r.resolve(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	return r, in
}

func ids(ts []*dispatch.Target) string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return strings.Join(out, ",")
}

// TestJudge: the guard's verdict alone: the M1 on 11.4 refused, a Mac it
// knows is safe sent, with a preflight the undecided asked first.
func TestJudge(t *testing.T) {
	csv := "udid,model,os_version\nM1,\"MacBookAir10,1\",11.4\nSAFE,\"Mac14,3\",14.6\nUNSURE,,\n"
	path := filepath.Join(t.TempDir(), "devices.csv")
	if err := os.WriteFile(path, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	r, in := stepRunner(t, "--csv "+path, 0)
	sel := r.judge(in)
	if ids(sel.refused) != "M1" || ids(sel.send) != "SAFE,UNSURE" || len(sel.asked) != 0 {
		t.Fatalf("refused %s, send %s, asked %s", ids(sel.refused), ids(sel.send), ids(sel.asked))
	}
	r, in = stepRunner(t, "--csv "+path, 30*time.Second)
	sel = r.judge(in)
	if ids(sel.refused) != "M1" || ids(sel.send) != "SAFE" || ids(sel.asked) != "UNSURE" {
		t.Fatalf("with a preflight: refused %s, send %s, asked %s", ids(sel.refused), ids(sel.send), ids(sel.asked))
	}
}

// TestPlan: the locks alone, grouped into commands within the kind's
// limits, each under its own CommandUUID.
func TestPlan(t *testing.T) {
	r, in := stepRunner(t, "--udid A,B,C,D,E --platform ios", 0)
	r.driver.Limits = server.Limits{MaxIDs: 2, MaxIDBytes: 1 << 10}
	sel := r.judge(in)
	p, err := r.plan(context.Background(), sel)
	if err != nil {
		t.Fatal(err)
	}
	uuids := map[string]bool{}
	var sizes []int
	for _, c := range p.cmds {
		uuids[c.UUID] = true
		sizes = append(sizes, len(c.Targets))
		if c.Lock != (apple.DeviceLock{}) {
			t.Fatalf("lock %+v, want Apple's empty lock", c.Lock)
		}
	}
	if len(p.cmds) != 3 || len(uuids) != 3 || sizes[0] != 2 || sizes[2] != 1 {
		t.Fatalf("%d commands of %v, %d UUIDs", len(p.cmds), sizes, len(uuids))
	}
	if more, err := p.later(); err != nil || more != nil {
		t.Fatalf("no preflight, yet later gives %v, %v", more, err)
	}
}
