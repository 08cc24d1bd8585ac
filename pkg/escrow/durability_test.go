package escrow

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testTime = time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)

// readRecords parses every line of the escrow file at path, failing t on a
// line that is not one whole record.
func readRecords(t *testing.T, path string) []Record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Fatalf("escrow file ends in a torn record: %q", tail(data))
	}
	var recs []Record
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %d is not a record (%v): %q", n, err, sc.Text())
		}
		recs = append(recs, r)
	}
	return recs
}

func tail(b []byte) []byte {
	if len(b) > 80 {
		return b[len(b)-80:]
	}
	return b
}

func TestOpenRefusesASymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "pins.jsonl")
	if err := os.Symlink(target, link); err != nil {
		t.Skip("no symlinks here:", err)
	}
	e, err := Open(link)
	if err == nil {
		e.Close()
		t.Fatal("Open followed a symlink at the escrow path")
	}
	if !strings.Contains(err.Error(), link) || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("error %q does not name the path and say why", err)
	}
	// A dangling link is refused too, and nothing is created at its target.
	dangling := filepath.Join(dir, "dangling.jsonl")
	if err := os.Symlink(filepath.Join(dir, "nothing-here"), dangling); err != nil {
		t.Fatal(err)
	}
	if e, err := Open(dangling); err == nil {
		e.Close()
		t.Error("Open followed a dangling symlink")
	}
	if _, err := os.Lstat(filepath.Join(dir, "nothing-here")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the link's target was created: %v", err)
	}
}

func TestOpenSyncsTheFolderOfANewFile(t *testing.T) {
	var synced []string
	saved := syncDir
	syncDir = func(dir string) error { synced = append(synced, dir); return saved(dir) }
	t.Cleanup(func() { syncDir = saved })

	dir := t.TempDir()
	path := filepath.Join(dir, "pins.jsonl")
	e, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	if len(synced) != 1 || synced[0] != dir {
		t.Fatalf("folders synced on create: %q, want [%q]", synced, dir)
	}
	// An existing file's directory entry is already durable.
	e, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	if len(synced) != 1 {
		t.Errorf("folder synced again when reopening: %q", synced)
	}
}

func TestOpenRepairsATornLastRecord(t *testing.T) {
	whole := `{"id":"A","command_uuid":"U1","pin":"012345","time":"2026-12-03T06:00:00Z"}` + "\n"
	for _, tt := range []struct {
		name, content string
		want          []string // IDs kept before the new record
	}{
		// A crash or a full disk cut the record short: it is dropped (its
		// command was never sent, since Append had not returned).
		{"torn record", whole + `{"id":"B","command_uu`, []string{"A"}},
		{"only a torn record", `{"id":"B","pi`, nil},
		// A whole record that lost only its newline (edited by hand) is kept.
		{"whole record without newline", strings.TrimSuffix(whole, "\n"), []string{"A"}},
		{"intact file", whole, []string{"A"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "pins.jsonl")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			e, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Append(Record{ID: "C", CommandUUID: "U3", PIN: "111111", Time: testTime}); err != nil {
				t.Fatal(err)
			}
			e.Close()
			var ids []string
			for _, r := range readRecords(t, path) {
				ids = append(ids, r.ID)
			}
			if want := strings.Join(append(tt.want, "C"), ","); strings.Join(ids, ",") != want {
				t.Errorf("records %v, want %s", ids, want)
			}
		})
	}
}
