package main

import (
	"fmt"
	"net/http/httptest"
	"sync"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/sandbox"
	"github.com/mdmctl/mdmctl/pkg/server/fleetdm/fleetdmtest"
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
	s.SetFail(func(udid string) string {
		if len(udid) > 5 && udid[:5] == "FAIL-" {
			return "device not enrolled"
		}
		return ""
	})
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

var fakeFleets sync.Map // workdir -> *fleetdmtest.Server

// The PINs the Fleet stand-in makes (38 and its host ID) are secrets too.
func init() {
	for id := 1; id <= 40; id++ {
		scriptSecrets = append(scriptSecrets, fmt.Sprintf("38%04d", id))
	}
}

// cmdFleetDM starts the Fleet stand-in (Fleet needs MySQL, Redis and a
// license) with the sandbox's devices as its hosts, answering as they do,
// plus MDM-OFF (enrolled in Fleet, MDM off) and NO-PUSH (APNs refuses it),
// and points mdmctl at it with MDMCTL_KIND=fleet. "fleetdm free" runs it
// without Premium.
func cmdFleetDM(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) > 1 || (len(args) == 1 && args[0] != "free") {
		ts.Fatalf("usage: fleetdm [free]")
	}
	hosts := []fleetdmtest.Host{{UUID: "MDM-OFF", MDMOff: true}, {UUID: "NO-PUSH", PushFails: true}}
	for _, m := range sandbox.Members {
		platform, osName := "darwin", "macOS"
		switch m.Facts.Platform {
		case apple.PlatformIOS:
			platform, osName = "ios", "iOS"
		case apple.PlatformIPadOS:
			platform, osName = "ipados", "iPadOS"
		}
		hosts = append(hosts, fleetdmtest.Host{UUID: m.Facts.UDID, Serial: m.Facts.Serial, Behavior: m.Behavior,
			Platform: platform, OSVersion: osName + " " + m.Facts.OSVersion, HardwareModel: m.Facts.Model})
	}
	s := fleetdmtest.Start("fleet-test-token", hosts...)
	s.SetPremium(len(args) == 0)
	ts.Defer(s.Close)
	fakeFleets.Store(ts.Getenv("WORK"), s)
	ts.Setenv("MDMCTL_SERVER", s.URL)
	ts.Setenv("MDMCTL_API_KEY", s.Token)
	ts.Setenv("MDMCTL_KIND", "fleet")
}

func fakeFleet(ts *testscript.TestScript) *fleetdmtest.Server {
	return scriptFake[*fleetdmtest.Server](ts, &fakeFleets, "fleetdm")
}

// cmdFleetDMDrop makes the Fleet stand-in queue the next N commands and
// then drop the connection without a reply.
func cmdFleetDMDrop(ts *testscript.TestScript, neg bool, args []string) {
	fakeFleet(ts).DropReplies(countArg(ts, neg, args, "fleetdm-drop N"))
}

// cmdFleetDMQueue prints how many commands Fleet holds for a host, then
// one line each.
func cmdFleetDMQueue(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: fleetdm-queue HOST")
	}
	s := fakeFleet(ts)
	queue := s.Queue(args[0])
	fmt.Fprintf(ts.Stdout(), "queued: %d\n", len(queue))
	for _, uuid := range queue {
		raw, _ := s.Command(uuid)
		c, err := apple.ParseCommand(raw)
		ts.Check(err)
		fmt.Fprintf(ts.Stdout(), "command %s %s message=%q\n", c.CommandUUID, c.RequestType, c.Message)
	}
}

// cmdFleetDMLocks prints how many locks Fleet's own lock took for a host
// and sets FLEET_PIN to the PIN Fleet made for the last one.
func cmdFleetDMLocks(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: fleetdm-locks HOST")
	}
	n, pin := fakeFleet(ts).Locks(args[0])
	fmt.Fprintf(ts.Stdout(), "locks: %d\n", n)
	ts.Setenv("FLEET_PIN", pin)
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
