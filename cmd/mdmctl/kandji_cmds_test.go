package main

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/sandbox"
	"github.com/mdmctl/mdmctl/pkg/server/kandji/kandjitest"
)

// kandjiPINs are the PINs the Kandji stand-in makes in scripts, one per
// lock in turn: secrets the suite checks mdmctl never prints.
var kandjiPINs = []string{"731900", "731901", "731902", "731903", "731904", "731905", "731906", "731907", "731908", "731909"}

func init() {
	kindCommands["kandji"] = cmdKandji
	kindCommands["kandji-locks"] = cmdKandjiLocks
	kindCommands["kandji-console-lock"] = cmdKandjiConsoleLock
	kindCommands["kandji-drop"] = cmdKandjiDrop
	kindCommands["kandji-throttle"] = cmdKandjiThrottle
	kindCommands["kandji-deny"] = cmdKandjiDeny
	kindCommands["kandji-allow"] = cmdKandjiAllow
	kindCommands["kandji-requests"] = cmdKandjiRequests
	scriptSecrets = append(scriptSecrets, "kandji-test-token")
	scriptSecrets = append(scriptSecrets, kandjiPINs...)
}

var fakeKandjis sync.Map // workdir -> *kandjitest.Server

// cmdKandji starts the Kandji stand-in with the sandbox's devices as the
// tenant's, answering as they do, and points mdmctl at it with
// MDMCTL_KIND=kandji. Its PINs are kandjiPINs in turn.
func cmdKandji(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: kandji")
	}
	var devices []kandjitest.Device
	for _, m := range sandbox.Members {
		platform := "Mac"
		switch m.Facts.Platform {
		case apple.PlatformIOS:
			platform = "iPhone"
		case apple.PlatformIPadOS:
			platform = "iPad"
		}
		processor := ""
		if platform == "Mac" {
			processor = "Intel Core i7"
			if _, arch, _ := apple.ModelFacts(m.Facts.Model); arch == apple.ArchAppleSilicon {
				processor = "Apple M1"
			}
		}
		devices = append(devices, kandjitest.Device{UDID: m.Facts.UDID, Serial: m.Facts.Serial, Platform: platform,
			OSVersion: m.Facts.OSVersion, Model: m.Facts.Model, ModelName: m.Facts.Name, ProcessorName: processor, Behavior: m.Behavior})
	}
	s := kandjitest.Start("kandji-test-token", devices...)
	s.SetPINs(func(n int) string { return kandjiPINs[n%len(kandjiPINs)] })
	ts.Defer(s.Close)
	fakeKandjis.Store(ts.Getenv("WORK"), s)
	ts.Setenv("MDMCTL_SERVER", s.URL)
	ts.Setenv("MDMCTL_API_KEY", s.Token)
	ts.Setenv("MDMCTL_KIND", "kandji")
}

func fakeKandji(ts *testscript.TestScript) *kandjitest.Server {
	return scriptFake[*kandjitest.Server](ts, &fakeKandjis, "kandji")
}

// cmdKandjiLocks prints how many locks the tenant holds for a device,
// then one line each (never the PIN).
func cmdKandjiLocks(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: kandji-locks UDID")
	}
	locks := fakeKandji(ts).Locks(args[0])
	fmt.Fprintf(ts.Stdout(), "locks: %d\n", len(locks))
	for _, l := range locks {
		fmt.Fprintf(ts.Stdout(), "lock %s message=%q phone=%q pin=%t status=%d\n", l.UUID, l.Message, l.PhoneNumber, l.PIN != "", l.Status)
	}
}

// cmdKandjiConsoleLock records a lock for a device sent from Kandji's web
// console, outside mdmctl; it stays pending.
func cmdKandjiConsoleLock(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: kandji-console-lock UDID")
	}
	if fakeKandji(ts).ConsoleLock(args[0]) == "" {
		ts.Fatalf("kandji holds no device %s", args[0])
	}
}

// cmdKandjiDrop makes the stand-in take the next N locks and drop the
// connection without a reply.
func cmdKandjiDrop(ts *testscript.TestScript, neg bool, args []string) {
	fakeKandji(ts).DropReplies(countArg(ts, neg, args, "kandji-drop N"))
}

// cmdKandjiThrottle makes the stand-in answer the next N requests to an
// endpoint (list, details, lock, commands, unlockpin, or any) 429 with
// Retry-After SECONDS.
func cmdKandjiThrottle(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: kandji-throttle ENDPOINT N SECONDS")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	secs, err := strconv.Atoi(args[2])
	ts.Check(err)
	endpoint := args[0]
	if endpoint == "any" {
		endpoint = ""
	}
	fakeKandji(ts).Throttle(endpoint, n, secs)
}

// cmdKandjiDeny makes the stand-in answer 403 to an endpoint (list,
// details, lock, commands, unlockpin), as for a token without it.
func cmdKandjiDeny(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: kandji-deny ENDPOINT")
	}
	fakeKandji(ts).Deny(args[0])
}

// cmdKandjiAllow undoes kandji-deny.
func cmdKandjiAllow(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: kandji-allow ENDPOINT")
	}
	fakeKandji(ts).Allow(args[0])
}

// cmdKandjiRequests prints how many requests an endpoint answered.
func cmdKandjiRequests(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: kandji-requests ENDPOINT")
	}
	fmt.Fprintf(ts.Stdout(), "%s requests: %d\n", args[0], fakeKandji(ts).Requests(args[0]))
}
