package escrow

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

func newIdentity(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// writeSealed escrows recs encrypted to id into a new file and returns its path.
func writeSealed(t *testing.T, id *age.X25519Identity, recs ...Record) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pins.jsonl")
	e, err := Open(path, id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Append(recs...); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSealedEscrowRoundTrip(t *testing.T) {
	id := newIdentity(t)
	path := writeSealed(t, id,
		Record{ID: "MAC-1", CommandUUID: "U1", PIN: "482917", Time: testTime},
		Record{ID: "MAC-2", CommandUUID: "U2", PIN: "730561", Time: testTime})
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, pin := range []string{"482917", "730561"} {
		if bytes.Contains(data, []byte(pin)) {
			t.Errorf("the encrypted escrow holds PIN %s in clear:\n%s", pin, data)
		}
	}
	if bytes.Contains(data, []byte(`"pin":`)) {
		t.Errorf("an encrypted record has a clear pin field:\n%s", data)
	}
	// What a reader needs to find a record stays in clear.
	recs := readRecords(t, path)
	if len(recs) != 2 || recs[0].ID != "MAC-1" || recs[0].CommandUUID != "U1" ||
		!recs[0].Time.Equal(testTime) || !recs[0].Sealed() || recs[0].PIN != "" {
		t.Fatalf("records read back: %+v", recs)
	}
	pin, err := recs[0].Unseal([]age.Identity{id})
	if err != nil || pin != "482917" {
		t.Errorf("Unseal = %q, %v", pin, err)
	}
	pins, err := PINs(path, id)
	if err != nil {
		t.Fatal(err)
	}
	if pins[[2]string{"U1", "MAC-1"}] != "482917" || pins[[2]string{"U2", "MAC-2"}] != "730561" {
		t.Errorf("PINs = %v", pins)
	}
}

func TestSealedPINNeedsTheRightIdentity(t *testing.T) {
	id := newIdentity(t)
	path := writeSealed(t, id, Record{ID: "MAC-1", CommandUUID: "U1", PIN: "482917", Time: testTime})
	for _, tt := range []struct {
		name string
		ids  []age.Identity
		want error
	}{
		{"no identity", nil, ErrNoIdentity},
		{"another key", []age.Identity{newIdentity(t)}, ErrWrongIdentity},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := PINs(path, tt.ids...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("PINs: %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), "MAC-1") || !strings.Contains(err.Error(), "U1") || strings.Contains(err.Error(), "482917") {
				t.Errorf("error %q must name the device and command, never the PIN", err)
			}
		})
	}
	// A file of several identities opens it when one of them fits.
	if _, err := PINs(path, newIdentity(t), id); err != nil {
		t.Errorf("PINs with the right identity among others: %v", err)
	}
}

// A crash or full disk mid-write tears an encrypted record as it tears a
// clear one: the next Open cuts it off and the next record lands whole.
func TestOpenRepairsATornSealedRecord(t *testing.T) {
	id := newIdentity(t)
	path := writeSealed(t, id, Record{ID: "A", CommandUUID: "U1", PIN: "482917", Time: testTime})
	whole, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	second := writeSealed(t, id, Record{ID: "TORN", CommandUUID: "U2", PIN: "111111", Time: testTime})
	torn, err := os.ReadFile(second)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(whole, torn[:len(torn)/2]...), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := Open(path, id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Append(Record{ID: "C", CommandUUID: "U3", PIN: "222222", Time: testTime}); err != nil {
		t.Fatal(err)
	}
	e.Close()
	recs := readRecords(t, path)
	if len(recs) != 2 || recs[0].ID != "A" || recs[1].ID != "C" {
		t.Fatalf("records after repair: %+v", recs)
	}
	if pin, err := recs[1].Unseal([]age.Identity{id}); err != nil || pin != "222222" {
		t.Errorf("record after the repair: %q, %v", pin, err)
	}
}

func TestOpenRefusesMixingClearAndSealed(t *testing.T) {
	id := newIdentity(t)
	sealed := writeSealed(t, id, Record{ID: "A", CommandUUID: "U1", PIN: "482917", Time: testTime})
	if e, err := Open(sealed); err == nil || !strings.Contains(err.Error(), "holds encrypted PINs") {
		t.Errorf("clear records into an encrypted escrow: %v", err)
		if e != nil {
			e.Close()
		}
	}
	clear := filepath.Join(t.TempDir(), "pins.jsonl")
	e, err := Open(clear)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Append(Record{ID: "A", CommandUUID: "U1", PIN: "482917", Time: testTime}); err != nil {
		t.Fatal(err)
	}
	e.Close()
	if e, err := Open(clear, id.Recipient()); err == nil || !strings.Contains(err.Error(), "holds PINs in clear") {
		t.Errorf("encrypted records into a clear escrow: %v", err)
		if e != nil {
			e.Close()
		}
	}
}

func TestParseRecipients(t *testing.T) {
	a, b := newIdentity(t), newIdentity(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "recipients.txt")
	if err := os.WriteFile(file, []byte("# help desk\n"+a.Recipient().String()+"\n\n"+b.Recipient().String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		spec string
		n    int
		err  string
	}{
		{a.Recipient().String(), 1, ""},
		{file, 2, ""},
		{"age1notakey", 0, `PIN escrow recipient "age1notakey" is not a valid age public key`},
		{filepath.Join(dir, "missing"), 0, "is neither an age public key (age1...) nor a readable recipients file: no such file or directory"},
		{filepath.Join(dir), 0, "neither an age public key"},
	} {
		recs, err := ParseRecipients(tt.spec)
		switch {
		case tt.err == "" && (err != nil || len(recs) != tt.n):
			t.Errorf("ParseRecipients(%q) = %d recipients, %v; want %d", tt.spec, len(recs), err, tt.n)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ParseRecipients(%q) error %v, want %q", tt.spec, err, tt.err)
		}
	}
}

func TestReadIdentitiesRefusesAnOpenFile(t *testing.T) {
	id := newIdentity(t)
	path := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(path, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ids, err := ReadIdentities(path)
	if err != nil || len(ids) != 1 {
		t.Fatalf("ReadIdentities = %d, %v", len(ids), err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadIdentities(path); err == nil || !strings.Contains(err.Error(), "readable by group or others") {
		t.Errorf("ReadIdentities of a 0640 file: %v", err)
	}
	// A file that is not an identity file: the error never quotes its lines.
	if err := os.WriteFile(path, []byte("not-a-secret-but-could-be\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadIdentities(path); err == nil || strings.Contains(err.Error(), "not-a-secret") {
		t.Errorf("ReadIdentities of a bad file: %v", err)
	}
}
