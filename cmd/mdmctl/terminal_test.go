package main

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"
)

// terminalEnv is a clean environment for mdmctl on a terminal.
func terminalEnv(t *testing.T, extra ...string) []string {
	home := t.TempDir()
	env := append(os.Environ(), "NO_COLOR=1", "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_STATE_HOME="+filepath.Join(home, ".local", "state"), "MDMCTL_HISTORY=", "MDMCTL_SERVER=", "MDMCTL_API_KEY=", "MDMCTL_CONTEXT=", "MDMCTL_CONFIG=", "MDMCTL_PIN=")
	return append(env, extra...)
}

// startOnTerminal runs mdmctl with stdin and stderr on a pseudo-terminal
// and stdout on a pipe (as in `mdmctl ... -o json | jq`).
func startOnTerminal(t *testing.T, env []string, args ...string) (*exec.Cmd, *os.File, *bytes.Buffer) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ptmx.Close() })
	var stdout bytes.Buffer
	cmd := exec.Command(mdmctlBinary(t), args...)
	cmd.Env, cmd.Stdin, cmd.Stderr, cmd.Stdout = env, tty, tty, &stdout
	cmd.SysProcAttr = ttyProcAttr()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	return cmd, ptmx, &stdout
}

func exitCodeOf(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// finish reads the terminal to its end and returns the exit code.
func finish(t *testing.T, cmd *exec.Cmd, ptmx io.Reader, out *bytes.Buffer) int {
	t.Helper()
	_, _ = io.Copy(out, ptmx) // until the child closes the terminal
	return exitCodeOf(cmd.Wait())
}

// One Ctrl-C at the question ends the run at once: a newline, "nothing was
// sent", exit 130. The question names the context and its server, and is
// asked though stdout is a pipe.
func TestCtrlCAtPrompt(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	defer srv.Close()
	env := terminalEnv(t)
	keyFile := filepath.Join(t.TempDir(), "prod.key")
	if err := os.WriteFile(keyFile, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	setup := exec.Command(mdmctlBinary(t), "config", "set-context", "prod", "--server", srv.URL, "--api-key-file", keyFile)
	setup.Env = env
	if out, err := setup.CombinedOutput(); err != nil {
		t.Fatalf("set-context: %v\n%s", err, out)
	}

	cmd, ptmx, stdout := startOnTerminal(t, env, "lock", "--udid", "A,B", "--platform", "ios", "--no-push", "-o", "json")
	var term bytes.Buffer
	prompt := readUntil(t, ptmx, &term, "? [y/N] ")
	if want := "Lock 2 devices on prod (" + srv.URL + ")? [y/N] "; !strings.Contains(prompt, want) {
		t.Errorf("prompt %q lacks %q", prompt, want)
	}
	start := time.Now()
	if _, err := ptmx.Write([]byte{3}); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	code := finish(t, cmd, ptmx, &term)
	if code != 130 || requests.Load() != 0 {
		t.Errorf("exit %d with %d requests, want 130 with 0\n%s", code, requests.Load(), term.String())
	}
	if !regexp.MustCompile(`\? \[y/N\] \^C\r?\nerror: interrupted: nothing was sent`).MatchString(term.String()) {
		t.Errorf("want a newline after the question, then %q:\n%q", "interrupted: nothing was sent", term.String())
	}
	if time.Since(start) > 5*time.Second || stdout.Len() != 0 {
		t.Errorf("after %s, stdout %q", time.Since(start), stdout.String())
	}
}

// --wait says what it waits for, and the progress bar counts devices on
// the terminal while the JSON goes down the pipe.
func TestWaitLineAndProgressOnTerminal(t *testing.T) {
	cmd, ptmx, stdout := startOnTerminal(t, terminalEnv(t), "lock", "--context", "sandbox", "--yes", "--wait=20s", "-o", "json",
		"--udid", "00008020-000915083C80012E,7F3C2A10-1611-4E04-8B20-000000001604,C0FFEE14-0003-4A61-9F30-000000014601")
	var term bytes.Buffer
	code := finish(t, cmd, ptmx, &term)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, term.String())
	}
	screen := term.String()
	for _, want := range []string{
		"waiting up to 20s for 3 answers from sandbox (Ctrl-C stops waiting; commands stay queued)",
		"locking", "devices",
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("terminal lacks %q:\n%q", want, screen)
		}
	}
	if !strings.Contains(stdout.String(), `"acknowledged": 3`) {
		t.Errorf("stdout:\n%s", stdout.String())
	}
}
