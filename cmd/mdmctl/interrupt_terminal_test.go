package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Ctrl-C in the middle of a bulk run on a terminal: the progress bar is
// cleared with the ^C the terminal echoed after it, so the summary line
// holds nothing else, and the run names the command that resumes it.
func TestCtrlCMidRunOnTerminal(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		time.Sleep(10 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"no_push":true,"command_uuid":"X","request_type":"DeviceLock"}`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	ids := make([]string, 300)
	for i := range ids {
		ids[i] = fmt.Sprintf("MAC-%04d", i)
	}
	// Each Mac gets its own PIN, so its own request: the run takes a while.
	cmd, ptmx, stdout := startOnTerminal(t, terminalEnv(t, "MDMCTL_SERVER="+srv.URL, "MDMCTL_API_KEY=k", "XDG_STATE_HOME="+filepath.Join(dir, "state")),
		"lock", "--udid", strings.Join(ids, ","), "--model", "Mac14,2", "--os-version", "14.5", "--yes", "--no-push",
		"--concurrency", "1", "--pin-generate", "--pin-escrow", filepath.Join(dir, "pins.jsonl"))
	var term bytes.Buffer
	done := make(chan struct{})
	go func() { // the terminal must be read while mdmctl draws on it
		defer close(done)
		_, _ = io.Copy(&term, ptmx)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for requests.Load() < 30 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := ptmx.Write([]byte{3}); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	<-done
	code := exitCodeOf(cmd.Wait())
	if code != 130 {
		t.Fatalf("exit %d, want 130\n%q", code, term.String())
	}
	screen := render(term.String())
	summary := regexp.MustCompile(`^300 devices: (\d+) queued, (\d+) not-sent \(interrupted\)$`)
	resume := regexp.MustCompile(`^to resume: mdmctl lock --resume \S+/state/mdmctl/runs/\S+\.jsonl$`)
	var sawSummary, sawResume bool
	for _, line := range screen {
		sawSummary = sawSummary || summary.MatchString(line)
		sawResume = sawResume || resume.MatchString(line)
	}
	if !sawSummary || !sawResume {
		t.Errorf("the screen lacks a clean summary line and the resume command:\n%s\n(raw %q)", strings.Join(screen, "\n"), term.String())
	}
	// Device lines go down the pipe, so the bar is drawn on the terminal.
	if !regexp.MustCompile(`(?m)^MAC-0299  not-sent  interrupted before sending`).MatchString(stdout.String()) || !strings.Contains(term.String(), "locking") {
		t.Errorf("no progress bar, or stdout is not the interrupted run:\n%q\n%s", term.String(), stdout.String())
	}
}

// render replays what a terminal shows for out: carriage returns move to
// the line's start, ESC [ K erases to its end, text overwrites; other
// escape sequences (colors, cursor visibility) are dropped.
func render(out string) []string {
	var lines []string
	var line []rune
	col := 0
	rs := []rune(out)
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; {
		case r == '\n':
			lines = append(lines, strings.TrimRight(string(line), " "))
			line, col = nil, 0
		case r == '\r':
			col = 0
		case r == 0x1b && i+1 < len(rs) && rs[i+1] == '[':
			j := i + 2
			for j < len(rs) && (rs[j] < 0x40 || rs[j] > 0x7e) {
				j++
			}
			if j < len(rs) && rs[j] == 'K' && j == i+2 {
				line = line[:min(col, len(line))]
			}
			i = j
		default:
			for len(line) <= col {
				line = append(line, ' ')
			}
			line[col] = r
			col++
		}
	}
	return append(lines, strings.TrimRight(string(line), " "))
}
