package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mdmctl/mdmctl/internal/nanomdmtest"
)

func TestMain(m *testing.M) {
	testscript.Main(stopPostgresAfter{m}, map[string]func(){
		"mdmctl": func() { os.Exit(runWatchingSecrets()) },
	})
}

// stopPostgresAfter stops the PostgreSQL cluster the pgsql scripts share
// once every test has run.
type stopPostgresAfter struct{ m *testing.M }

func (s stopPostgresAfter) Run() int {
	defer nanomdmtest.StopPostgres()
	return s.m.Run()
}

// TestScripts runs the txtar scripts in testdata/script: mdmctl as a user
// runs it, against real servers the scripts start (NanoMDM in memory).
func TestScripts(t *testing.T) {
	p := scriptParams(t, nanomdmtest.InMem)
	p.Dir = "testdata/script"
	testscript.Run(t, p)
}

// storageScripts exercise the enqueue path, whose answers depend on
// NanoMDM's storage: TestScriptsStorage runs them on the other backends.
var storageScripts = []string{"nanomdm_lock", "nanomdm_wait", "preflight_nanomdm", "scale", "retry_no_duplicate", "stale_ids"}

// scaleOf is how many devices scale.txtar enrolls and locks:
// 10,000 in memory; 1,000 on filekv, which writes files per enrollment and
// command, and on PostgreSQL, where stale_ids.txtar runs 10,000 IDs.
func scaleOf(st nanomdmtest.Storage) string {
	if st == nanomdmtest.InMem {
		return "10000"
	}
	return "1000"
}

// TestScriptsStorage runs storageScripts against NanoMDM on filekv (its
// default) and on PostgreSQL (production's), each server with a fresh
// store. The scripts branch on [storage:NAME] where answers differ.
func TestScriptsStorage(t *testing.T) {
	for _, st := range []nanomdmtest.Storage{nanomdmtest.FileKV, nanomdmtest.PgSQL} {
		t.Run(string(st), func(t *testing.T) {
			p := scriptParams(t, st)
			for _, name := range storageScripts {
				p.Files = append(p.Files, filepath.Join("testdata", "script", name+".txtar"))
			}
			testscript.Run(t, p)
		})
	}
}

// scriptParams is the scripts' world: a clean slate, the custom commands,
// the secrets watcher, and `nanomdm` starting NanoMDM on storage st.
func scriptParams(t *testing.T, st nanomdmtest.Storage) testscript.Params {
	leaks := filepath.Join(t.TempDir(), "leaks")
	// Cleanup runs after every parallel script has finished.
	t.Cleanup(func() { checkNoLeaks(t, leaks) })
	return testscript.Params{
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			// A clean slate: no user config, no color, no inherited server.
			env.Setenv("XDG_CONFIG_HOME", env.WorkDir+"/.config")
			env.Setenv("XDG_STATE_HOME", env.WorkDir+"/.local/state")
			env.Setenv("HOME", env.WorkDir)
			env.Setenv(envSecrets, strings.Join(scriptSecrets, ","))
			env.Setenv(envLeakFile, leaks)
			env.Setenv(envStorage, string(st))
			env.Setenv("SCALE_N", scaleOf(st))
			for _, k := range []string{"MDMCTL_SERVER", "MDMCTL_API_KEY", "MDMCTL_CONTEXT", "MDMCTL_CONFIG", "MDMCTL_PIN", "MDMCTL_KIND", "MDMCTL_API_USER", "MDMCTL_TENANT", "MDMCTL_API_KEY_FILE", "MDMCTL_WEBHOOK_HMAC_KEY", "MDMCTL_PIN_ESCROW_RECIPIENT", "MDMCTL_HISTORY", "NO_COLOR", "CLICOLOR_FORCE"} {
				env.Setenv(k, "")
			}
			return nil
		},
		// [storage:pgsql] is true when the script's NanoMDM runs on pgsql.
		Condition: func(cond string) (bool, error) {
			name, ok := strings.CutPrefix(cond, "storage:")
			if !ok {
				return false, fmt.Errorf("unknown condition %q", cond)
			}
			want, err := nanomdmtest.ParseStorage(name)
			return want == st, err
		},
		Cmds: scriptCommands(),
	}
}

// kindCommands are the script commands of the stand-ins for vendor
// kinds, each kind's file adding its own from init.
var kindCommands = map[string]func(ts *testscript.TestScript, neg bool, args []string){}

func scriptCommands() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	cmds := map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"counting-server":    cmdCountingServer,
		"requests":           cmdRequests,
		"exits":              cmdExits,
		"nanomdm":            cmdNanoMDM,
		"enroll":             cmdEnroll,
		"checkin":            cmdCheckIn,
		"received":           cmdReceived,
		"poll":               cmdPoll,
		"free-addr":          cmdFreeAddr,
		"micromdm":           cmdMicroMDM,
		"micromdm-received":  cmdMicroMDMReceived,
		"fleetdm":            cmdFleetDM,
		"fleetdm-drop":       cmdFleetDMDrop,
		"fleetdm-queue":      cmdFleetDMQueue,
		"fleetdm-locks":      cmdFleetDMLocks,
		"sandbox-http":       cmdSandboxHTTP,
		"enroll-many":        cmdEnrollMany,
		"checkin-all":        cmdCheckInAll,
		"received-once-each": cmdReceivedOnceEach,
		"escrow-covers":      cmdEscrowCovers,
		"wait-lines":         cmdWaitLines,
		"fault-server":       cmdFaultServer,
		"flaky-proxy":        cmdFlakyProxy,
		"wait-requests":      cmdWaitRequests,
		"tls-server":         cmdTLSServer,
		"wait-http":          cmdWaitHTTP,
		"nanomdm-sql":        cmdNanoMDMSQL,
		"clone-enrollment":   cmdCloneEnrollment,
		"gate-proxy":         cmdGateProxy,
		"gate-open":          cmdGateOpen,
		"received-as":        cmdReceivedAs,
		"escrow-one-pin":     cmdEscrowOnePIN,
		"age-keygen":         cmdAgeKeygen,
		"received-pin":       cmdReceivedPIN,
		"forge-event":        cmdForgeEvent,
	}
	for name, cmd := range kindCommands {
		if _, dup := cmds[name]; dup {
			panic("script command " + name + " defined twice")
		}
		cmds[name] = cmd
	}
	return cmds
}

// scriptFake is the stand-in the script started, kept in fakes under its
// work directory; a script that started none fails, naming what.
func scriptFake[T any](ts *testscript.TestScript, fakes *sync.Map, what string) T {
	v, ok := fakes.Load(ts.Getenv("WORK"))
	if !ok {
		ts.Fatalf("no %s in this script", what)
	}
	return v.(T)
}

// countArg is the one count a script command takes (N in "CMD N").
func countArg(ts *testscript.TestScript, neg bool, args []string, usage string) int {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: %s", usage)
	}
	n, err := strconv.Atoi(args[0])
	ts.Check(err)
	return n
}

// countingKey names the env var holding the script's counting server URL,
// the key of its counter in counters.
const countingKey = "COUNTING_SERVER_URL"

var counters sync.Map // server URL -> *atomic.Int64

// cmdCountingServer starts an HTTP server that answers 500 to everything
// and counts requests, and points MDMCTL_SERVER at it: bad-input scripts
// prove with `requests 0` that nothing was sent.
func cmdCountingServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: counting-server")
	}
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Error(w, "counting server", http.StatusInternalServerError)
	}))
	ts.Defer(srv.Close)
	counters.Store(srv.URL, &n)
	ts.Setenv(countingKey, srv.URL)
	ts.Setenv("MDMCTL_SERVER", srv.URL)
	ts.Setenv("MDMCTL_API_KEY", "counting-key")
}

// cmdRequests asserts how many requests the counting server received.
func cmdRequests(ts *testscript.TestScript, neg bool, args []string) {
	want, n := countArgs(ts, args, "requests N")
	got := n.Load()
	if (got == want) == neg {
		ts.Fatalf("counting server received %d requests, want %s%d", got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// cmdWaitRequests waits until the counting server has received at least
// N requests, so a script can interrupt mdmctl mid-run.
func cmdWaitRequests(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("usage: wait-requests N")
	}
	want, n := countArgs(ts, args, "wait-requests N")
	for deadline := time.Now().Add(10 * time.Second); n.Load() < want; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			ts.Fatalf("counting server received %d requests after 10s, want %d", n.Load(), want)
		}
	}
}

// countArgs reads the N of a counting command and finds the script's
// counting server.
func countArgs(ts *testscript.TestScript, args []string, usage string) (int64, *atomic.Int64) {
	if len(args) != 1 {
		ts.Fatalf("usage: %s", usage)
	}
	want, err := strconv.ParseInt(args[0], 10, 64)
	ts.Check(err)
	v, ok := counters.Load(ts.Getenv(countingKey))
	if !ok {
		ts.Fatalf("no counting server in this script")
	}
	return want, v.(*atomic.Int64)
}

// cmdExits runs a program like exec and asserts its exact exit code, so a
// script pins mdmctl's documented codes: `exits 6 mdmctl lock ...`.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}
