// Package output renders a run's per-device results as text, JSON, JSON
// Lines or CSV. Data goes to the data stream; the text summary to the message stream.
package output

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/iostreams"
	"github.com/mdmctl/mdmctl/pkg/report"
)

// Formats accepted by -o.
const (
	FormatText  = "text"
	FormatJSON  = "json"
	FormatJSONL = "jsonl"
)

// Formats lists the -o values, for validation and completion.
var Formats = []string{FormatText, FormatJSON, FormatJSONL, FormatCSV}

// Printer receives each device as its outcome is known, then the run.
// Lines may wait in a buffer until Flush, which the caller invokes after
// each group of devices whose outcomes arrived together.
type Printer interface {
	Device(d report.Device) error
	Flush() error
	// End is called once; run.Devices is empty, the printer kept what it needs.
	End(run report.Run) error
}

// New returns the printer for format, writing to the streams of io.
func New(format string, io *iostreams.IOStreams) (Printer, error) {
	switch format {
	case FormatText, "":
		return &textPrinter{out: bufio.NewWriter(io.Out), errOut: io.ErrOut, colors: io.ColorOut(), errColors: io.ColorErr()}, nil
	case FormatJSON:
		return &jsonPrinter{out: io.Out}, nil
	case FormatJSONL:
		return &jsonlPrinter{w: bufio.NewWriter(io.Out)}, nil
	case FormatCSV:
		return newCSVPrinter(io)
	}
	return nil, fmt.Errorf("unknown output format %q (want text, json, jsonl or csv)", format)
}

type textPrinter struct {
	out       *bufio.Writer
	errOut    io.Writer
	colors    iostreams.Palette
	errColors iostreams.Palette
	// idWidth and outcomeWidth are the column widths of the run, known
	// before the first line.
	idWidth, outcomeWidth int
	// batch holds the lines of one Flush, aligned together.
	batch []report.Device
	notes noteCounts
}

// AlignColumns pads text lines' ID column to idWidth (the longest ID of the
// run) and the outcome column to at least outcomeWidth, so lines printed as
// results arrive still line up. Other formats ignore it.
func AlignColumns(p Printer, idWidth, outcomeWidth int) {
	if tp, ok := p.(*textPrinter); ok {
		tp.idWidth, tp.outcomeWidth = idWidth, outcomeWidth
	}
}

// Device queues "ID  OUTCOME  DETAIL" for the next Flush: columns a script
// can split on runs of spaces.
func (p *textPrinter) Device(d report.Device) error {
	p.batch = append(p.batch, d)
	p.notes.add(d)
	return nil
}

// Flush writes the queued lines, the outcome column as wide as the batch's
// longest outcome; color ends before the padding.
func (p *textPrinter) Flush() error {
	outcomeWidth := p.outcomeWidth
	for _, d := range p.batch {
		outcomeWidth = max(outcomeWidth, len(d.Outcome))
	}
	for _, d := range p.batch {
		// What a device or server said is escaped: a newline in it would
		// print a forged line for another device.
		line := pad(Escape(d.ID), p.idWidth) + "  " + paint(p.colors, d.Outcome, string(d.Outcome))
		if detail := Escape(Detail(d)); detail != "" {
			line += strings.Repeat(" ", outcomeWidth-len(d.Outcome)) + "  " + detail
		}
		if _, err := p.out.WriteString(line + "\n"); err != nil {
			return err
		}
	}
	clear(p.batch)
	p.batch = p.batch[:0]
	return p.out.Flush()
}

func pad(s string, width int) string {
	if len(s) >= width {
		return s
	}
	return s + strings.Repeat(" ", width-len(s))
}

func (p *textPrinter) End(run report.Run) error {
	if err := p.Flush(); err != nil {
		return err
	}
	line := SummaryLine(run, p.errColors)
	if notes := p.notes.String(); notes != "" {
		line += "; " + notes
	}
	_, err := fmt.Fprintln(p.errOut, line)
	return err
}

// Facts renders a DeviceInformation answer in a few words, e.g.
// "MacBookAir10,1 (MacBook Air), OS 11.4 (20F71), PIN not required";
// keys the device did not answer are left out.
func Facts(in apple.Information) string {
	var parts []string
	model := in.ProductName
	if model == "" {
		model = in.Model
	}
	switch {
	case model != "" && in.ModelName != "":
		parts = append(parts, model+" ("+in.ModelName+")")
	case model != "":
		parts = append(parts, model)
	case in.ModelName != "":
		parts = append(parts, in.ModelName)
	}
	if in.OSVersion != "" {
		v := "OS " + in.OSVersion
		if in.BuildVersion != "" {
			v += " (" + in.BuildVersion + ")"
		}
		parts = append(parts, v)
	}
	if in.IsAppleSilicon != nil {
		parts = append(parts, map[bool]string{true: "Apple silicon", false: "not Apple silicon"}[*in.IsAppleSilicon])
	}
	if in.PINRequiredForDeviceLock != nil {
		parts = append(parts, map[bool]string{true: "PIN required", false: "PIN not required"}[*in.PINRequiredForDeviceLock])
	}
	if len(parts) == 0 {
		return "nothing it was asked"
	}
	return strings.Join(parts, ", ")
}

// Detail is the human part of a device line: the device's answer, the
// server's reason, the command UUID.
func Detail(d report.Device) string {
	var parts []string
	if r := d.Response; r != nil {
		s := r.Status
		if r.MessageResult != "" {
			s += " " + r.MessageResult
		}
		if len(r.ErrorChain) > 0 {
			e := r.ErrorChain[0]
			s += fmt.Sprintf(": %s %d: %s", e.ErrorDomain, e.ErrorCode, e.LocalizedDescription)
		}
		if n := noteFor(r); n != noteNone {
			s = joinSentence(s, n.advice())
		}
		parts = append(parts, s)
	}
	if d.Queue != "" && d.Queue != report.Queued {
		parts = append(parts, "queue: "+string(d.Queue))
	}
	if d.NotNow > 0 {
		parts = append(parts, fmt.Sprintf("after %d NotNow", d.NotNow))
	}
	if d.Error != "" {
		parts = append(parts, d.Error)
	}
	if d.Facts != nil {
		parts = append(parts, "answered: "+Facts(*d.Facts))
	}
	if d.Source != "" {
		parts = append(parts, "("+d.Source+")")
	}
	if d.EarlierRun {
		parts = append(parts, "(earlier run)")
	}
	if d.CommandUUID != "" {
		parts = append(parts, "command "+d.CommandUUID)
	}
	if d.PIN != "" {
		parts = append(parts, "PIN "+d.PIN)
	}
	return strings.Join(parts, "  ")
}

func paint(p iostreams.Palette, o report.Outcome, s string) string {
	switch o {
	case report.Queued, report.Acknowledged, report.Planned:
		return p.Green(s)
	case report.QueuedNotPushed, report.NoAnswer, report.Unknown, report.NotSent, report.Invalid:
		return p.Yellow(s)
	}
	return p.Red(s)
}

// summaryOrder lists outcomes in the order a reader expects them.
var summaryOrder = []report.Outcome{
	report.Planned, report.Acknowledged, report.Queued, report.QueuedNotPushed, report.DeviceError,
	report.CommandFormatError, report.NoAnswer, report.Unknown, report.Failed, report.Refused, report.Invalid, report.NotSent,
}

// SummaryLine is "N devices: a queued, b failed".
func SummaryLine(run report.Run, p iostreams.Palette) string {
	var parts []string
	seen := map[report.Outcome]bool{}
	for _, o := range summaryOrder {
		if n := run.Summary[o]; n > 0 {
			parts = append(parts, paint(p, o, fmt.Sprintf("%d %s", n, o)))
		}
		seen[o] = true
	}
	var rest []string
	for o := range run.Summary {
		if !seen[o] {
			rest = append(rest, string(o))
		}
	}
	sort.Strings(rest)
	for _, o := range rest {
		parts = append(parts, fmt.Sprintf("%d %s", run.Summary[report.Outcome(o)], o))
	}
	noun := "devices"
	if run.Summary.Total() == 1 {
		noun = "device"
	}
	line := fmt.Sprintf("%d %s: %s", run.Summary.Total(), noun, strings.Join(parts, ", "))
	if run.Interrupted {
		line += " (interrupted)"
	}
	return line
}

type jsonPrinter struct {
	out     io.Writer
	devices []report.Device
}

func (p *jsonPrinter) Device(d report.Device) error {
	p.devices = append(p.devices, d)
	return nil
}

func (p *jsonPrinter) Flush() error { return nil }

func (p *jsonPrinter) End(run report.Run) error {
	run.Devices = p.devices
	if run.Devices == nil {
		run.Devices = []report.Device{}
	}
	enc := json.NewEncoder(p.out)
	enc.SetIndent("", "  ")
	return enc.Encode(run)
}

// jsonlPrinter writes one object per device; lines leave at each Flush.
type jsonlPrinter struct {
	w   *bufio.Writer
	buf []byte
}

func (p *jsonlPrinter) Device(d report.Device) error {
	var err error
	if p.buf, err = appendDevice(p.buf[:0], d); err != nil {
		return err
	}
	_, err = p.w.Write(p.buf)
	return err
}

func (p *jsonlPrinter) Flush() error { return p.w.Flush() }

func (p *jsonlPrinter) End(report.Run) error { return p.w.Flush() }

// Discard is a printer that prints nothing (the plists are the output).
type Discard struct{}

// Device ignores d.
func (Discard) Device(report.Device) error { return nil }

// Flush does nothing.
func (Discard) Flush() error { return nil }

// End ignores run.
func (Discard) End(report.Run) error { return nil }

// Warn prints a warning on stderr, in yellow where color is on, its text
// escaped as any text from a server or device is.
func Warn(io *iostreams.IOStreams, msg string) {
	fmt.Fprintln(io.ErrOut, io.ColorErr().Yellow("warning: "+Escape(msg)))
}
