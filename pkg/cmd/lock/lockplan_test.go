package lock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/escrow"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// serverPINKind is a kind whose server makes every Mac's PIN and takes
// no PIN: the shape of Kandji's and Fleet's own lock.
var serverPINKind = server.Driver{
	Kind:   "test-server-pin",
	Limits: server.Limits{MaxIDs: 1, MaxIDBytes: 1 << 10},
	PlanLock: func(l apple.DeviceLock, mayBeMac bool) (server.LockPlan, error) {
		if l.PIN != "" {
			return server.LockPlan{}, errors.New("the test-server-pin kind cannot take a PIN")
		}
		plan := server.LockPlan{ServerPIN: mayBeMac}
		if l.Message != "" {
			plan.Warning = "the message goes, but differently"
		}
		return plan, nil
	},
	Open: func(context.Context, server.Config) (*server.Session, error) {
		return nil, errors.New("not opened in tests")
	},
}

func init() { server.Register(serverPINKind) }

// pinMaker answers each device with a PIN made from its ID, as a server
// that makes PINs does.
type pinMaker struct{ fakeServer }

func (p *pinMaker) Enqueue(ctx context.Context, req server.Request) (*server.Result, error) {
	res, err := p.fakeServer.Enqueue(ctx, req)
	for i := range res.Devices {
		res.Devices[i].PIN, res.Devices[i].Reference = "9"+strings.Repeat("1", 5), "action-"+res.Devices[i].ID
	}
	return res, err
}

func TestServerPINIsEscrowedBeforeShown(t *testing.T) {
	esc := filepath.Join(t.TempDir(), "pins.txt")
	srv := &pinMaker{}
	stdout, stderr, err := runLockServer(t, srv, "--yes --udid A --udid B --platform macos --model Mac14,2 --os-version 14.5 -o json --pin-escrow "+esc, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	pins, err := escrow.PINs(esc)
	if err != nil || len(pins) != 2 {
		t.Fatalf("escrow holds %v (%v), want both devices' PINs", pins, err)
	}
	for k, pin := range pins {
		if pin != "911111" || len(srv.requests) != 2 {
			t.Fatalf("escrowed %s for %v", pin, k)
		}
	}
	if strings.Contains(stdout, "911111") || !strings.Contains(stdout, `"server_reference": "action-A"`) {
		t.Fatalf("output shows the PIN without --show-pins, or no reference:\n%s", stdout)
	}
	raw, _ := os.ReadFile(esc)
	if !strings.Contains(string(raw), "911111") {
		t.Fatal("escrow is not in clear without a recipient")
	}
}

// latePINMaker makes each device's PIN after its lock returned, as Intune
// may: the lock's result says where the PIN is meanwhile; with --wait the
// session's watcher hands the PIN over, then the device answers.
type latePINMaker struct {
	fakeServer
	escrow string
	wg     sync.WaitGroup
	keep   func(commandUUID, id, pin string) error
	// escrowed records, per device, whether the escrow held its PIN when
	// its answer went out.
	escrowed map[string]bool
}

const latePIN = "604213"

func (p *latePINMaker) KeepPINs(keep func(commandUUID, id, pin string) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keep = keep
}

func (p *latePINMaker) Enqueue(_ context.Context, req server.Request) (*server.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = append(p.requests, req)
	res := &server.Result{}
	for _, id := range req.IDs {
		res.Devices = append(res.Devices, server.DeviceResult{ID: id, Outcome: server.Queued, Reference: "action-" + id,
			PINNote: "the server has not shown this Mac's PIN yet: read it on the server"})
	}
	if p.keep == nil {
		return res, nil // nothing waits: the PIN stays on the server
	}
	p.wg.Add(1)
	go func() { // the watcher, once Enqueue returned
		defer p.wg.Done()
		time.Sleep(20 * time.Millisecond)
		for _, id := range req.IDs {
			err := p.keep(req.CommandUUID, id, latePIN)
			pins, _ := escrow.PINs(p.escrow)
			p.mu.Lock()
			p.escrowed[id] = err == nil && pins[[2]string{req.CommandUUID, id}] == latePIN
			col := p.collector
			p.mu.Unlock()
			col.Deliver(apple.Response{Status: apple.StatusAcknowledged, CommandUUID: req.CommandUUID, UDID: id})
		}
	}()
	return res, nil
}

// TestLatePINIsEscrowedBeforeTheAnswer: with --wait, a PIN the server
// publishes after the lock returned is escrowed before the device's line
// goes out; the line no longer says the PIN is elsewhere, and shows it
// only with --show-pins. Without --wait nothing is kept.
func TestLatePINIsEscrowedBeforeTheAnswer(t *testing.T) {
	for _, show := range []bool{false, true} {
		esc := filepath.Join(t.TempDir(), "pins.txt")
		srv := &latePINMaker{escrow: esc, escrowed: map[string]bool{}}
		args := "--yes --udid A --udid B --platform macos --model Mac14,2 --os-version 14.5 --wait=5s -o json --pin-escrow " + esc
		if show {
			args += " --show-pins"
		}
		stdout, stderr, err := runLockWith(t, srv, &srv.fakeServer, serverPINKind, args, nil)
		srv.wg.Wait()
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		if !srv.escrowed["A"] || !srv.escrowed["B"] {
			t.Fatalf("escrow held the PIN when the answer went out: %v", srv.escrowed)
		}
		if pins, err := escrow.PINs(esc); err != nil || len(pins) != 2 {
			t.Fatalf("escrow holds %v (%v), want both devices' PINs", pins, err)
		}
		if strings.Count(stdout, `"outcome": "acknowledged"`) != 2 || strings.Contains(stdout, "read it on the server") {
			t.Fatalf("want both acknowledged, neither saying the PIN is elsewhere:\n%s", stdout)
		}
		if got := strings.Count(stdout, latePIN); (got == 2) != show || (got == 0) == show || strings.Contains(stderr, latePIN) {
			t.Fatalf("--show-pins %t: the PIN shows %d times; stdout:\n%s\nstderr:\n%s", show, got, stdout, stderr)
		}
	}

	esc := filepath.Join(t.TempDir(), "pins.txt")
	srv := &latePINMaker{escrow: esc, escrowed: map[string]bool{}}
	stdout, stderr, err := runLockWith(t, srv, &srv.fakeServer, serverPINKind, "--udid A --platform macos --model Mac14,2 --os-version 14.5 --pin-escrow "+esc, nil)
	if err != nil || !strings.Contains(stdout, "read it on the server") {
		t.Fatalf("without --wait: err %v, want the line to say where the PIN is:\n%s\n%s", err, stdout, stderr)
	}
	if pins, _ := escrow.PINs(esc); len(pins) != 0 {
		t.Fatalf("escrow holds %v without --wait", pins)
	}
}

func TestServerPINNeedsAnEscrow(t *testing.T) {
	srv := &pinMaker{}
	_, _, err := runLockServer(t, srv, "--udid A --platform macos --model Mac14,2 --os-version 14.5", nil)
	if code := exitCode(err); code != 2 || len(srv.requests) != 0 || !strings.Contains(err.Error(), "--pin-escrow FILE") {
		t.Fatalf("exit %d, %d requests, err %v: want 2, nothing sent, naming --pin-escrow", code, len(srv.requests), err)
	}
}

func TestKindRefusesValuesItCannotCarry(t *testing.T) {
	srv := &pinMaker{}
	_, _, err := runLockServer(t, srv, "--udid A --platform ios --pin-escrow e.txt", map[string]string{EnvPIN: "482913"})
	if code := exitCode(err); code != 2 || len(srv.requests) != 0 || !strings.Contains(err.Error(), "test-server-pin kind cannot take a PIN") {
		t.Fatalf("exit %d, %d requests, err %v: want 2, nothing sent, naming the kind", code, len(srv.requests), err)
	}
}

func TestKindWarnsOnce(t *testing.T) {
	srv := &pinMaker{}
	_, stderr, err := runLockServer(t, srv, "--yes --udid A --udid B --platform macos --model Mac14,2 --os-version 14.5 --message hi --pin-escrow "+filepath.Join(t.TempDir(), "e"), nil)
	if err != nil || strings.Count(stderr, "the message goes, but differently") != 1 {
		t.Fatalf("err %v; stderr:\n%s\nwant the kind's warning once", err, stderr)
	}
}

// TestServerPINOnlyWhereAMacMayBe: a device known not to be a Mac gets no
// PIN from the server, so no escrow is asked for.
func TestServerPINOnlyWhereAMacMayBe(t *testing.T) {
	srv := &pinMaker{}
	if _, stderr, err := runLockServer(t, srv, "--yes --udid A --platform ios", nil); err != nil || len(srv.requests) != 1 {
		t.Fatalf("err %v, %d requests; stderr:\n%s\nwant the iPhone locked with no escrow", err, len(srv.requests), stderr)
	}
}

func TestPINEscrowNeedsAPINToKeep(t *testing.T) {
	_, _, err := runLock(t, &fakeServer{}, "--udid A --platform ios --pin-escrow e.txt", nil)
	if code := exitCode(err); code != 2 || !strings.Contains(err.Error(), "--pin-escrow goes with --pin-generate") {
		t.Fatalf("exit %d, err %v", code, err)
	}
}

func runLockServer(t *testing.T, srv *pinMaker, args string, env map[string]string) (string, string, error) {
	t.Helper()
	return runLockWith(t, srv, &srv.fakeServer, serverPINKind, args, env)
}

func TestRefuseUnanswerable(t *testing.T) {
	quiet := server.Driver{Kind: "quiet", Capabilities: server.Capabilities{NoStatus: true, NoInformation: true}}
	for _, tc := range []struct {
		name            string
		d               server.Driver
		wait, preflight bool
		want            string
	}{
		{"wait on a kind with no status", quiet, true, false, "--wait: the quiet kind cannot read back"},
		{"preflight on a kind with no DeviceInformation", quiet, false, true, "--preflight: the quiet kind cannot send DeviceInformation"},
		{"neither asked", quiet, false, false, ""},
		{"a kind that hears answers", server.Driver{Kind: "loud"}, true, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := refuseUnanswerable(tc.d, tc.wait, tc.preflight)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ue *exitcode.UsageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a usage error containing %q", err, tc.want)
			}
		})
	}
}
