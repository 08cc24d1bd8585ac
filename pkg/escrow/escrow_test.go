package escrow

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAppendIsPrivateAndReadable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pins.jsonl")
	e, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	if err := e.Append(Record{ID: "A", CommandUUID: "U1", PIN: "012345", Time: now}, Record{ID: "B", CommandUUID: "U2", PIN: "999999", Time: now}); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopening appends; it never truncates what an earlier run escrowed.
	e, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Append(Record{ID: "C", CommandUUID: "U3", PIN: "111111", Time: now}); err != nil {
		t.Fatal(err)
	}
	e.Close()
	info, _ := os.Stat(path)
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", info.Mode().Perm())
	}
	f, _ := os.Open(path)
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID+":"+r.PIN)
	}
	if strings.Join(ids, ",") != "A:012345,B:999999,C:111111" {
		t.Errorf("records %v", ids)
	}
}

func TestOpenRefusesAnOpenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pins.jsonl")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "readable by group or others") {
		t.Errorf("Open of a 0644 file: %v", err)
	}
}

func TestGeneratePIN(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		pin, err := GeneratePIN()
		if err != nil {
			t.Fatal(err)
		}
		if len(pin) != 6 || strings.Trim(pin, "0123456789") != "" {
			t.Fatalf("PIN %q is not six digits", pin)
		}
		seen[pin] = true
	}
	// A million values: a thousand draws nearly never repeat.
	if len(seen) < 990 {
		t.Errorf("only %d distinct PINs in 1000 draws", len(seen))
	}
}

// A resume reads the PINs back; a torn last line (a crash mid-write) is
// skipped, a broken line before it is an error that shows no PIN.
func TestPINsReadBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pins.jsonl")
	e, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Append(Record{ID: "MAC-1", CommandUUID: "U1", PIN: "123456"}, Record{ID: "MAC-2", CommandUUID: "U2", PIN: "654321"}); err != nil {
		t.Fatal(err)
	}
	e.Close()
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"id":"MAC-3","command_uuid":"U3","pin":"11`)
	f.Close()
	pins, err := PINs(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(pins) != 2 || pins[[2]string{"U1", "MAC-1"}] != "123456" || pins[[2]string{"U2", "MAC-2"}] != "654321" {
		t.Errorf("PINs = %v", pins)
	}
	os.WriteFile(path, []byte("{\"pin\":\"999999\n{}\n"), 0o600)
	if _, err := PINs(path); err == nil || strings.Contains(err.Error(), "999999") {
		t.Errorf("broken line: err = %v", err)
	}
}
