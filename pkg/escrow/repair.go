package escrow

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// tailWindow bounds how far back repairTail looks for the last newline; a
// record is a few hundred bytes.
const tailWindow = 64 << 10

// repairTail makes the file end at a record boundary. A last line without
// its newline is either a whole record that lost only the newline (edited
// by hand), which is completed, or a record torn by a crash or a full disk,
// which is cut off: Append had not returned, so its command was never sent
// and its PIN locks nothing.
func (e *File) repairTail() error {
	if e.size == 0 {
		return nil
	}
	start := max(e.size-tailWindow, 0)
	buf := make([]byte, e.size-start)
	if _, err := e.f.ReadAt(buf, start); err != nil {
		return fmt.Errorf("reading its last record: %v", err)
	}
	if buf[len(buf)-1] == '\n' {
		return nil
	}
	nl := bytes.LastIndexByte(buf, '\n')
	if nl < 0 && start > 0 {
		return fmt.Errorf("its last line is longer than %d bytes: not an escrow file", tailWindow)
	}
	last := buf[nl+1:]
	var r Record
	if json.Unmarshal(last, &r) == nil {
		if _, err := e.f.Write([]byte{'\n'}); err != nil {
			return fmt.Errorf("completing its last record: %v", err)
		}
		e.size++
	} else {
		e.size = start + int64(nl+1)
		if err := e.f.Truncate(e.size); err != nil {
			return fmt.Errorf("cutting off a torn last record: %v", err)
		}
	}
	return e.f.Sync()
}
