// Package journal keeps the record a lock run can be resumed from: which
// command each device got, under which CommandUUID, whether its request went
// out, and what became of it.
//
// A journal is a JSON Lines file, mode 0600, one record a line: a header,
// the planned commands (with the device outcomes known before sending, such
// as guard refusals), a "sending" mark written and fsynced before each
// request goes out (requests going out together share one fsync), and the
// device outcomes as they are known. Outcomes are
// written after each request and fsynced with the next mark or at Close: a
// crash can lose the last few, and then the devices read back as sent with
// no outcome, which a resume treats as "may have landed", the safe side.
// A crash mid-write leaves a torn last line; Read ignores it and Append cuts
// it off before appending.
//
// No PIN is ever written. A generated PIN lives in the escrow file. For a
// PIN the admin gave, the journal keeps a PINCheck: PBKDF2-SHA256 of the PIN
// with the run's random salt, truncated to 12 bits. A resume compares the
// PIN it is given against it: a wrong PIN is caught 4095 times in 4096, and
// someone holding the journal who tries all 10^6 six-digit PINs (at
// pinCheckIterations each) is left with about 244 equally likely ones, not
// the PIN: a full-length hash of six digits would be found in seconds. The
// rest of the command is checked by Digest, the SHA-256 of its plist with the
// PIN redacted, so the resent command is byte for byte the one first sent.
package journal

import (
	"bufio"
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mdmctl/mdmctl/pkg/report"
)

// Format names the journal's format in its header.
const Format = "mdmctl-lock-journal/1"

// PIN sources a command's lock can record.
const (
	PINGenerated = "generated" // in the escrow file, one per Mac
	PINGiven     = "given"     // by --pin, --pin-file, MDMCTL_PIN or a CSV column: only its PINCheck is kept
)

// Header describes the run.
type Header struct {
	Format  string    `json:"format"`
	Time    time.Time `json:"time"`
	Server  string    `json:"server"`
	Kind    string    `json:"kind"`
	Context string    `json:"context,omitempty"`
	// Lock holds the flags' lock values (a CSV row may override them per
	// command); never a PIN.
	Lock   Lock `json:"lock"`
	NoPush bool `json:"no_push,omitempty"`
	// PINEscrow is the absolute path of the escrow file of generated PINs.
	PINEscrow string `json:"pin_escrow,omitempty"`
	// PINSalt salts every PINCheck of the run (hex).
	PINSalt string `json:"pin_salt,omitempty"`
}

// Lock is a command's lock values without the PIN itself.
type Lock struct {
	Message       string `json:"message,omitempty"`
	Phone         string `json:"phone,omitempty"`
	NetworkTether bool   `json:"network_tether,omitempty"`
	PIN           string `json:"pin,omitempty"` // "", PINGenerated or PINGiven
	PINCheck      string `json:"pin_check,omitempty"`
}

// Command is one command as planned: enough to rebuild its plist.
type Command struct {
	UUID   string   `json:"uuid"`
	IDs    []string `json:"ids"`
	Lock   Lock     `json:"lock"`
	Digest string   `json:"digest"`
}

// Outcome is what became of one device.
type Outcome struct {
	ID          string
	CommandUUID string
	Outcome     report.Outcome
	Error       string
	NotReached  bool
}

// record is one line; exactly one field is set.
type record struct {
	Header  *Header  `json:"header,omitempty"`
	Command *Command `json:"command,omitempty"`
	Sending string   `json:"sending,omitempty"`
	Result  *result  `json:"result,omitempty"`
}

// result records the devices of one command that share an outcome: one
// record per request in the common case, not one per device.
type result struct {
	CommandUUID string         `json:"uuid,omitempty"`
	Outcome     report.Outcome `json:"outcome"`
	Error       string         `json:"error,omitempty"`
	NotReached  bool           `json:"not_reached,omitempty"`
	IDs         []string       `json:"ids"`
}

// groupKey is what the devices of one result record share.
type groupKey struct {
	uuid       string
	outcome    report.Outcome
	err        string
	notReached bool
}

// Digest is the SHA-256 of a command plist whose PIN is already redacted.
func Digest(redactedPayload []byte) string {
	sum := sha256.Sum256(redactedPayload)
	return hex.EncodeToString(sum[:])
}

// pinCheckIterations makes each guess at a PINCheck cost milliseconds.
const pinCheckIterations = 50_000

// NewSalt returns a random salt for a run's PIN checks.
func NewSalt() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// PINCheck is the 12-bit check of pin under salt (see the package doc).
func PINCheck(salt, pin string) (string, error) {
	s, err := hex.DecodeString(salt)
	if err != nil || len(s) == 0 {
		return "", fmt.Errorf("journal has no valid PIN salt")
	}
	key, err := pbkdf2.Key(sha256.New, pin, s, pinCheckIterations, 2)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(key)[:3], nil
}

// Writer appends to a journal. Its methods may be called concurrently.
type Writer struct {
	path string
	mu   sync.Mutex
	f    *os.File
	// known holds the UUIDs of commands already recorded, so a mark for
	// one is small; a command first seen at Sending (a split batch) is
	// recorded in full.
	known map[string]bool
	// pending holds outcomes not yet written, grouped by command and outcome.
	pending []*result
	index   map[groupKey]*result
	werr    error
	// written counts writes; synced, under smu, the writes known on disk:
	// requests going out together share one fsync (group commit).
	written uint64
	smu     sync.Mutex
	synced  uint64
}

// Path is the journal's file.
func (w *Writer) Path() string { return w.path }

// DefaultPath is a new journal's path under stateHome (XDG_STATE_HOME, or
// ~/.local/state): runs/<UTC time>-<tag>.jsonl, sorting by time.
func DefaultPath(stateHome string, now time.Time, tag string) string {
	return filepath.Join(stateHome, "mdmctl", "runs", now.UTC().Format("20060102T150405.000Z")+"-"+tag+".jsonl")
}

// Create makes a new journal at path (its folder 0700 when missing, the
// file 0600; an existing file is refused) and writes h, unsynced: Plan
// syncs it.
func Create(path string, h Header) (*Writer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("run journal %s: %v", path, unwrapPath(err))
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("run journal %s: %v", path, unwrapPath(err))
	}
	w := newWriter(path, f)
	h.Format = Format
	if err := w.write(record{Header: &h}); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

func newWriter(path string, f *os.File) *Writer {
	return &Writer{path: path, f: f, known: map[string]bool{}, index: map[groupKey]*result{}}
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Plan records every command of the run and the outcomes already known
// (devices the guard refused, invalid lines): the journal then names every
// device of the run. The first Sending syncs it.
func (w *Writer) Plan(cmds []Command, settled []Outcome) error {
	w.mu.Lock()
	var buf bytes.Buffer
	for i := range cmds {
		w.known[cmds[i].UUID] = true
		if err := appendRecord(&buf, record{Command: &cmds[i]}); err != nil {
			w.mu.Unlock()
			return err
		}
	}
	for _, o := range settled {
		w.add(o)
	}
	err := w.writeLocked(buf.Bytes())
	w.mu.Unlock()
	return err
}

// Sending records that the request of command uuid is about to go out,
// with the outcomes known so far, and syncs before returning: a journal
// never lacks a request that may have reached the server. A command not in
// the plan (a batch split after the plan) is recorded in full from build.
func (w *Writer) Sending(uuid string, build func() (Command, error)) error {
	w.mu.Lock()
	var buf bytes.Buffer
	if !w.known[uuid] {
		c, err := build()
		if err == nil {
			err = appendRecord(&buf, record{Command: &c})
		}
		if err != nil {
			w.mu.Unlock()
			return err
		}
		w.known[uuid] = true
	}
	if err := appendRecord(&buf, record{Sending: uuid}); err != nil {
		w.mu.Unlock()
		return err
	}
	err := w.writeLocked(buf.Bytes())
	seq := w.written
	w.mu.Unlock()
	if err != nil {
		return err
	}
	return w.syncTo(seq)
}

// Outcome notes one device's outcome; Flush writes it.
func (w *Writer) Outcome(o Outcome) {
	w.mu.Lock()
	w.add(o)
	w.mu.Unlock()
}

func (w *Writer) add(o Outcome) {
	k := groupKey{o.CommandUUID, o.Outcome, o.Error, o.NotReached}
	g := w.index[k]
	if g == nil {
		g = &result{CommandUUID: o.CommandUUID, Outcome: o.Outcome, Error: o.Error, NotReached: o.NotReached}
		w.index[k] = g
		w.pending = append(w.pending, g)
	}
	g.IDs = append(g.IDs, o.ID)
}

// Flush writes the outcomes noted since the last write, unsynced (the next
// Sending or Close syncs them).
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writeLocked(nil)
}

// Err is the first write error, if any: a journal that could not be
// written cannot be trusted for a resume.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.werr
}

// Close writes what is pending, syncs and closes.
func (w *Writer) Close() error {
	err := w.Flush()
	w.mu.Lock()
	seq := w.written
	w.mu.Unlock()
	if serr := w.syncTo(seq); err == nil {
		err = serr
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (w *Writer) write(r record) error {
	var buf bytes.Buffer
	if err := appendRecord(&buf, r); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writeLocked(buf.Bytes())
}

// writeLocked writes the pending outcomes, then more, in one write.
func (w *Writer) writeLocked(more []byte) error {
	var buf bytes.Buffer
	for _, g := range w.pending {
		if err := appendRecord(&buf, record{Result: g}); err != nil {
			return err
		}
	}
	w.pending = w.pending[:0]
	clear(w.index)
	buf.Write(more)
	if buf.Len() == 0 {
		return w.werr
	}
	if _, err := w.f.Write(buf.Bytes()); err != nil && w.werr == nil {
		w.werr = fmt.Errorf("writing run journal %s: %v", w.path, unwrapPath(err))
	}
	w.written++
	return w.werr
}

// syncTo returns once write seq is on disk. One fsync covers every write
// before it, so a caller whose write an fsync already covered returns
// without one of its own.
func (w *Writer) syncTo(seq uint64) error {
	w.smu.Lock()
	defer w.smu.Unlock()
	if w.synced >= seq {
		return nil
	}
	w.mu.Lock()
	target := w.written
	w.mu.Unlock()
	if err := w.f.Sync(); err != nil {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.werr == nil {
			w.werr = fmt.Errorf("syncing run journal %s: %v", w.path, unwrapPath(err))
		}
		return w.werr
	}
	w.synced = target
	return nil
}

func appendRecord(buf *bytes.Buffer, r record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	buf.Write(line)
	buf.WriteByte('\n')
	return nil
}

// Append opens an existing journal to continue it (a resume): it reads the
// state, cuts off a torn last line so new records start on a line of their
// own, and returns a writer that appends.
func Append(path string) (*Writer, *State, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("run journal %s: %v", path, unwrapPath(err))
	}
	st, whole, err := read(f, path)
	if err == nil {
		err = f.Truncate(whole)
	}
	if err == nil {
		_, err = f.Seek(whole, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	w := newWriter(path, f)
	for u := range st.Commands {
		w.known[u] = true
	}
	return w, st, nil
}

// Read reads a journal's state.
func Read(path string) (*State, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("run journal %s: %v", path, unwrapPath(err))
	}
	defer f.Close()
	st, _, err := read(f, path)
	return st, err
}

// read parses every complete line and returns the state and the length of
// the complete lines. Bytes after the last newline are a torn write.
func read(r io.Reader, path string) (*State, int64, error) {
	st := &State{Commands: map[string]*Command{}, byID: map[string]*Device{}}
	br := bufio.NewReaderSize(r, 1<<16)
	var whole int64
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			break // a torn last line, or none
		}
		if err != nil {
			return nil, 0, fmt.Errorf("reading run journal %s: %v", path, err)
		}
		whole += int64(len(line))
		var rec record
		if err := json.Unmarshal(line, &rec); err != nil {
			return nil, 0, fmt.Errorf("run journal %s: line %d is not a journal record: %v", path, n, err)
		}
		if n == 1 {
			if rec.Header == nil || rec.Header.Format != Format {
				return nil, 0, fmt.Errorf("%s is not an mdmctl run journal (%s)", path, Format)
			}
			st.Header = *rec.Header
			continue
		}
		if err := st.apply(rec); err != nil {
			return nil, 0, fmt.Errorf("run journal %s: line %d: %v", path, n, err)
		}
	}
	if st.Header.Format == "" {
		return nil, 0, fmt.Errorf("%s is not an mdmctl run journal: it has no header", path)
	}
	for _, d := range st.Devices {
		if d.Stage == Sent {
			d.MayHaveLanded = true // the run ended before its answer was recorded
		}
	}
	return st, whole, nil
}

// Stage is how far a device got.
type Stage int

// Stages, in order.
const (
	Planned Stage = iota // its command was planned, its request never went out
	Sent                 // its request went out, no outcome recorded
	Settled              // an outcome is recorded
)

// Device is one device's last known state.
type Device struct {
	ID          string
	CommandUUID string // "" for devices that got no command (refused, invalid)
	Stage       Stage
	Outcome     report.Outcome
	Error       string
	NotReached  bool
	// MayHaveLanded is set once any request for the device may have
	// reached the server without an answer that says what it did: a resent
	// duplicate then means that request landed.
	MayHaveLanded bool
}

// State is what a journal says about its run.
type State struct {
	Header   Header
	Commands map[string]*Command
	// Devices in the order the journal first names them, each once.
	Devices []*Device
	byID    map[string]*Device
}

func (st *State) device(id string) *Device {
	d := st.byID[id]
	if d == nil {
		d = &Device{ID: id}
		st.byID[id] = d
		st.Devices = append(st.Devices, d)
	}
	return d
}

func (st *State) apply(rec record) error {
	switch {
	case rec.Command != nil:
		c := rec.Command
		st.Commands[c.UUID] = c
		for _, id := range c.IDs {
			d := st.device(id)
			// A device moves to a new command only by a split batch,
			// whose failed whole left no trace.
			*d = Device{ID: id, CommandUUID: c.UUID}
		}
	case rec.Sending != "":
		c := st.Commands[rec.Sending]
		if c == nil {
			return fmt.Errorf("sending unknown command %s", rec.Sending)
		}
		for _, id := range c.IDs {
			if d := st.byID[id]; d.CommandUUID == c.UUID {
				if d.Stage == Sent {
					d.MayHaveLanded = true // an earlier send of it got no outcome
				}
				d.Stage = Sent
			}
		}
	case rec.Result != nil:
		g := rec.Result
		for _, id := range g.IDs {
			d := st.device(id)
			if g.CommandUUID != "" && d.CommandUUID != g.CommandUUID {
				continue // an outcome of a command the device has left
			}
			wasSent := d.Stage == Sent
			d.Stage, d.Outcome, d.Error, d.NotReached = Settled, g.Outcome, g.Error, g.NotReached
			switch {
			case g.Outcome == report.NotSent:
				d.Stage = Planned
			case g.Outcome == report.Unknown && wasSent:
				d.MayHaveLanded = true
			}
		}
	default:
		return errors.New("empty record")
	}
	return nil
}

// Resendable reports whether a resume may send the device's command again:
// never sent, sent without a recorded outcome, unknown, or failed before
// reaching the server.
func (d *Device) Resendable() bool {
	switch {
	case d.CommandUUID == "":
		return false
	case d.Stage != Settled:
		return true
	}
	return d.Outcome == report.Unknown || (d.Outcome == report.Failed && d.NotReached)
}

// Landed reports whether the device's command is known to be on the server.
func (d *Device) Landed() bool {
	return d.Stage == Settled && d.CommandUUID != "" &&
		(d.Outcome == report.Queued || d.Outcome == report.QueuedNotPushed || d.Outcome == report.Acknowledged ||
			d.Outcome == report.DeviceError || d.Outcome == report.CommandFormatError || d.Outcome == report.NoAnswer)
}
