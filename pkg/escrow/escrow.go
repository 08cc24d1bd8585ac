// Package escrow keeps generated PINs safe before they are used: each record
// is appended and fsynced before the command carrying the PIN is sent, so no
// crash or kill leaves a locked Mac whose PIN is unknown.
package escrow

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"

	"filippo.io/age"
)

// Record is one device's PIN, escrowed before the command carrying it was
// sent: a record whose command never landed is possible, a landed command
// without its record is not.
type Record struct {
	ID          string `json:"id"`
	CommandUUID string `json:"command_uuid"`
	// PIN is in clear; in an encrypted escrow it is empty and SealedPIN
	// holds its age ciphertext (see Unseal).
	PIN       string    `json:"pin,omitempty"`
	SealedPIN []byte    `json:"pin_age,omitempty"`
	Time      time.Time `json:"time"`
}

// File is an append-only JSON Lines escrow file, created 0600.
type File struct {
	mu sync.Mutex
	f  *os.File
	// size is where the next record begins: a failed write is cut back to it.
	size int64
	// recipients, when set, are the age keys each PIN is encrypted to.
	recipients []age.Recipient
}

// Open opens (or creates) the escrow file for appending. An existing file
// that others can read is refused: it would hold PINs in the open. So is a
// symbolic link, which would send the PINs wherever it points. A new file's
// folder is synced, so the file itself survives a crash; a record torn by
// an earlier crash or full disk is cut off (see repairTail).
//
// With recipients, each PIN is written encrypted to them. A file keeps one
// kind of record: encrypted records are refused in a file of clear PINs,
// and clear PINs in an encrypted file, which would defeat it.
func Open(path string, recipients ...age.Recipient) (*File, error) {
	before, statErr := os.Lstat(path)
	if statErr == nil && before.Mode()&fs.ModeSymlink != 0 {
		return nil, symlinkError(path)
	}
	created := errors.Is(statErr, fs.ErrNotExist)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|openNoFollow, 0o600)
	if err != nil {
		if isSymlinkRefusal(err) {
			return nil, symlinkError(path)
		}
		return nil, fmt.Errorf("PIN escrow file %s: %v", path, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if info.Mode().Perm()&0o077 != 0 {
		f.Close()
		return nil, fmt.Errorf("PIN escrow file %s is readable by group or others (mode %04o); chmod 600 it first", path, info.Mode().Perm())
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("PIN escrow file %s is not a regular file", path)
	}
	if created {
		if err := syncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return nil, fmt.Errorf("PIN escrow file %s: syncing its folder: %v", path, err)
		}
	}
	e := &File{f: f, size: info.Size(), recipients: recipients}
	if err := e.repairTail(); err != nil {
		f.Close()
		return nil, fmt.Errorf("PIN escrow file %s: %v", path, err)
	}
	if err := e.checkKind(path); err != nil {
		f.Close()
		return nil, err
	}
	return e, nil
}

// checkKind refuses to mix clear and encrypted records: the first record
// decides what the file holds.
func (e *File) checkKind(path string) error {
	if e.size == 0 {
		return nil
	}
	first, err := bufio.NewReader(io.NewSectionReader(e.f, 0, e.size)).ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("PIN escrow file %s: reading its first record: %v", path, err)
	}
	var r Record
	if err := json.Unmarshal(first, &r); err != nil {
		return fmt.Errorf("PIN escrow file %s: line 1 is not an escrow record", path)
	}
	switch {
	case r.Sealed() && len(e.recipients) == 0:
		return fmt.Errorf("PIN escrow file %s holds encrypted PINs: refusing to add PINs in clear to it (give --pin-escrow-recipient, or another file)", path)
	case !r.Sealed() && len(e.recipients) > 0:
		return fmt.Errorf("PIN escrow file %s holds PINs in clear: refusing to add encrypted ones to it (give a new file for encrypted PINs)", path)
	}
	return nil
}

func symlinkError(path string) error {
	return fmt.Errorf("PIN escrow file %s is a symbolic link; refusing to write PINs through it (give the real path)", path)
}

// Append writes recs and syncs them to disk before returning. When the
// write or the sync fails (a full disk), the file is cut back to where
// these records began, so the next record starts on its own line.
func (e *File) Append(recs ...Record) error {
	var buf []byte
	for _, r := range recs {
		if len(e.recipients) > 0 {
			sealed, err := seal(r.PIN, e.recipients)
			if err != nil {
				return err
			}
			r.PIN, r.SealedPIN = "", sealed
		}
		line, err := json.Marshal(r)
		if err != nil {
			return err
		}
		buf = append(append(buf, line...), '\n')
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.f.Write(buf); err != nil {
		return fmt.Errorf("writing PIN escrow: %v%s", err, e.cutBack())
	}
	if err := e.f.Sync(); err != nil {
		return fmt.Errorf("syncing PIN escrow: %v%s", err, e.cutBack())
	}
	e.size += int64(len(buf))
	return nil
}

// cutBack truncates the file to its last whole record; it returns a note
// for the error message when even that fails.
func (e *File) cutBack() string {
	if err := e.f.Truncate(e.size); err != nil {
		return fmt.Sprintf(" (and cutting back the torn record failed: %v)", err)
	}
	if err := e.f.Sync(); err != nil {
		return fmt.Sprintf(" (and syncing the cut failed: %v)", err)
	}
	return ""
}

// Close closes the file.
func (e *File) Close() error { return e.f.Close() }

var million = big.NewInt(1_000_000)

// GeneratePIN returns six uniformly random digits from crypto/rand.
func GeneratePIN() (string, error) {
	n, err := rand.Int(rand.Reader, million)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}
