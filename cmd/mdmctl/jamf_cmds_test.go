package main

import (
	"fmt"
	"strings"
	"sync"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/sandbox"
	"github.com/mdmctl/mdmctl/pkg/server/jamf/jamftest"
)

const (
	jamfClientID = "jamf-test-client"
	jamfSecret   = "jamf-test-secret"
)

func init() {
	kindCommands["jamf"] = cmdJamf
	kindCommands["jamf-drop"] = cmdJamfDrop
	kindCommands["jamf-throttle"] = cmdJamfThrottle
	kindCommands["jamf-deny"] = cmdJamfDeny
	kindCommands["jamf-queue"] = cmdJamfQueue
	kindCommands["jamf-console-lock"] = cmdJamfConsoleLock
	kindCommands["jamf-revoke"] = cmdJamfRevoke
	kindCommands["jamf-tokens"] = cmdJamfTokens
	scriptSecrets = append(scriptSecrets, jamfSecret)
}

var fakeJamfs sync.Map // workdir -> *jamftest.Server

// cmdJamf starts the Jamf Pro stand-in (Jamf Pro cannot run here) with the
// sandbox's devices in its inventory, Macs as computers and the rest as
// mobile devices, answering as they do, plus UNMANAGED-MAC (in the
// inventory, not managed), and points mdmctl at it with MDMCTL_KIND=jamf,
// the API client's ID in MDMCTL_API_USER and its secret in MDMCTL_API_KEY.
func cmdJamf(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: jamf")
	}
	devs := []jamftest.Device{{UDID: "UNMANAGED-MAC", Serial: "UNM0000001", Model: "Mac14,3", OSVersion: "14.6.1", Unmanaged: true}}
	for _, m := range sandbox.Members {
		f := m.Facts
		_, arch, _ := apple.ModelFacts(f.Model)
		devs = append(devs, jamftest.Device{UDID: f.UDID, Serial: f.Serial, Mobile: f.Platform != apple.PlatformMacOS,
			Model: f.Model, OSVersion: f.OSVersion, AppleSilicon: arch == apple.ArchAppleSilicon,
			Behavior: m.Behavior})
	}
	s := jamftest.Start(jamfClientID, jamfSecret, devs...)
	ts.Defer(s.Close)
	fakeJamfs.Store(ts.Getenv("WORK"), s)
	ts.Setenv("MDMCTL_SERVER", s.URL)
	ts.Setenv("MDMCTL_API_USER", jamfClientID)
	ts.Setenv("MDMCTL_API_KEY", jamfSecret)
	ts.Setenv("MDMCTL_KIND", "jamf")
}

func fakeJamf(ts *testscript.TestScript) *jamftest.Server {
	return scriptFake[*jamftest.Server](ts, &fakeJamfs, "jamf")
}

// cmdJamfDrop makes the stand-in queue the next N command POSTs and then
// drop the connection without a reply.
func cmdJamfDrop(ts *testscript.TestScript, neg bool, args []string) {
	fakeJamf(ts).DropReplies(countArg(ts, neg, args, "jamf-drop N"))
}

// cmdJamfThrottle makes the next N API requests answer 429 (Retry-After: 1).
func cmdJamfThrottle(ts *testscript.TestScript, neg bool, args []string) {
	fakeJamf(ts).Throttle(countArg(ts, neg, args, "jamf-throttle N"))
}

// cmdJamfDeny takes a privilege (its words, one argument) from the role.
func cmdJamfDeny(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: jamf-deny 'PRIVILEGE'")
	}
	fakeJamf(ts).Deny(args[0])
}

// cmdJamfRevoke makes every token issued so far answer 401.
func cmdJamfRevoke(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: jamf-revoke")
	}
	fakeJamf(ts).RevokeTokens()
}

// cmdJamfTokens prints how many tokens the stand-in issued.
func cmdJamfTokens(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: jamf-tokens")
	}
	fmt.Fprintf(ts.Stdout(), "tokens: %d\n", fakeJamf(ts).TokensIssued())
}

// cmdJamfConsoleLock queues a DEVICE_LOCK for a device as an admin does
// in Jamf's console, outside mdmctl; it stays pending.
func cmdJamfConsoleLock(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: jamf-console-lock UDID")
	}
	if fakeJamf(ts).ConsoleLock(args[0]) == "" {
		ts.Fatalf("jamf holds no managed device %s", args[0])
	}
}

// cmdJamfQueue prints how many commands Jamf holds for a device, then one
// line each (whether it carries a PIN, never the PIN).
func cmdJamfQueue(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: jamf-queue UDID")
	}
	cmds := fakeJamf(ts).Commands(args[0])
	fmt.Fprintf(ts.Stdout(), "queued: %d\n", len(cmds))
	for _, c := range cmds {
		pin := "none"
		if c.PIN != "" {
			pin = "set"
		}
		fmt.Fprintf(ts.Stdout(), "command %s %s message=%q phone=%q pin=%s state=%s\n",
			strings.ToUpper(c.UUID), c.Type, c.Message, c.Phone, pin, c.State)
	}
}
