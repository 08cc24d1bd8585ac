// Package escrow keeps generated PINs safe before they are used: each record
// is appended and fsynced before the command carrying the PIN is sent, so no
// crash or kill leaves a locked Mac whose PIN is unknown.
package escrow

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"sync"
	"time"
)

// Record is one device's PIN.
type Record struct {
	ID          string    `json:"id"`
	CommandUUID string    `json:"command_uuid"`
	PIN         string    `json:"pin"`
	Time        time.Time `json:"time"`
}

// File is an append-only JSON Lines escrow file, created 0600.
type File struct {
	mu sync.Mutex
	f  *os.File
}

// Open opens (or creates) the escrow file for appending. An existing file
// that others can read is refused: it would hold PINs in the open.
func Open(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
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
	return &File{f: f}, nil
}

// Append writes recs and syncs them to disk before returning.
func (e *File) Append(recs ...Record) error {
	var buf []byte
	for _, r := range recs {
		line, err := json.Marshal(r)
		if err != nil {
			return err
		}
		buf = append(append(buf, line...), '\n')
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.f.Write(buf); err != nil {
		return fmt.Errorf("writing PIN escrow: %v", err)
	}
	if err := e.f.Sync(); err != nil {
		return fmt.Errorf("syncing PIN escrow: %v", err)
	}
	return nil
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
