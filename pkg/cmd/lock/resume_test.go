package lock

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/journal"
	"github.com/mdmctl/mdmctl/pkg/report"
)

// writeJournal records a run against the fake server: one command per
// device, each left in another state.
func writeJournal(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run.jsonl")
	w, err := journal.Create(path, journal.Header{Server: "https://fake", Kind: "nanomdm", NoPush: true})
	if err != nil {
		t.Fatal(err)
	}
	var cmds []journal.Command
	for _, id := range []string{"QUEUED", "UNKNOWN", "NOTREACHED", "REACHED", "NOTSENT", "CRASHED"} {
		lock := apple.DeviceLock{Message: "Return to IT"}
		payload, err := lock.Payload("U-" + id)
		if err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, journal.Command{UUID: "U-" + id, IDs: []string{id}, Lock: journal.Lock{Message: "Return to IT"}, Digest: journal.Digest(apple.RedactPIN(payload))})
	}
	if err := w.Plan(cmds, []journal.Outcome{{ID: "GUARDED", Outcome: report.Refused, Error: "deactivates"}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"QUEUED", "UNKNOWN", "NOTREACHED", "REACHED", "CRASHED"} {
		if err := w.Sending("U-"+id, nil); err != nil {
			t.Fatal(err)
		}
	}
	w.Outcome(journal.Outcome{ID: "QUEUED", CommandUUID: "U-QUEUED", Outcome: report.Queued})
	w.Outcome(journal.Outcome{ID: "UNKNOWN", CommandUUID: "U-UNKNOWN", Outcome: report.Unknown, Error: "timeout"})
	w.Outcome(journal.Outcome{ID: "NOTREACHED", CommandUUID: "U-NOTREACHED", Outcome: report.Failed, Error: "refused", NotReached: true})
	w.Outcome(journal.Outcome{ID: "REACHED", CommandUUID: "U-REACHED", Outcome: report.Failed, Error: "bad"})
	w.Outcome(journal.Outcome{ID: "NOTSENT", CommandUUID: "U-NOTSENT", Outcome: report.NotSent})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestResumeSendsWhatDidNotLand(t *testing.T) {
	path := writeJournal(t)
	srv := &fakeServer{}
	stdout, stderr, err := runLock(t, srv, "--resume "+path+" --yes", nil)
	if code := exitCode(err); code != 3 {
		t.Fatalf("exit %d, want 3 (REACHED failed, GUARDED refused); stderr:\n%s", code, stderr)
	}
	sent := map[string]bool{}
	for _, req := range srv.requests {
		id := req.IDs[0]
		sent[id] = true
		want, _ := apple.DeviceLock{Message: "Return to IT"}.Payload("U-" + id)
		got, _ := req.Plist()
		if req.CommandUUID != "U-"+id || string(got) != string(want) || !req.NoPush {
			t.Errorf("%s resent as %s, not byte-identical under its own UUID with the run's --no-push", id, req.CommandUUID)
		}
		if landed := id == "UNKNOWN" || id == "CRASHED"; req.MayHaveLanded != landed {
			t.Errorf("%s: MayHaveLanded %t, want %t", id, req.MayHaveLanded, landed)
		}
	}
	if len(sent) != 4 || !sent["UNKNOWN"] || !sent["NOTREACHED"] || !sent["NOTSENT"] || !sent["CRASHED"] {
		t.Errorf("resent %v, want UNKNOWN, NOTREACHED, NOTSENT, CRASHED", sent)
	}
	// Columns are padded; compare the words of each line.
	lines := map[string]bool{}
	for _, l := range strings.Split(stdout, "\n") {
		lines[strings.Join(strings.Fields(l), " ")] = true
	}
	for _, line := range []string{"QUEUED queued (earlier run) command U-QUEUED", "REACHED failed bad (earlier run) command U-REACHED",
		"GUARDED refused deactivates (earlier run)", "NOTSENT queued command U-NOTSENT"} {
		if !lines[line] {
			t.Errorf("stdout lacks %q:\n%s", line, stdout)
		}
	}
	if n := strings.Count(stdout, "\n"); n != 7 {
		t.Errorf("%d device lines, want each of the 7 devices once:\n%s", n, stdout)
	}
	if strings.Contains(stderr, "to resume") {
		t.Errorf("nothing is left to resend, yet:\n%s", stderr)
	}
}

func TestResumeRefusals(t *testing.T) {
	path := writeJournal(t)
	for _, tt := range []struct{ args, msg string }{
		{"--resume " + path + " --udid A --yes", "a target (argument, --udid or -) conflicts with --resume"},
		{"--resume " + path + " --message M --yes", "--message conflicts with --resume"},
		{"--resume " + path + " --no-push --yes", "--no-push conflicts with --resume"},
		{"--resume " + path + " --yes --pin 123456", "drop --pin"},
		{"--resume " + filepath.Join(t.TempDir(), "missing") + " --yes", "no such file"},
	} {
		srv := &fakeServer{}
		_, _, err := runLock(t, srv, tt.args, nil)
		if exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), tt.msg) || len(srv.requests) != 0 {
			t.Errorf("%s: err %v (exit %d, %d requests), want exit 2 %q and nothing sent", tt.args, err, exitCode(err), len(srv.requests), tt.msg)
		}
	}
}
