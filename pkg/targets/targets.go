// Package targets reads device lists: plain ID lists (one per line, blank
// lines and # comments skipped) and CSV files with a header row and optional
// per-device facts and values. Readers stream: each entry is handed over as
// it is read.
package targets

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxLine bounds one input line; anything longer is reported, not buffered.
const MaxLine = 64 << 10

// Entry is one device as the input names it. Empty fields mean "not given":
// the command's flags apply.
type Entry struct {
	ID string
	// Serial is the device's serial number, for servers that resolve it to
	// an ID (a CSV serial column, --serial); with no ID it must be resolved.
	Serial string
	// Name and Line locate the entry ("devices.csv", 7); Source formats
	// them only when a message needs it.
	Name string
	Line int
	// Err is set for a line that cannot be an entry; ID may still be known.
	Err error

	Platform  string
	Model     string
	OSVersion string
	Message   string
	Phone     string
	PIN       string
}

// Source is "name:line", or "" for an entry with no position.
func (e Entry) Source() string {
	if e.Line == 0 {
		return ""
	}
	return label(e.Name, e.Line)
}

// Columns of a CSV file; udid or serial is required.
var Columns = []string{"udid", "serial", "os_version", "model", "platform", "message", "phone", "pin"}

// ReadIDs reads one ID per line of text (LF or CRLF, an optional UTF-8
// byte-order mark first), calling fn for each. name labels
// sources ("-" reads as "stdin"). The IDs share text's memory: a list of a
// hundred thousand devices costs no allocation per line.
func ReadIDs(text, name string, fn func(Entry) error) error {
	// A byte-order mark, as Windows editors write one, is not part of the
	// first ID (nor is the CR of a CRLF line end, below).
	text = strings.TrimPrefix(text, "\ufeff")
	for line := 1; text != ""; line++ {
		raw, rest, _ := strings.Cut(text, "\n")
		text = rest
		var e Entry
		switch {
		case len(raw) > MaxLine:
			e = Entry{Name: name, Line: line, Err: fmt.Errorf("line longer than %d bytes", MaxLine)}
		default:
			id := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
			if id == "" || strings.HasPrefix(id, "#") {
				continue
			}
			e = Entry{ID: id, Name: name, Line: line}
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

func label(name string, line int) string {
	if name == "-" || name == "" {
		name = "stdin"
	}
	return fmt.Sprintf("%s:%d", name, line)
}

// ReadCSV reads a CSV file whose header names the columns (any order, case
// and surrounding spaces ignored; udid required, unknown columns rejected).
// A malformed row is handed to fn with Err set; a bad header is an error.
func ReadCSV(r io.Reader, name string, fn func(Entry) error) error {
	cr := csv.NewReader(&lineLimiter{r: bufio.NewReader(r)})
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err == io.EOF {
		return fmt.Errorf("%s: empty CSV file (want a header row with a udid or serial column)", label(name, 1))
	}
	if err != nil {
		return fmt.Errorf("%s: %v", label(name, 1), csvCause(err))
	}
	index, err := columns(header)
	if err != nil {
		return fmt.Errorf("%s: %v", label(name, 1), err)
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		var (
			e    Entry
			line int
		)
		switch {
		case err != nil:
			// FieldPos is only valid for a record read without error.
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.Line
			}
			e = Entry{Err: csvCause(err)}
			if errors.Is(err, errLineTooLong) {
				return fmt.Errorf("%s: %v", label(name, line), err)
			}
		case len(rec) != len(header):
			line, _ = cr.FieldPos(0)
			e = Entry{Err: fmt.Errorf("has %d fields, the header has %d%s", len(rec), len(header), splitModelHint(rec))}
		default:
			line, _ = cr.FieldPos(0)
			if blank(rec) {
				continue
			}
			get := func(col string) string {
				if i, ok := index[col]; ok {
					return strings.TrimSpace(rec[i])
				}
				return ""
			}
			e = Entry{ID: get("udid"), Serial: get("serial"), Platform: get("platform"), Model: get("model"), OSVersion: get("os_version"),
				Message: get("message"), Phone: get("phone"), PIN: get("pin")}
			if strings.HasPrefix(e.ID, "#") || (e.ID == "" && strings.HasPrefix(e.Serial, "#")) {
				continue
			}
		}
		e.Name, e.Line = name, line
		if ferr := fn(e); ferr != nil {
			return ferr
		}
	}
}

func columns(header []string) (map[string]int, error) {
	known := map[string]bool{}
	for _, c := range Columns {
		known[c] = true
	}
	index := map[string]int{}
	for i, h := range header {
		col := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !known[col] {
			return nil, fmt.Errorf("unknown CSV column %q (want %s)", h, strings.Join(Columns, ", "))
		}
		if _, dup := index[col]; dup {
			return nil, fmt.Errorf("CSV column %q appears twice", col)
		}
		index[col] = i
	}
	_, udid := index["udid"]
	if _, serial := index["serial"]; !udid && !serial {
		return nil, fmt.Errorf("CSV header has no udid column (nor a serial column)")
	}
	return index, nil
}

func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

func csvCause(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

var errLineTooLong = fmt.Errorf("line longer than %d bytes", MaxLine)

// lineLimiter fails a read once a line runs past MaxLine, so a file with
// no newlines cannot make encoding/csv buffer it whole.
type lineLimiter struct {
	r       *bufio.Reader
	lineLen int
}

func (l *lineLimiter) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for _, b := range p[:n] {
		if b == '\n' {
			l.lineLen = 0
			continue
		}
		l.lineLen++
		if l.lineLen > MaxLine {
			return 0, errLineTooLong
		}
	}
	return n, err
}

// splitModelHint recognizes an unquoted model identifier that the CSV
// split in two (MacBookAir10,1 read as "MacBookAir10" and "1").
func splitModelHint(rec []string) string {
	for i := 0; i+1 < len(rec); i++ {
		if isModelStem(strings.TrimSpace(rec[i])) && isDigits(strings.TrimSpace(rec[i+1])) {
			return fmt.Sprintf(` ("%s,%s"?): quote fields that contain commas`, strings.TrimSpace(rec[i]), strings.TrimSpace(rec[i+1]))
		}
	}
	return ""
}

// isModelStem matches letters then digits, as in "MacBookAir10" or "iPhone15".
func isModelStem(s string) bool {
	i := 0
	for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z') {
		i++
	}
	return i > 0 && i < len(s) && isDigits(s[i:])
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
