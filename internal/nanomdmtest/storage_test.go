package nanomdmtest

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/simdevice"
)

func lockPayload(t *testing.T, uuid string) []byte {
	t.Helper()
	p, err := apple.DeviceLock{Message: "Return to IT"}.Payload(uuid)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Every backend enrolls simulated devices and delivers a queued lock once.
func TestDeviceLockOnEveryStorage(t *testing.T) {
	for _, st := range Storages() {
		t.Run(string(st), func(t *testing.T) {
			s := StartT(t, Options{Storage: st})
			if s.Storage != st {
				t.Fatalf("Server.Storage = %q", s.Storage)
			}
			d := s.NewDevice(t, "STORE-1", simdevice.Acknowledge, mac)
			payload := lockPayload(t, "STORE-CMD-1")
			if _, err := s.Enqueue(testContext(t), payload, "STORE-1"); err != nil {
				t.Fatal(err)
			}
			got := checkIn(t, d)
			if len(got) != 1 || !bytes.Equal(got[0].Raw, payload) || got[0].Answer.Status != apple.StatusAcknowledged {
				t.Fatalf("device received %d commands; want the queued plist once, acknowledged", len(got))
			}
			if again := checkIn(t, d); len(again) != 0 {
				t.Errorf("after Acknowledged the server sent %d more commands", len(again))
			}
		})
	}
}

func TestFileKVStoresInItsFolder(t *testing.T) {
	s := StartT(t, Options{Storage: FileKV})
	s.NewDevice(t, "KV-1", simdevice.Acknowledge, mac)
	if _, err := s.Query("SELECT 1"); err == nil {
		t.Error("Query answered without a database")
	}
	dsn := s.cmd.Args[len(s.cmd.Args)-1]
	if filepath.Base(dsn) != "dbkv" {
		t.Fatalf("nanomdm ran with %q", s.cmd.Args)
	}
	found := false
	_ = filepath.WalkDir(dsn, func(path string, e os.DirEntry, err error) error {
		found = found || (err == nil && !e.IsDir())
		return nil
	})
	if !found {
		t.Errorf("no files under %s after an enrollment", dsn)
	}
}

// Authenticate and TokenUpdate from a simulated device land in NanoMDM's
// own tables, as a real device's do; a lock is a row in its queue.
func TestPgSQLStoresWhatDevicesSend(t *testing.T) {
	s := StartT(t, Options{Storage: PgSQL})
	d := s.NewDevice(t, "PG-1", simdevice.Acknowledge, mac)
	query := func(sql string) string {
		t.Helper()
		out, err := s.Query(sql)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := query("SELECT id, serial_number, token_update IS NOT NULL FROM devices"); got != "PG-1|SIMMAC0002|t" {
		t.Errorf("devices: %q", got)
	}
	if got := query("SELECT id, device_id, type, enabled, token_hex <> '' FROM enrollments"); got != "PG-1|PG-1|Device|t|t" {
		t.Errorf("enrollments: %q", got)
	}
	if _, err := s.Enqueue(testContext(t), lockPayload(t, "PG-CMD-1"), "PG-1"); err != nil {
		t.Fatal(err)
	}
	if got := query("SELECT q.id, c.command_uuid, c.request_type FROM enrollment_queue q JOIN commands c USING (command_uuid)"); got != "PG-1|PG-CMD-1|DeviceLock" {
		t.Errorf("enrollment_queue: %q", got)
	}
	checkIn(t, d)
	if got := query("SELECT id, command_uuid, status FROM command_results"); got != "PG-1|PG-CMD-1|Acknowledged" {
		t.Errorf("command_results: %q", got)
	}
}

// The enqueue answers mdmctl must read differ by backend (mdm-servers.md,
// "Storage backends change the enqueue's answers"); these pin them on the
// real servers.
func TestEnqueueAnswersByStorage(t *testing.T) {
	type answers struct {
		staleStatus int    // one enrolled and one never-enrolled ID
		staleError  string // its top-level command_error
		staleQueued int    // rows the enrolled device got
		dupError    string // a reused CommandUUID
	}
	want := map[Storage]answers{
		InMem:  {http.StatusOK, "", 1, "command already exists: ANS-DUP"},
		FileKV: {http.StatusOK, "", 1, "command already exists: ANS-DUP"},
		PgSQL: {http.StatusInternalServerError,
			`pq: insert or update on table "enrollment_queue" violates foreign key constraint "enrollment_queue_id_fkey"`, 0,
			`pq: duplicate key value violates unique constraint "commands_pkey"`},
	}
	for _, st := range Storages() {
		t.Run(string(st), func(t *testing.T) {
			w := want[st]
			s := StartT(t, Options{Storage: st})
			d := s.NewDevice(t, "ANS-1", simdevice.Acknowledge, mac)

			status, res := rawEnqueue(t, s, s.APIKey, "?nopush=1", lockPayload(t, "ANS-STALE"), "ANS-1,NEVER-ENROLLED")
			if msg, _ := res["command_error"].(string); status != w.staleStatus || msg != w.staleError {
				t.Errorf("with a stale ID: HTTP %d %v; want %d %q", status, res, w.staleStatus, w.staleError)
			}
			if got := checkIn(t, d); len(got) != w.staleQueued {
				t.Errorf("with a stale ID the enrolled device got %d commands, want %d", len(got), w.staleQueued)
			}
			if st == PgSQL {
				// The rolled-back CommandUUID left no trace: it can be used again.
				if _, err := s.Enqueue(testContext(t), lockPayload(t, "ANS-STALE"), "ANS-1"); err != nil {
					t.Errorf("reusing the rolled-back UUID: %v", err)
				}
				checkIn(t, d)
			}

			if _, err := s.Enqueue(testContext(t), lockPayload(t, "ANS-DUP"), "ANS-1"); err != nil {
				t.Fatal(err)
			}
			status, res = rawEnqueue(t, s, s.APIKey, "?nopush=1", lockPayload(t, "ANS-DUP"), "ANS-1")
			if msg, _ := res["command_error"].(string); status != http.StatusInternalServerError || !strings.Contains(msg, w.dupError) {
				t.Errorf("a reused CommandUUID: HTTP %d %v; want 500 %q", status, res, w.dupError)
			}
		})
	}
}

func TestCloneEnrollmentIsQueuedLikeTheOriginal(t *testing.T) {
	s := StartT(t, Options{Storage: PgSQL})
	s.NewDevice(t, "REAL-1", simdevice.Acknowledge, mac)
	if err := s.CloneEnrollment("REAL-1", []string{"CLONE-1", "CLONE-'2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enqueue(testContext(t), lockPayload(t, "CLONE-CMD"), "REAL-1", "CLONE-1", "CLONE-'2"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Query("SELECT id FROM enrollment_queue WHERE command_uuid = 'CLONE-CMD' ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	if want := "CLONE-'2\nCLONE-1\nREAL-1"; got != want {
		t.Errorf("queued for %q, want %q", got, want)
	}
	if err := s.CloneEnrollment("NEVER-ENROLLED", []string{"CLONE-3"}); err == nil {
		t.Error("cloning an enrollment that does not exist succeeded")
	}
}
