package lock

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/connect"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/history"
	"github.com/mdmctl/mdmctl/pkg/iostreams"
	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/server/nanomdm"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

// fakeServer records requests and answers each device with the outcome
// its ID asks for ("FAIL-..." fails), and can play the device too.
type fakeServer struct {
	mu        sync.Mutex
	requests  []server.Request
	collector *webhook.Collector
	err       error
}

func (f *fakeServer) Enqueue(_ context.Context, req server.Request) (*server.Result, error) {
	f.mu.Lock()
	f.requests = append(f.requests, req)
	collector := f.collector
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	res := &server.Result{}
	for _, id := range req.IDs {
		d := server.DeviceResult{ID: id, Outcome: server.Queued}
		if strings.HasPrefix(id, "FAIL-") {
			d.Outcome, d.Error = server.Failed, "nope"
		}
		res.Devices = append(res.Devices, d)
		if collector != nil && d.Outcome == server.Queued && !strings.HasPrefix(id, "SILENT-") {
			collector.Deliver(apple.Response{Status: apple.StatusAcknowledged, CommandUUID: req.CommandUUID, UDID: id, MessageResult: "Success"})
		}
	}
	return res, nil
}

func runLock(t *testing.T, srv *fakeServer, args string, getenv map[string]string) (stdout, stderr string, err error) {
	t.Helper()
	return runLockWith(t, srv, srv, server.Driver{Kind: nanomdm.Kind, Limits: nanomdm.Limits, Capabilities: server.Capabilities{SkipPush: true}}, args, getenv)
}

// runLockWith runs lock against srv, a server of the kind d describes
// (registered, as the run looks its kind up), whose answers fake delivers.
func runLockWith(t *testing.T, srv server.Server, fake *fakeServer, d server.Driver, args string, getenv map[string]string) (stdout, stderr string, err error) {
	t.Helper()
	streams, _, out, errOut := iostreams.Test()
	state := t.TempDir() // run journals
	f := &cmdutil.Factory{
		IOStreams: streams,
		Getenv: func(k string) string {
			if v, ok := getenv[k]; ok || k != "XDG_STATE_HOME" {
				return v
			}
			return state
		},
		Now: time.Now,
		Settings: func(*pflag.FlagSet) (config.Settings, error) {
			return config.Settings{Kind: d.Kind, Server: "https://fake", History: filepath.Join(state, "history.db")}, nil
		},
		OpenHistory: func(s config.Settings) (*history.Store, error) { return history.Open(s.History) },
		OSUser:      func() string { return "tester" },
		Connect: func(context.Context, config.Settings, connect.Options) (*connect.Connection, error) {
			session := &server.Session{Server: srv, Name: "fake", Close: func() {},
				Answers: func(c *webhook.Collector) { fake.mu.Lock(); fake.collector = c; fake.mu.Unlock() }}
			if late, ok := srv.(interface {
				KeepPINs(func(commandUUID, id, pin string) error)
			}); ok {
				session.PINs = late.KeepPINs
			}
			return &connect.Connection{Session: session, Driver: d}, nil
		},
	}
	opts, err := parseLock(f, args)
	if err != nil {
		return out.String(), errOut.String(), err
	}
	// What the root command's flags give a run.
	opts.Timeout, opts.ConnectTimeout = time.Second, time.Second
	err = Run(context.Background(), opts)
	return out.String(), errOut.String(), err
}

// parseLock parses args as the lock command does and returns the options
// it would run with (runF, gh's seam), without running.
func parseLock(f *cmdutil.Factory, args string) (*Options, error) {
	var got *Options
	cmd := NewCmdLock(f, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs(strings.Fields(args))
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		return nil, err
	}
	return got, nil
}

func exitCode(err error) int { return exitcode.Of(err) }

func TestRunOutcomesAndExitCodes(t *testing.T) {
	tests := []struct {
		name       string
		args       string
		env        map[string]string
		serverErr  error
		code       int
		requests   int
		stdout     []string
		stderr     []string
		notInOuput []string
	}{
		{name: "one device queued", args: "--udid A --platform ios --no-push", code: 0, requests: 1,
			stdout: []string{"A  queued  command "}, stderr: []string{"1 device: 1 queued"}},
		{name: "partial", args: "A FAIL-B --platform ios --yes", code: 3, requests: 1,
			// Columns line up across IDs of different lengths.
			stdout: []string{"A       queued             command", "FAIL-B  failed             nope"}},
		{name: "all failed", args: "FAIL-A --platform ios", code: 1, requests: 1},
		{name: "auth", args: "A --platform ios", serverErr: &server.HTTPError{Server: "https://fake", Status: 401}, code: 4, requests: 1,
			// A lone device's line says why; no error line repeats it.
			stdout: []string{"A  failed  https://fake answered HTTP 401"}, notInOuput: []string{"error: "}},
		{name: "unavailable", args: "A --platform ios", serverErr: &server.UnavailableError{Server: "https://fake", Err: errors.New("refused")}, code: 5, requests: 1},
		{name: "guard refuses", args: "MAC --model MacBookAir10,1 --os-version 11.4", code: 6, requests: 0},
		{name: "guard refuses every device", args: "MAC1 MAC2 --model MacBookAir10,1 --os-version 11.4 --yes", code: 6, requests: 0},
		{name: "dry run needs no server", args: "A --platform ios --dry-run", code: 0, requests: 0, stdout: []string{"<key>RequestType</key>"}},
		{name: "wait: acknowledged", args: "A --platform ios --no-push --wait=5s", code: 0, requests: 1,
			stdout: []string{"A  acknowledged  Acknowledged Success"}},
		{name: "wait: silent device", args: "SILENT-A --platform ios --no-push --wait=100ms", code: 8, requests: 1,
			stdout: []string{"SILENT-A  no-answer"}},
		{name: "PIN from the environment, never printed", args: "A --model Mac14,2 --os-version 14.5 --no-push", env: map[string]string{EnvPIN: "482913"},
			code: 0, requests: 1, notInOuput: []string{"482913"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &fakeServer{err: tt.serverErr}
			stdout, stderr, err := runLock(t, srv, tt.args, tt.env)
			if got := exitCode(err); got != tt.code {
				t.Fatalf("exit %d (%v), want %d\nstdout:\n%s\nstderr:\n%s", got, err, tt.code, stdout, stderr)
			}
			if len(srv.requests) != tt.requests {
				t.Errorf("%d requests, want %d", len(srv.requests), tt.requests)
			}
			for _, want := range tt.stdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			for _, want := range tt.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			for _, secret := range tt.notInOuput {
				if strings.Contains(stdout+stderr, secret) {
					t.Errorf("output shows %q", secret)
				}
			}
		})
	}
}

func TestRunSendsThePINItWasGiven(t *testing.T) {
	srv := &fakeServer{}
	if _, _, err := runLock(t, srv, "A --model Mac14,2 --os-version 14.5 --no-push", map[string]string{EnvPIN: "482913"}); err != nil {
		t.Fatal(err)
	}
	cmd := srv.requests[0].Lock
	if cmd.PIN != "482913" || !srv.requests[0].NoPush {
		t.Fatalf("sent %+v", cmd)
	}
}

func TestWaitArgumentTrap(t *testing.T) {
	_, _, err := runLock(t, &fakeServer{}, "--udid A --platform ios --wait 20s", nil)
	if exitCode(err) != exitcode.Usage || !strings.Contains(err.Error(), "--wait=20s") {
		t.Fatalf("got %v", err)
	}
}
