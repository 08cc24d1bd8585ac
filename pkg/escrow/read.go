package escrow

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// PINs reads an escrow file back: the PIN of each (CommandUUID, device ID),
// for a resume that must resend the PIN a Mac may already hold. A torn last
// line (a crash mid-write) is skipped: its command was never sent, as the
// record is synced before sending.
func PINs(path string) (map[[2]string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("PIN escrow file %s: %v", path, err)
	}
	defer f.Close()
	pins := map[[2]string]string{}
	br := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			return pins, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading PIN escrow file %s: %v", path, err)
		}
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("PIN escrow file %s: line %d is not an escrow record", path, n)
		}
		pins[[2]string{r.CommandUUID, r.ID}] = r.PIN
	}
}
