package main

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/sandbox"
	"github.com/mdmctl/mdmctl/pkg/server/simplemdm/simplemdmtest"
)

const simpleMDMKey = "simplemdm-test-key"

func init() {
	kindCommands["simplemdm"] = cmdSimpleMDM
	kindCommands["simplemdm-locks"] = cmdSimpleMDMLocks
	kindCommands["simplemdm-drop"] = cmdSimpleMDMDrop
	kindCommands["simplemdm-limit"] = cmdSimpleMDMLimit
	scriptSecrets = append(scriptSecrets, simpleMDMKey, simpleMDMKey+"-read-only")
}

var fakeSimpleMDMs sync.Map // workdir -> *simplemdmtest.Server

// cmdSimpleMDM starts the SimpleMDM stand-in (SimpleMDM is a hosted service)
// with the sandbox's devices in its account, plus UNENROLLED-0001 (listed,
// not enrolled), and points mdmctl at it with MDMCTL_KIND=simplemdm.
// SIMPLEMDM_READONLY_KEY holds a key whose Devices permission is read only.
func cmdSimpleMDM(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: simplemdm")
	}
	devices := []simplemdmtest.Device{{UDID: "UNENROLLED-0001", Name: "Returned iPhone", Serial: "SBX0000099", Status: "unenrolled", ProductName: "iPhone14,2", OSVersion: "17.1"}}
	for _, m := range sandbox.Members {
		d := simplemdmtest.Device{UDID: m.Facts.UDID, Name: m.Facts.Name, Serial: m.Facts.Serial, ProductName: m.Facts.Model, OSVersion: m.Facts.OSVersion}
		switch _, arch, _ := apple.ModelFacts(m.Facts.Model); arch {
		case apple.ArchAppleSilicon:
			d.ProcessorArchitecture = "arm64"
		case apple.ArchIntel:
			d.ProcessorArchitecture = "x86_64"
		}
		devices = append(devices, d)
	}
	s := simplemdmtest.Start(simpleMDMKey, devices...)
	ts.Defer(s.Close)
	fakeSimpleMDMs.Store(ts.Getenv("WORK"), s)
	ts.Setenv("MDMCTL_SERVER", s.URL)
	ts.Setenv("MDMCTL_API_KEY", s.APIKey)
	ts.Setenv("SIMPLEMDM_READONLY_KEY", s.ReadOnlyKey)
	ts.Setenv("MDMCTL_KIND", "simplemdm")
}

func fakeSimpleMDM(ts *testscript.TestScript) *simplemdmtest.Server {
	return scriptFake[*simplemdmtest.Server](ts, &fakeSimpleMDMs, "simplemdm")
}

// cmdSimpleMDMLocks prints how many locks SimpleMDM took for a UDID (or for
// every device, with "all"), then one line each, PIN left out.
func cmdSimpleMDMLocks(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: simplemdm-locks UDID|all")
	}
	s := fakeSimpleMDM(ts)
	if args[0] == "all" {
		fmt.Fprintf(ts.Stdout(), "locks: %d\nrate-limited: %d\n", s.AllLocks(), s.RateLimited())
		return
	}
	locks := s.Locks(args[0])
	fmt.Fprintf(ts.Stdout(), "locks: %d\n", len(locks))
	for _, l := range locks {
		fmt.Fprintln(ts.Stdout(), l.String())
	}
}

// cmdSimpleMDMDrop makes the stand-in take the next N locks and then drop
// the connection without a reply.
func cmdSimpleMDMDrop(ts *testscript.TestScript, neg bool, args []string) {
	fakeSimpleMDM(ts).DropReplies(countArg(ts, neg, args, "simplemdm-drop N"))
}

// cmdSimpleMDMLimit makes the stand-in answer the next N requests 429 with
// Retry-After SECONDS.
func cmdSimpleMDMLimit(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: simplemdm-limit N SECONDS")
	}
	n, err := strconv.Atoi(args[0])
	ts.Check(err)
	secs, err := strconv.Atoi(args[1])
	ts.Check(err)
	fakeSimpleMDM(ts).RateLimit(n, secs)
}
