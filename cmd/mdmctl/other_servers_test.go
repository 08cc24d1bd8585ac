package main

import (
	"fmt"
	"net/http/httptest"
	"sync"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/sandbox"
	"github.com/mdmctl/mdmctl/pkg/server/micromdm/micromdmtest"
)

var fakeMicroMDMs sync.Map // workdir -> *micromdmtest.Server

// cmdMicroMDM starts the MicroMDM stand-in (MicroMDM cannot run here) and
// points mdmctl at it with --kind micromdm semantics via MDMCTL_KIND.
// Devices whose ID starts with FAIL- are refused by the server.
func cmdMicroMDM(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: micromdm")
	}
	s := micromdmtest.Start("micromdm-test-key")
	s.Fail = func(udid string) string {
		if len(udid) > 5 && udid[:5] == "FAIL-" {
			return "device not enrolled"
		}
		return ""
	}
	ts.Defer(s.Close)
	fakeMicroMDMs.Store(ts.Getenv("WORK"), s)
	ts.Setenv("MICROMDM_URL", s.URL)
	ts.Setenv("MDMCTL_SERVER", s.URL)
	ts.Setenv("MDMCTL_API_KEY", s.APIKey)
	ts.Setenv("MDMCTL_KIND", "micromdm")
}

// cmdMicroMDMReceived prints the commands the MicroMDM stand-in got for a device.
func cmdMicroMDMReceived(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: micromdm-received UDID")
	}
	v, ok := fakeMicroMDMs.Load(ts.Getenv("WORK"))
	if !ok {
		ts.Fatalf("no micromdm in this script")
	}
	for _, raw := range v.(*micromdmtest.Server).Commands(args[0]) {
		c, err := apple.ParseCommand(raw)
		ts.Check(err)
		fmt.Fprintf(ts.Stdout(), "command %s %s message=%q\n", c.CommandUUID, c.RequestType, c.Message)
	}
}

// cmdSandboxHTTP serves a sandbox on loopback and sets SANDBOX_URL, for
// the raw kind's exchange and for mdmctl pointed at a served sandbox.
func cmdSandboxHTTP(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: sandbox-http")
	}
	sb, err := sandbox.Start(sandbox.Options{})
	ts.Check(err)
	srv := httptest.NewServer(sb.Handler())
	ts.Defer(func() { srv.Close(); sb.Close() })
	ts.Setenv("SANDBOX_URL", srv.URL)
}
