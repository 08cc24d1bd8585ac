package nanomdmtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/simdevice"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var mac = simdevice.Facts{Name: "Sim Mac", Platform: apple.PlatformMacOS, Model: "Mac15,3", OSVersion: "14.5", BuildVersion: "23F79", Serial: "SIMMAC0002"}

// rawEnqueue is the API call spelled out, as an admin's curl makes it.
func rawEnqueue(t *testing.T, s *Server, key, query string, payload []byte, ids string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), http.MethodPut, s.URL+"/v1/enqueue/"+ids+query, bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("nanomdm", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(body, &out)
	return resp.StatusCode, out
}

func checkIn(t *testing.T, d *simdevice.Device) []simdevice.Received {
	t.Helper()
	before := len(d.Received())
	if err := d.CheckIn(testContext(t)); err != nil {
		t.Fatal(err)
	}
	return d.Received()[before:]
}

func TestDeviceLockEndToEnd(t *testing.T) {
	s := StartT(t, Options{})
	d := s.NewDevice(t, "SIM-1", simdevice.Acknowledge, mac)
	payload, err := apple.DeviceLock{PIN: "123456", Message: "Return to IT", PhoneNumber: "408-555-5555"}.Payload("SIM-CMD-1")
	if err != nil {
		t.Fatal(err)
	}
	status, res := rawEnqueue(t, s, s.APIKey, "?nopush=1", payload, "SIM-1")
	want := map[string]any{"no_push": true, "command_uuid": "SIM-CMD-1", "request_type": "DeviceLock"}
	if status != http.StatusOK || fmt.Sprint(res) != fmt.Sprint(want) {
		t.Fatalf("enqueue: HTTP %d %v, want 200 %v", status, res, want)
	}
	got := checkIn(t, d)
	if len(got) != 1 || !bytes.Equal(got[0].Raw, payload) {
		t.Fatalf("device received %d commands; want the queued plist byte for byte", len(got))
	}
	c := got[0].Command
	if c.CommandUUID != "SIM-CMD-1" || c.PIN != "123456" || c.Message != "Return to IT" || c.PhoneNumber != "408-555-5555" {
		t.Errorf("parsed %+v", c)
	}
	if a := got[0].Answer; a.Status != apple.StatusAcknowledged || a.MessageResult != apple.MessageResultSuccess || a.UDID != "SIM-1" || a.CommandUUID != "SIM-CMD-1" {
		t.Errorf("answered %+v", a)
	}
	if again := checkIn(t, d); len(again) != 0 {
		t.Errorf("after Acknowledged the server sent %d more commands", len(again))
	}
}

func TestNotNowOnceGetsItAgain(t *testing.T) {
	s := StartT(t, Options{})
	d := s.NewDevice(t, "BUSY-1", simdevice.NotNowOnce, mac)
	payload, _ := apple.DeviceLock{PIN: "654321"}.Payload("BUSY-CMD")
	if _, err := s.Enqueue(testContext(t), payload, "BUSY-1"); err != nil {
		t.Fatal(err)
	}
	first := checkIn(t, d)
	if len(first) != 1 || first[0].Answer.Status != apple.StatusNotNow {
		t.Fatalf("first check-in: %+v, want one NotNow", first)
	}
	second := checkIn(t, d)
	if len(second) != 1 || !bytes.Equal(second[0].Raw, payload) || second[0].Delivery != 2 {
		t.Fatalf("second check-in: %+v, want the same plist again", second)
	}
	if a := second[0].Answer; a.Status != apple.StatusAcknowledged || a.MessageResult != apple.MessageResultSuccess {
		t.Errorf("second answer %+v", a)
	}
	if third := checkIn(t, d); len(third) != 0 {
		t.Errorf("third check-in got %d commands", len(third))
	}
}

func TestRequirePINAnswersError(t *testing.T) {
	s := StartT(t, Options{})
	d := s.NewDevice(t, "MAC-PIN", simdevice.RequirePIN, mac)
	ctx := testContext(t)
	noPIN, _ := apple.DeviceLock{Message: "Locked"}.Payload("NO-PIN")
	if _, err := s.Enqueue(ctx, noPIN, "MAC-PIN"); err != nil {
		t.Fatal(err)
	}
	got := checkIn(t, d)
	if len(got) != 1 {
		t.Fatalf("got %d commands", len(got))
	}
	a := got[0].Answer
	if a.Status != apple.StatusError || a.MessageResult != "" || len(a.ErrorChain) != 1 {
		t.Fatalf("without a PIN: %+v, want Error with one ErrorChain item", a)
	}
	if e := a.ErrorChain[0]; e.ErrorDomain != "MCMDMErrorDomain" || e.ErrorCode != simdevice.ErrorCodePINRequired || e.LocalizedDescription == "" {
		t.Errorf("ErrorChain %+v", e)
	}
	withPIN, _ := apple.DeviceLock{PIN: "123456"}.Payload("WITH-PIN")
	if _, err := s.Enqueue(ctx, withPIN, "MAC-PIN"); err != nil {
		t.Fatal(err)
	}
	got = checkIn(t, d)
	if len(got) != 1 || got[0].Answer.Status != apple.StatusAcknowledged || got[0].Command.PIN != "123456" {
		t.Fatalf("with a PIN: %+v, want Acknowledged", got)
	}
}

// TestNanoMDMQuirks pins NanoMDM v0.9.0 behaviour that callers trip over.
func TestNanoMDMQuirks(t *testing.T) {
	s := StartT(t, Options{})
	ctx := testContext(t)
	d := s.NewDevice(t, "QUIRK-1", simdevice.Acknowledge, mac)
	lock := func(uuid string) []byte {
		p, err := apple.DeviceLock{}.Payload(uuid)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("bad API key is 401", func(t *testing.T) {
		if status, _ := rawEnqueue(t, s, "wrong", "?nopush=1", lock("Q-401"), "QUIRK-1"); status != http.StatusUnauthorized {
			t.Errorf("HTTP %d", status)
		}
	})

	t.Run("a reused CommandUUID is 500", func(t *testing.T) {
		if _, err := s.Enqueue(ctx, lock("Q-DUP"), "QUIRK-1"); err != nil {
			t.Fatal(err)
		}
		status, res := rawEnqueue(t, s, s.APIKey, "?nopush=1", lock("Q-DUP"), "QUIRK-1")
		if msg, _ := res["command_error"].(string); status != http.StatusInternalServerError || !strings.Contains(msg, "command already exists") {
			t.Errorf("HTTP %d %v", status, res)
		}
		checkIn(t, d) // drain Q-DUP
	})

	t.Run("without nopush: 500 push_error, yet queued", func(t *testing.T) {
		status, res := rawEnqueue(t, s, s.APIKey, "", lock("Q-PUSH"), "QUIRK-1")
		if status != http.StatusInternalServerError || res["command_uuid"] != "Q-PUSH" {
			t.Errorf("HTTP %d %v", status, res)
		}
		if got := checkIn(t, d); len(got) != 1 || got[0].Command.CommandUUID != "Q-PUSH" {
			t.Errorf("the device got %+v", got)
		}
	})

	t.Run("Authenticate clears the queue", func(t *testing.T) {
		if _, err := s.Enqueue(ctx, lock("Q-CLEARED"), "QUIRK-1"); err != nil {
			t.Fatal(err)
		}
		if err := d.Enroll(ctx); err != nil { // same identity: re-enrollment is allowed
			t.Fatal(err)
		}
		if got := checkIn(t, d); len(got) != 0 {
			t.Errorf("re-enrolled device still got %+v", got[0].Command)
		}
	})

	t.Run("NotNow reorders the queue and an acknowledged command comes back", func(t *testing.T) {
		busyOnA := simdevice.BehaviorFunc(func(c apple.ParsedCommand, seen int) apple.Response {
			if c.CommandUUID == "Q-NN-A" && seen == 0 {
				return apple.Response{Status: apple.StatusNotNow}
			}
			return simdevice.Acknowledge.Answer(c, seen)
		})
		nn := s.NewDevice(t, "QUIRK-NN", busyOnA, mac)
		for _, u := range []string{"Q-NN-A", "Q-NN-B"} {
			if _, err := s.Enqueue(ctx, lock(u), "QUIRK-NN"); err != nil {
				t.Fatal(err)
			}
		}
		// NanoMDM skips NotNow commands only on the request right after a
		// NotNow, so A returns in the same session once B is answered. And
		// its kv queue (inmem, file) leaves A's next pointer at B when B,
		// the tail, is unlinked; unlinking A then makes B the head again, so
		// the acknowledged B is delivered a second time.
		var seq []string
		for _, r := range checkIn(t, nn) {
			seq = append(seq, r.Command.CommandUUID+" "+r.Answer.Status)
		}
		want := []string{"Q-NN-A NotNow", "Q-NN-B Acknowledged", "Q-NN-A Acknowledged", "Q-NN-B Acknowledged"}
		if fmt.Sprint(seq) != fmt.Sprint(want) {
			t.Errorf("one session went %q, want %q", seq, want)
		}
		if got := checkIn(t, nn); len(got) != 0 {
			t.Errorf("the queue is not empty after that: %+v", got[0].Command)
		}
	})

	t.Run("an unsigned check-in is 400", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, s.MDMURL(), strings.NewReader(
			`<plist><dict><key>MessageType</key><string>Authenticate</string><key>UDID</key><string>X</string><key>Topic</key><string>T</string></dict></plist>`))
		req.Header.Set("Content-Type", simdevice.ContentTypeCheckIn)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("HTTP %d", resp.StatusCode)
		}
	})
}

func TestStartRetriesWhenPortIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port

	// NanoMDM on a taken port logs and exits with status 0.
	bin := BinaryT(t)
	dir := t.TempDir()
	ca, _ := simdevice.NewCA("t")
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = launch(bin, dir, caFile, port, nil, Options{APIKey: "k", ReadyTimeout: 20 * time.Second})
	if !errors.Is(err, errPortLost) || !strings.Contains(err.Error(), "exit status 0") {
		t.Fatalf("launch on a taken port: %v; want errPortLost after exit status 0", err)
	}

	calls := 0
	pickPort = func() (int, error) {
		calls++
		if calls == 1 {
			return port, nil
		}
		return freePort()
	}
	defer func() { pickPort = freePort }()
	s := StartT(t, Options{})
	if s.Attempts != 2 || s.URL == fmt.Sprintf("http://127.0.0.1:%d", port) {
		t.Fatalf("started on %s after %d attempts; want a second port", s.URL, s.Attempts)
	}
	s.NewDevice(t, "AFTER-RETRY", simdevice.Acknowledge, mac)
}

// fakeTB records what StartT does with a test.
type fakeTB struct {
	t        *testing.T
	failed   bool
	logs     []string
	cleanups []func()
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Logf(format string, args ...any) {
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.t.Fatalf("unexpected Fatalf: "+format, args...)
}
func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Failed() bool      { return f.failed }
func (f *fakeTB) TempDir() string   { return f.t.TempDir() }
func (f *fakeTB) cleanup() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func TestStartTCleanup(t *testing.T) {
	for _, failed := range []bool{false, true} {
		tb := &fakeTB{t: t}
		s := StartT(tb, Options{})
		pid := s.PID()
		tb.failed = failed
		tb.cleanup()
		select {
		case <-s.Exited():
		default:
			t.Fatal("cleanup did not stop the server")
		}
		if p, err := os.FindProcess(pid); err == nil && p.Signal(syscall.Signal(0)) == nil {
			t.Errorf("process %d still runs after cleanup", pid)
		}
		logged := strings.Join(tb.logs, "\n")
		if failed != strings.Contains(logged, "starting server") {
			t.Errorf("failed=%t: test log %q", failed, logged)
		}
		if _, err := http.Get(s.URL + "/version"); err == nil {
			t.Errorf("%s still answers", s.URL)
		}
	}
}

func TestStartWithoutTest(t *testing.T) {
	s, err := Start(Options{APIKey: "k2", Debug: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(s.CAFile)
	d, err := s.Enroll(testContext(t), simdevice.Facts{UDID: "PLAIN-1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := apple.DeviceLock{}.Payload("PLAIN-CMD")
	if _, err := s.Enqueue(testContext(t), payload, d.Facts.UDID); err != nil {
		t.Fatal(err)
	}
	if got := checkIn(t, d); len(got) != 1 || !bytes.Equal(got[0].Raw, payload) {
		t.Fatalf("got %+v", got)
	}
	s.Close()
	s.Close() // idempotent
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Close left %s behind (%v)", dir, err)
	}
}

func TestBinaryFromEnvironment(t *testing.T) {
	t.Setenv(EnvBinary, "/nonexistent/nanomdm")
	if _, err := Binary(); err == nil {
		t.Error("a missing $MDMCTL_NANOMDM was accepted")
	}
	exe, _ := os.Executable()
	t.Setenv(EnvBinary, exe)
	if got, err := Binary(); err != nil || got != exe {
		t.Errorf("Binary() = %q, %v; want $%s as given", got, err, EnvBinary)
	}
}
