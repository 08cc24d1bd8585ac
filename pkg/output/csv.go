package output

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/iostreams"
	"github.com/mdmctl/mdmctl/pkg/report"
)

// FormatCSV is RFC 4180 CSV with a header row, for spreadsheets.
const FormatCSV = "csv"

// Table writes CSV: a header row, then one row per record, quoted as RFC
// 4180 says (encoding/csv) and with CRLF line ends, as spreadsheets expect.
//
// A cell that starts with =, +, -, @, a tab or a carriage return is
// prefixed with a single quote: a spreadsheet would run it as a formula,
// and its text comes from devices and servers mdmctl does not control
// (CSV injection, as OWASP describes it). The quote shows in the cell;
// "'+1 408-555-5555" is the phone number +1 408-555-5555.
type Table struct {
	w *csv.Writer
}

// NewTable writes header to w and returns the table for its rows.
func NewTable(w io.Writer, header ...string) (*Table, error) {
	t := &Table{w: csv.NewWriter(w)}
	t.w.UseCRLF = true
	return t, t.Row(header...)
}

// Row writes one row; it may wait in a buffer until Flush.
func (t *Table) Row(cells ...string) error {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = defuseFormula(c)
	}
	return t.w.Write(row)
}

// Flush writes the buffered rows.
func (t *Table) Flush() error {
	t.w.Flush()
	return t.w.Error()
}

func defuseFormula(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// ErrorChainText is a device's error chain in one line: "Domain Code:
// Description; ..." (CSV cells and the history's text output).
func ErrorChainText(chain []apple.ErrorChainItem) string {
	parts := make([]string, len(chain))
	for i, e := range chain {
		parts[i] = fmt.Sprintf("%s %d: %s", e.ErrorDomain, e.ErrorCode, e.LocalizedDescription)
	}
	return strings.Join(parts, "; ")
}

// deviceColumns are the lock results' CSV columns.
var deviceColumns = []string{"id", "outcome", "queue", "command_uuid", "status", "error_chain", "error", "not_now", "source", "earlier_run", "pin"}

// csvPrinter writes one row per device to the data stream, the summary to
// the message stream; rows leave at each Flush.
type csvPrinter struct {
	table     *Table
	errOut    io.Writer
	errColors iostreams.Palette
}

func newCSVPrinter(io *iostreams.IOStreams) (*csvPrinter, error) {
	t, err := NewTable(io.Out, deviceColumns...)
	if err != nil {
		return nil, err
	}
	return &csvPrinter{table: t, errOut: io.ErrOut, errColors: io.ColorErr()}, nil
}

func (p *csvPrinter) Device(d report.Device) error {
	var status, chain string
	if r := d.Response; r != nil {
		status, chain = r.Status, ErrorChainText(r.ErrorChain)
	}
	notNow := ""
	if d.NotNow > 0 {
		notNow = strconv.Itoa(d.NotNow)
	}
	earlier := ""
	if d.EarlierRun {
		earlier = "true"
	}
	return p.table.Row(d.ID, string(d.Outcome), string(d.Queue), d.CommandUUID, status, chain, d.Error, notNow, d.Source, earlier, d.PIN)
}

func (p *csvPrinter) Flush() error { return p.table.Flush() }

func (p *csvPrinter) End(run report.Run) error {
	if err := p.table.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(p.errOut, SummaryLine(run, p.errColors))
	return err
}
