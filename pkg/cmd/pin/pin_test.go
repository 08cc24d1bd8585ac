package pin

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/mdmctl/mdmctl/pkg/escrow"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/iostreams"
)

var (
	t0  = time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	now = time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC)
)

// writeEscrow escrows recs, through escrow.Open as a lock does.
func writeEscrow(t *testing.T, recipients []age.Recipient, recs ...escrow.Record) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pins.jsonl")
	e, err := escrow.Open(path, recipients...)
	if err == nil {
		err = errors.Join(e.Append(recs...), e.Close())
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

type read struct {
	device, user string
	at           time.Time
}

// runPin runs the pin command on opts, with a recorder of reads.
func runPin(t *testing.T, opts *Options) (stdout, stderr string, reads []read, err error) {
	t.Helper()
	streams, _, out, errOut := iostreams.Test()
	opts.IO = streams
	opts.Now = func() time.Time { return now }
	opts.User = func() string { return "helpdesk-ana" }
	if opts.RecordRead == nil {
		opts.RecordRead = func(_ context.Context, device, user string, at time.Time) error {
			reads = append(reads, read{device, user, at})
			return nil
		}
	}
	err = Run(context.Background(), opts)
	return out.String(), errOut.String(), reads, err
}

func TestPinPrintsOnlyThePINAndRecordsTheRead(t *testing.T) {
	path := writeEscrow(t, nil,
		escrow.Record{ID: "MAC-1", CommandUUID: "U1", PIN: "482917", Time: t0},
		escrow.Record{ID: "MAC-2", CommandUUID: "U1", PIN: "730561", Time: t0})
	stdout, stderr, reads, err := runPin(t, &Options{Escrow: path, Device: "MAC-1"})
	if err != nil {
		t.Fatal(err)
	}
	if stdout != "482917\n" || stderr != "" {
		t.Errorf("stdout %q, stderr %q; want only the PIN", stdout, stderr)
	}
	if len(reads) != 1 || reads[0] != (read{"MAC-1", "helpdesk-ana", now}) {
		t.Errorf("reads recorded %+v, want MAC-1 by helpdesk-ana at %s", reads, now)
	}
}

// The escrow is written before each lock is sent: the latest record may be
// a lock that never landed, so the others are listed on stderr.
func TestPinOfSeveralLocks(t *testing.T) {
	path := writeEscrow(t, nil,
		escrow.Record{ID: "MAC-1", CommandUUID: "U1", PIN: "111111", Time: t0},
		escrow.Record{ID: "MAC-1", CommandUUID: "U2", PIN: "222222", Time: t0.Add(time.Hour)},
		// A resume escrows a resent command's PIN again: still one lock.
		escrow.Record{ID: "MAC-1", CommandUUID: "U2", PIN: "222222", Time: t0.Add(2 * time.Hour)})
	stdout, stderr, _, err := runPin(t, &Options{Escrow: path, Device: "MAC-1"})
	if err != nil {
		t.Fatal(err)
	}
	if stdout != "222222\n" {
		t.Errorf("stdout %q, want the latest lock's PIN alone", stdout)
	}
	for _, want := range []string{"2 PINs are escrowed for MAC-1; printed the one of command U2 (2026-12-01T08:00:00Z)",
		"2026-12-01T06:00:00Z  command U1  (mdmctl pin --command-uuid U1 MAC-1)"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "111111") || strings.Contains(stderr, "222222") {
		t.Errorf("a PIN on stderr:\n%s", stderr)
	}
	stdout, _, _, err = runPin(t, &Options{Escrow: path, Device: "MAC-1", CommandUUID: "U1"})
	if err != nil || stdout != "111111\n" {
		t.Errorf("--command-uuid U1: %q, %v", stdout, err)
	}
	_, _, _, err = runPin(t, &Options{Escrow: path, Device: "MAC-1", CommandUUID: "U9"})
	if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), `command "U9"`) {
		t.Errorf("--command-uuid U9: %v", err)
	}
}

func TestPinRefusals(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := age.GenerateX25519Identity()
	keyFile := func(id *age.X25519Identity, mode os.FileMode) string {
		p := filepath.Join(t.TempDir(), "key.txt")
		if err := os.WriteFile(p, []byte(id.String()+"\n"), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	clear := writeEscrow(t, nil, escrow.Record{ID: "MAC-1", CommandUUID: "U1", PIN: "482917", Time: t0})
	sealed := writeEscrow(t, []age.Recipient{id.Recipient()}, escrow.Record{ID: "MAC-1", CommandUUID: "U1", PIN: "482917", Time: t0})
	recordFails := func(context.Context, string, string, time.Time) error { return errors.New("history is read-only") }
	for _, tt := range []struct {
		name string
		opts Options
		code int
		want string
	}{
		{"unknown device", Options{Escrow: clear, Device: "MAC-9"}, 2, `no PIN escrowed for "MAC-9" in ` + clear},
		{"no escrow flag", Options{Device: "MAC-1"}, 2, "needs --pin-escrow FILE"},
		{"missing escrow", Options{Escrow: clear + ".none", Device: "MAC-1"}, 2, "no such file"},
		{"encrypted without identity", Options{Escrow: sealed, Device: "MAC-1"}, 2, "is encrypted: give --identity FILE"},
		{"wrong identity", Options{Escrow: sealed, Device: "MAC-1", Identity: keyFile(other, 0o600)}, 2, "does not open the PIN of MAC-1"},
		{"identity open to others", Options{Escrow: sealed, Device: "MAC-1", Identity: keyFile(id, 0o644)}, 2, "readable by group or others"},
		{"read not recorded", Options{Escrow: clear, Device: "MAC-1", RecordRead: recordFails}, 1, "the PIN is shown only once the read is recorded"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			stdout, _, _, err := runPin(t, &opts)
			if got := exitcode.Of(err); got != tt.code || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("exit %d, error %v; want %d, %q", got, err, tt.code, tt.want)
			}
			if stdout != "" || (err != nil && strings.Contains(err.Error(), "482917")) {
				t.Errorf("the PIN leaked: stdout %q, error %v", stdout, err)
			}
		})
	}
	stdout, _, _, err := runPin(t, &Options{Escrow: sealed, Device: "MAC-1", Identity: keyFile(id, 0o600)})
	if err != nil || stdout != "482917\n" {
		t.Errorf("encrypted with its identity: %q, %v", stdout, err)
	}
}
