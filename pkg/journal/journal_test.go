package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdmctl/mdmctl/pkg/report"
)

func newJournal(t *testing.T) (*Writer, string) {
	t.Helper()
	path := DefaultPath(filepath.Join(t.TempDir(), "state"), time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC), "42")
	w, err := Create(path, Header{Server: "https://mdm.example.com", Kind: "nanomdm", Lock: Lock{Message: "Return to IT"}})
	if err != nil {
		t.Fatal(err)
	}
	return w, path
}

func cmd(uuid string, ids ...string) Command {
	return Command{UUID: uuid, IDs: ids, Lock: Lock{Message: "Return to IT"}, Digest: Digest([]byte(uuid))}
}

func noBuild() (Command, error) { panic("a planned command is recorded again") }

func TestCreatePermissionsAndName(t *testing.T) {
	w, path := newJournal(t)
	defer w.Close()
	if !strings.HasSuffix(path, filepath.Join("mdmctl", "runs", "20261203T140000.000Z-42.jsonl")) {
		t.Errorf("path %s does not sort by time under mdmctl/runs", path)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s: mode %04o, want %04o", p, got, want)
		}
	}
	if _, err := Create(path, Header{}); err == nil {
		t.Error("Create overwrote an existing journal")
	}
}

// Each device's last state decides what a resume sends: outcomes update it.
func TestStatesAndOutcomeUpdates(t *testing.T) {
	w, path := newJournal(t)
	err := w.Plan([]Command{cmd("C1", "A", "B"), cmd("C2", "C"), cmd("C3", "D"), cmd("C4", "E"), cmd("C5", "F")},
		[]Outcome{{ID: "R", Outcome: report.Refused, Error: "guard"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"C1", "C2", "C3", "C4"} {
		if err := w.Sending(u, noBuild); err != nil {
			t.Fatal(err)
		}
	}
	w.Outcome(Outcome{ID: "A", CommandUUID: "C1", Outcome: report.Queued})
	w.Outcome(Outcome{ID: "B", CommandUUID: "C1", Outcome: report.Queued})
	w.Outcome(Outcome{ID: "C", CommandUUID: "C2", Outcome: report.Unknown, Error: "timeout"})
	w.Outcome(Outcome{ID: "D", CommandUUID: "C3", Outcome: report.Failed, Error: "refused", NotReached: true})
	// C4 went out and the run ended before its answer; C5 never went out.
	w.Outcome(Outcome{ID: "F", CommandUUID: "C5", Outcome: report.NotSent})
	// A batch split after the plan moves a device to a new command.
	if err := w.Sending("C6", func() (Command, error) { return cmd("C6", "B"), nil }); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Header.Server != "https://mdm.example.com" || st.Header.Format != Format || st.Header.Lock.Message != "Return to IT" {
		t.Errorf("header = %+v", st.Header)
	}
	want := map[string]struct {
		uuid      string
		stage     Stage
		outcome   report.Outcome
		resend    bool
		mayLanded bool
	}{
		"A": {"C1", Settled, report.Queued, false, false},
		"B": {"C6", Sent, "", true, true},
		"C": {"C2", Settled, report.Unknown, true, true},
		"D": {"C3", Settled, report.Failed, true, false},
		"E": {"C4", Sent, "", true, true},
		"F": {"C5", Planned, report.NotSent, true, false},
		"R": {"", Settled, report.Refused, false, false},
	}
	if len(st.Devices) != len(want) {
		t.Fatalf("%d devices, want %d", len(st.Devices), len(want))
	}
	for _, d := range st.Devices {
		w := want[d.ID]
		if d.CommandUUID != w.uuid || d.Stage != w.stage || d.Outcome != w.outcome || d.Resendable() != w.resend || d.MayHaveLanded != w.mayLanded {
			t.Errorf("%s = %+v (resendable %t), want %+v", d.ID, *d, d.Resendable(), w)
		}
	}
	if d := st.byID["A"]; !d.Landed() {
		t.Error("a queued device is not landed")
	}
}

// A crash mid-write leaves a torn last line: Read skips it, Append cuts it
// off so the next record starts a line of its own.
func TestTornLastLine(t *testing.T) {
	w, path := newJournal(t)
	if err := w.Plan([]Command{cmd("C1", "A"), cmd("C2", "B")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Sending("C1", noBuild); err != nil {
		t.Fatal(err)
	}
	w.Close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"result":{"uuid":"C1","outcome":"queu`)
	f.Close()

	st, err := Read(path)
	if err != nil {
		t.Fatalf("torn last line: %v", err)
	}
	if d := st.byID["A"]; d.Stage != Sent || !d.MayHaveLanded {
		t.Errorf("A = %+v, want sent, may have landed", *d)
	}
	w2, st2, err := Append(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(st2.Devices) != 2 {
		t.Fatalf("Append read %d devices", len(st2.Devices))
	}
	if err := w2.Sending("C2", noBuild); err != nil {
		t.Fatal(err)
	}
	w2.Outcome(Outcome{ID: "B", CommandUUID: "C2", Outcome: report.Queued})
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	st3, err := Read(path)
	if err != nil {
		t.Fatalf("after append: %v", err)
	}
	if d := st3.byID["B"]; d.Outcome != report.Queued {
		t.Errorf("B = %+v, want queued", *d)
	}

	// A broken line that is not the last is corruption, named by line.
	data, _ := os.ReadFile(path)
	os.WriteFile(path, append([]byte(strings.Replace(string(data), `"sending"`, `"sen`, 1)), "\n"...), 0o600)
	if _, err := Read(path); err == nil || !strings.Contains(err.Error(), "line 4") {
		t.Errorf("corrupt middle line: err = %v", err)
	}
}

func TestNotAJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.jsonl")
	os.WriteFile(path, []byte(`{"id":"A","outcome":"queued"}`+"\n"), 0o600)
	if _, err := Read(path); err == nil || !strings.Contains(err.Error(), "not an mdmctl run journal") {
		t.Errorf("err = %v", err)
	}
	if _, err := Read(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("no error for a missing journal")
	}
}

// The check tells PINs apart but keeps only 12 bits: many PINs share it.
func TestPINCheck(t *testing.T) {
	salt, err := NewSalt()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := PINCheck(salt, "482913")
	b, _ := PINCheck(salt, "482913")
	if a != b || len(a) != 3 {
		t.Fatalf("PINCheck = %q, %q: want the same 3 hex digits", a, b)
	}
	other, _ := PINCheck(salt, "482914")
	salt2, _ := NewSalt()
	resalted, _ := PINCheck(salt2, "482913")
	if other == a && resalted == a {
		t.Errorf("neither another PIN nor another salt changes the check (1 in 16 million by chance)")
	}
	if _, err := PINCheck("", "482913"); err == nil {
		t.Error("no salt accepted")
	}
}

// Requests go out concurrently: every mark and outcome lands whole.
func TestConcurrentWriters(t *testing.T) {
	w, path := newJournal(t)
	var cmds []Command
	for i := range 64 {
		cmds = append(cmds, cmd(fmt.Sprintf("C%d", i), fmt.Sprintf("A%d", i), fmt.Sprintf("B%d", i)))
	}
	if err := w.Plan(cmds, nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, c := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Sending(c.UUID, noBuild); err != nil {
				t.Error(err)
			}
			for _, id := range c.IDs {
				w.Outcome(Outcome{ID: id, CommandUUID: c.UUID, Outcome: report.Queued})
			}
			if err := w.Flush(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Devices) != 128 {
		t.Fatalf("%d devices, want 128", len(st.Devices))
	}
	for _, d := range st.Devices {
		if d.Outcome != report.Queued || d.Resendable() {
			t.Errorf("%s = %+v, want queued", d.ID, *d)
		}
	}
}
