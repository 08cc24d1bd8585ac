package history

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/report"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state dir", "mdmctl", "history.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

var t0 = time.Date(2026, 12, 3, 14, 46, 0, 0, time.UTC)

func lock(device, uuid string, at time.Time) Lock {
	return Lock{Time: at, Server: "https://mdm.example.com", Kind: "nanomdm", Device: device, CommandUUID: uuid, User: "admin"}
}

func TestModes(t *testing.T) {
	s, path := openTemp(t)
	if err := s.Sending(context.Background(), []Lock{lock("D1", "U1", t0)}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{filepath.Dir(path): 0o700, path: 0o600, path + "-wal": 0o600, path + "-shm": 0o600} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s: mode %04o, want %04o", p, got, want)
		}
	}
}

func TestSendingThenRecord(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	l := lock("D1", "U1", t0)
	l.PIN, l.PINEscrow, l.Platform = PINGenerated, "/esc/pins.jsonl", "macos"
	if err := s.Sending(ctx, []Lock{l, lock("D2", "U1", t0)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Latest(ctx, l.Server, []string{"D1", "D2", "D3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["D1"].Outcome != Sending || !got["D1"].Holds() || got["D1"].PINEscrow != "/esc/pins.jsonl" {
		t.Fatalf("after Sending: %+v", got)
	}
	resp := &apple.Response{Status: "Acknowledged", CommandUUID: "U1", UDID: "D1"}
	err = s.Record(ctx, []Update{
		{Server: l.Server, CommandUUID: "U1", Device: "D1", Outcome: report.Queued, At: t0.Add(time.Second)},
		{Server: l.Server, CommandUUID: "U1", Device: "D2", Outcome: report.Failed, Error: "not enrolled", At: t0.Add(time.Second)},
		{Server: l.Server, CommandUUID: "U9", Device: "D9", Outcome: report.Queued, At: t0}, // not in the history: ignored
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Record(ctx, []Update{{Server: l.Server, CommandUUID: "U1", Device: "D1", Outcome: report.Acknowledged, Response: resp, At: t0.Add(time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	// A later queue outcome without an answer (a resume) keeps the answer.
	if err := s.Record(ctx, []Update{{Server: l.Server, CommandUUID: "U1", Device: "D1", Outcome: report.Queued, At: t0.Add(2 * time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	// Sent again under the same CommandUUID (a resume): the answer stays.
	if err := s.Sending(ctx, []Lock{lock("D1", "U1", t0.Add(3*time.Minute))}); err != nil {
		t.Fatal(err)
	}
	all, err := s.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("List: %d locks, want 2", len(all))
	}
	d1, d2 := all[0], all[1]
	if d1.Outcome != report.Acknowledged || d1.Response == nil || d1.Response.Status != "Acknowledged" ||
		!d1.AnsweredAt.Equal(t0.Add(time.Minute)) || !d1.Time.Equal(t0) {
		t.Errorf("D1 = %+v, want acknowledged with its answer", d1)
	}
	if d2.Outcome != report.Failed || d2.Error != "not enrolled" || d2.Holds() {
		t.Errorf("D2 = %+v, want failed, not holding", d2)
	}
}

// TestReferenceKept: the server's reference comes with the queue outcome
// and stays through later updates and a resend that carry none.
func TestReferenceKept(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	l := lock("D1", "U1", t0)
	if err := s.Sending(ctx, []Lock{l, lock("D2", "U1", t0)}); err != nil {
		t.Fatal(err)
	}
	err := s.Record(ctx, []Update{
		{Server: l.Server, CommandUUID: "U1", Device: "D1", Outcome: report.Queued, Reference: "jamf-1", At: t0},
		{Server: l.Server, CommandUUID: "U1", Device: "D2", Outcome: report.Queued, Reference: "jamf-2", At: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp := &apple.Response{Status: "Acknowledged", CommandUUID: "U1", UDID: "D1"}
	if err := s.Record(ctx, []Update{{Server: l.Server, CommandUUID: "U1", Device: "D1", Outcome: report.Acknowledged, Response: resp, At: t0.Add(time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Sending(ctx, []Lock{lock("D2", "U1", t0.Add(2*time.Minute))}); err != nil {
		t.Fatal(err)
	}
	all, err := s.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Reference != "jamf-1" || all[0].Outcome != report.Acknowledged || all[1].Reference != "jamf-2" {
		t.Fatalf("locks %+v, want D1 acknowledged with jamf-1, D2 with jamf-2", all)
	}
}

// TestOpensEarlierSchema: a file made before the reference column opens,
// keeps its locks, and records references from then on.
func TestOpensEarlierSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "history.db")
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = old.Exec(`CREATE TABLE locks (
		id INTEGER PRIMARY KEY, time TEXT NOT NULL, server TEXT NOT NULL, context TEXT NOT NULL DEFAULT '',
		kind TEXT NOT NULL, device TEXT NOT NULL, serial TEXT NOT NULL DEFAULT '', platform TEXT NOT NULL DEFAULT '',
		command_uuid TEXT NOT NULL, os_user TEXT NOT NULL DEFAULT '', pin TEXT NOT NULL DEFAULT '',
		pin_escrow TEXT NOT NULL DEFAULT '', outcome TEXT NOT NULL, error TEXT NOT NULL DEFAULT '',
		response TEXT NOT NULL DEFAULT '', answered_at TEXT NOT NULL DEFAULT '', updated TEXT NOT NULL,
		UNIQUE (server, command_uuid, device));
	CREATE INDEX locks_device ON locks (device, time);
	CREATE TABLE pin_reads (id INTEGER PRIMARY KEY, time TEXT NOT NULL, device TEXT NOT NULL, os_user TEXT NOT NULL DEFAULT '');
	INSERT INTO locks (time, server, kind, device, command_uuid, outcome, updated)
		VALUES ('2026-12-01T10:00:00Z', 'https://mdm.example.com', 'jamf', 'OLD', 'U0', 'queued', '2026-12-01T10:00:00Z');`)
	old.Close()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second Open finds the column there
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l := lock("NEW", "U1", t0)
	if err := s.Sending(ctx, []Lock{l}); err != nil {
		t.Fatal(err)
	}
	if err := s.Record(ctx, []Update{{Server: l.Server, CommandUUID: "U1", Device: "NEW", Outcome: report.Queued, Reference: "jamf-1", At: t0}}); err != nil {
		t.Fatal(err)
	}
	all, err := s.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Device != "OLD" || all[0].Outcome != report.Queued || all[0].Reference != "" || all[1].Reference != "jamf-1" {
		t.Fatalf("locks %+v, want OLD as it was and NEW with its reference", all)
	}
}

func TestListFilters(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	if err := s.Sending(ctx, []Lock{lock("D1", "U1", t0), lock("D2", "U2", t0.Add(time.Hour)), lock("D1", "U3", t0.Add(2*time.Hour))}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f    Filter
		want []string
	}{
		{Filter{}, []string{"U1", "U2", "U3"}},
		{Filter{Devices: []string{"D1"}}, []string{"U1", "U3"}},
		{Filter{Since: t0.Add(30 * time.Minute)}, []string{"U2", "U3"}},
		{Filter{Devices: []string{"D2"}, Since: t0.Add(90 * time.Minute)}, nil},
		{Filter{Server: "https://other.example.com"}, nil},
	} {
		got, err := s.List(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		var uuids []string
		for _, l := range got {
			uuids = append(uuids, l.CommandUUID)
		}
		if fmt.Sprint(uuids) != fmt.Sprint(tc.want) {
			t.Errorf("List(%+v) = %v, want %v", tc.f, uuids, tc.want)
		}
	}
	latest, err := s.Latest(ctx, "https://mdm.example.com", []string{"D1"})
	if err != nil || latest["D1"].CommandUUID != "U3" {
		t.Errorf("Latest D1 = %+v, %v; want U3", latest["D1"], err)
	}
	devs, err := s.Devices(ctx, "")
	if err != nil || fmt.Sprint(devs) != "[D1 D2]" {
		t.Errorf("Devices = %v, %v", devs, err)
	}
}

func TestPINReads(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	if err := s.RecordPINRead(ctx, "MAC1", "helpdesk", t0); err != nil {
		t.Fatal(err)
	}
	reads, err := s.PINReads(ctx, "MAC1")
	if err != nil || len(reads) != 1 || reads[0].User != "helpdesk" || !reads[0].Time.Equal(t0) {
		t.Fatalf("PINReads = %+v, %v", reads, err)
	}
}

// TestConcurrentConnections writes from two stores on one file at once, as
// two mdmctl runs do: every row lands, none is refused as busy.
func TestConcurrentConnections(t *testing.T) {
	ctx := context.Background()
	s1, path := openTemp(t)
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i, s := range []*Store{s1, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 50 {
				if err := s.Sending(ctx, []Lock{lock(fmt.Sprintf("S%d-D%d", i, n), "U", t0)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all, err := s1.List(ctx, Filter{})
	if err != nil || len(all) != 100 {
		t.Fatalf("%d locks, %v; want 100", len(all), err)
	}
}

// TestConcurrentProcesses runs two processes writing the same file at once.
func TestConcurrentProcesses(t *testing.T) {
	if os.Getenv("HISTORY_HELPER_PATH") != "" {
		return
	}
	_, path := openTemp(t)
	var cmds []*exec.Cmd
	for i := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$")
		cmd.Env = append(os.Environ(), "HISTORY_HELPER_PATH="+path, "HISTORY_HELPER_TAG="+strconv.Itoa(i))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("writer: %v", err)
		}
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	all, err := s.List(context.Background(), Filter{})
	if err != nil || len(all) != 2*helperWrites {
		t.Fatalf("%d locks, %v; want %d", len(all), err, 2*helperWrites)
	}
}

const helperWrites = 40

// TestHelperWriter is the child of TestConcurrentProcesses.
func TestHelperWriter(t *testing.T) {
	path := os.Getenv("HISTORY_HELPER_PATH")
	if path == "" {
		t.Skip("only as a child of TestConcurrentProcesses")
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tag := os.Getenv("HISTORY_HELPER_TAG")
	for n := range helperWrites {
		if err := s.Sending(context.Background(), []Lock{lock(fmt.Sprintf("P%s-D%d", tag, n), "U", t0)}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOpenFailsClearly: a history that cannot be created is an error
// naming the file (a lock run then refuses to start).
func TestOpenFailsClearly(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(notDir, "mdmctl", "history.db")
	_, err := Open(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open under a file: %v, want an error naming %s", err, path)
	}
}

func TestLatestOf(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	escrowed := lock("MAC-1", "U1", t0)
	escrowed.Serial, escrowed.PINEscrow = "C02SERIAL", "/secure/pins.jsonl"
	later := lock("MAC-1", "U2", t0.Add(time.Hour)) // no PIN escrowed
	if err := s.Sending(ctx, []Lock{escrowed, later}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"MAC-1", "C02SERIAL"} {
		l, found, err := s.LatestOf(ctx, key)
		if err != nil || !found || l.Device != "MAC-1" || l.CommandUUID != "U1" || l.PINEscrow != "/secure/pins.jsonl" {
			t.Errorf("LatestOf(%s) = %+v, %v, %v: want the escrowed lock U1 of MAC-1", key, l, found, err)
		}
	}
	if _, found, err := s.LatestOf(ctx, "NOPE"); found || err != nil {
		t.Errorf("unknown key: found %v, %v", found, err)
	}
}
