package lock

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/iostreams"
)

// Flag tests stop at the options (runF): nothing is resolved or sent.
func TestFlagsParseIntoOptions(t *testing.T) {
	streams, _, _, _ := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: streams, Getenv: func(string) string { return "" }, Now: time.Now}
	opts, err := parseLock(f, "A --udid B,C --serial S1 --serial S2,S3 --message hi --phone 1 --wait --preflight --if-unknown refuse --pin-generate --pin-escrow e --no-push -o json")
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case !slices.Equal(opts.IDs, []string{"B", "C", "A"}):
		t.Errorf("IDs %v: --udid values then arguments", opts.IDs)
	case !slices.Equal(opts.Serials, []string{"S1", "S2", "S3"}):
		t.Errorf("Serials %v", opts.Serials)
	case opts.Message != "hi" || opts.Phone != "1" || !opts.NoPush || opts.Output != "json":
		t.Errorf("values %+v", opts)
	case opts.Wait != 2*time.Minute || !opts.PreflightGiven || opts.IfUnknown != ifUnknownRefuse:
		t.Errorf("--wait alone is 2m, --preflight given: %s %t %q", opts.Wait, opts.PreflightGiven, opts.IfUnknown)
	case !opts.PINGenerate || opts.PINEscrow != "e" || opts.Settings == nil:
		t.Errorf("escrow %t %q, settings %v", opts.PINGenerate, opts.PINEscrow, opts.Settings != nil)
	}
}

func TestFlagErrorsStopBeforeTheRun(t *testing.T) {
	streams, _, _, _ := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: streams, Getenv: func(string) string { return "" }, Now: time.Now}
	for args, want := range map[string]string{
		"A --if-unknown maybe": `invalid --if-unknown "maybe"`,
		"--wait 20s A":         "--wait takes its duration with =",
		"--preflight 1m A":     "--preflight takes its duration with =",
	} {
		opts, err := parseLock(f, args)
		if opts != nil || err == nil || !strings.Contains(err.Error(), want) || exitCode(err) != 2 {
			t.Errorf("%s: options %v, err %v; want exit 2 %q and no run", args, opts != nil, err, want)
		}
	}
}
