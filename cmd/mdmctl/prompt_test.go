package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"
)

// mdmctlBinary links the test binary under the name mdmctl: testscript's
// Main then runs mdmctl's main when it is executed by that name.
func mdmctlBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "mdmctl")
	if err := os.Symlink(self, link); err != nil {
		t.Fatal(err)
	}
	return link
}

// TestConfirmationOnTerminal runs mdmctl on a real pseudo-terminal: the
// prompt states the count, "no" sends nothing, "yes" sends.
func TestConfirmationOnTerminal(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"no_push":true,"command_uuid":"X","request_type":"DeviceLock"}`)
	}))
	defer srv.Close()
	bin := mdmctlBinary(t)

	for _, tt := range []struct {
		answer   string
		wantCode int
		wantReqs int64
	}{
		{"n", 1, 0},
		{"", 1, 0},
		{"yes", 0, 1},
	} {
		requests.Store(0)
		cmd := exec.Command(bin, "lock", "--udid", "A,B,C", "--platform", "ios", "--no-push")
		cmd.Env = append(os.Environ(), "MDMCTL_SERVER="+srv.URL, "MDMCTL_API_KEY=k", "NO_COLOR=1", "HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir(),
			"XDG_STATE_HOME="+t.TempDir(), "MDMCTL_HISTORY=")
		tty, err := pty.Start(cmd)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		prompt := readUntil(t, tty, &out, "? [y/N] ")
		if !strings.Contains(prompt, "Lock 3 devices on "+srv.URL+"? [y/N]") {
			t.Errorf("prompt = %q", prompt)
		}
		if _, err := tty.Write([]byte(tt.answer + "\n")); err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(&out, tty) // until the child closes the terminal
		err = cmd.Wait()
		tty.Close()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		if code != tt.wantCode || requests.Load() != tt.wantReqs {
			t.Errorf("answer %q: exit %d with %d requests, want %d with %d\n%s", tt.answer, code, requests.Load(), tt.wantCode, tt.wantReqs, out.String())
		}
		if tt.wantReqs == 0 && !strings.Contains(out.String(), "aborted: nothing was sent") {
			t.Errorf("answer %q: no abort message:\n%s", tt.answer, out.String())
		}
	}
}

// readUntil reads the terminal until it shows marker, with a deadline.
func readUntil(t *testing.T, r io.Reader, out *bytes.Buffer, marker string) string {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		br := bufio.NewReader(r)
		for !strings.Contains(out.String(), marker) {
			b, err := br.ReadByte()
			if err != nil {
				done <- err
				return
			}
			out.WriteByte(b)
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("terminal closed before %q: %v\n%s", marker, err, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no %q on the terminal:\n%s", marker, out.String())
	}
	return out.String()
}
