package escrow

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"filippo.io/age"
)

// Read returns the records of an escrow file in the order they were
// written. A torn last line (a crash mid-write) is skipped: its command
// was never sent, as the record is synced before sending. Sealed PINs stay
// sealed (see Record.Unseal).
func Read(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("PIN escrow file %s: %v", path, pathCause(err))
	}
	defer f.Close()
	var recs []Record
	br := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			return recs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading PIN escrow file %s: %v", path, err)
		}
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("PIN escrow file %s: line %d is not an escrow record", path, n)
		}
		recs = append(recs, r)
	}
}

// PINs reads an escrow file back: the PIN of each (CommandUUID, device ID),
// for a resume that must resend the PIN a Mac may already hold. Sealed PINs
// are decrypted with identities; without them an encrypted escrow fails
// with ErrNoIdentity.
func PINs(path string, identities ...age.Identity) (map[[2]string]string, error) {
	recs, err := Read(path)
	if err != nil {
		return nil, err
	}
	pins := make(map[[2]string]string, len(recs))
	for _, r := range recs {
		pin, err := r.Unseal(identities)
		if err != nil {
			return nil, fmt.Errorf("PIN escrow file %s: %w", path, err)
		}
		pins[[2]string{r.CommandUUID, r.ID}] = pin
	}
	return pins, nil
}
