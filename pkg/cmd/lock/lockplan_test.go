package lock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
