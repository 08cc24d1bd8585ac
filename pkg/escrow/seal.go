package escrow

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
)

// An encrypted escrow keeps each record one JSON line, as a clear one does,
// with the PIN alone sealed: its age ciphertext (base64) replaces the clear
// "pin". The device ID, CommandUUID and time stay in clear so a
// reader finds the record it wants, and a resume matches records to its
// journal, without the identity; the run journal holds those in clear
// already. A line is still written whole, fsynced, and cut back when torn.

// ErrNoIdentity is reading a sealed PIN without any age identity.
var ErrNoIdentity = errors.New("the PIN is encrypted and no age identity was given")

// ErrWrongIdentity is reading a sealed PIN with identities that do not open it.
var ErrWrongIdentity = errors.New("the PIN is encrypted to another age key than the identities given")

// seal encrypts pin to recipients.
func seal(pin string, recipients []age.Recipient) ([]byte, error) {
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, recipients...)
	if err != nil {
		return nil, fmt.Errorf("encrypting a PIN: %v", err)
	}
	if _, err := io.WriteString(w, pin); err != nil {
		return nil, fmt.Errorf("encrypting a PIN: %v", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encrypting a PIN: %v", err)
	}
	return buf.Bytes(), nil
}

// Sealed reports whether the record's PIN is encrypted.
func (r Record) Sealed() bool { return len(r.SealedPIN) > 0 }

// Unseal returns the record's PIN, decrypting it with identities when it
// is sealed. Its errors wrap ErrNoIdentity or ErrWrongIdentity and name the
// device and command, never the PIN.
func (r Record) Unseal(identities []age.Identity) (string, error) {
	if !r.Sealed() {
		return r.PIN, nil
	}
	if len(identities) == 0 {
		return "", fmt.Errorf("PIN of %s (command %s): %w", r.ID, r.CommandUUID, ErrNoIdentity)
	}
	pr, err := age.Decrypt(bytes.NewReader(r.SealedPIN), identities...)
	var noMatch *age.NoIdentityMatchError
	if errors.As(err, &noMatch) {
		return "", fmt.Errorf("PIN of %s (command %s): %w", r.ID, r.CommandUUID, ErrWrongIdentity)
	}
	if err != nil {
		return "", fmt.Errorf("PIN of %s (command %s): decrypting: %v", r.ID, r.CommandUUID, err)
	}
	pin, err := io.ReadAll(io.LimitReader(pr, 64))
	if err != nil {
		return "", fmt.Errorf("PIN of %s (command %s): decrypting: %v", r.ID, r.CommandUUID, err)
	}
	return string(pin), nil
}

// ParseRecipients reads --pin-escrow-recipient: one age public key
// ("age1..."), or the path of a recipients file (one key a line, # comments).
func ParseRecipients(spec string) ([]age.Recipient, error) {
	if strings.HasPrefix(spec, "age1") {
		recs, err := age.ParseRecipients(strings.NewReader(spec))
		if err != nil {
			return nil, fmt.Errorf("PIN escrow recipient %q is not a valid age public key", spec)
		}
		return recs, nil
	}
	data, err := os.ReadFile(spec)
	if err != nil {
		return nil, fmt.Errorf("PIN escrow recipient %q is neither an age public key (age1...) nor a readable recipients file: %v", spec, pathCause(err))
	}
	recs, err := age.ParseRecipients(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("PIN escrow recipients file %s: %v", spec, err)
	}
	return recs, nil
}

// ReadIdentities reads a file of age identities (AGE-SECRET-KEY-1...). Like
// the escrow file, one that group or others can read is refused: it opens
// every PIN.
func ReadIdentities(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("age identity file %s: %v", path, pathCause(err))
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("age identity file %s: %v", path, pathCause(err))
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("age identity file %s is not a regular file", path)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("age identity file %s is readable by group or others (mode %04o); chmod 600 it first", path, info.Mode().Perm())
	}
	// age's parse errors never quote the file's lines: they may be keys.
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("age identity file %s: %v", path, err)
	}
	return ids, nil
}

// pathCause shortens an *os.PathError to its cause: the message names the
// file already.
func pathCause(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
