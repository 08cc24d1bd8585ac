package output

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/mdmctl/mdmctl/pkg/history"
	"github.com/mdmctl/mdmctl/pkg/iostreams"
	"github.com/mdmctl/mdmctl/pkg/report"
)

// lockColumns are the CSV columns of recorded locks (`mdmctl history`,
// `mdmctl status`); new ones go at the end, where scripts reading the
// earlier ones by position do not see them.
var lockColumns = []string{"time", "device", "outcome", "command_uuid", "status", "error_chain", "error", "answered_at",
	"serial", "server", "context", "kind", "user", "pin", "pin_escrow", "server_reference"}

// Locks prints recorded locks in format: text (one line each, oldest
// first), json (an array), jsonl (an object a line) or csv.
func Locks(format string, io *iostreams.IOStreams, locks []history.Lock) error {
	switch format {
	case FormatText, "":
		return locksText(io, locks)
	case FormatJSON:
		if locks == nil {
			locks = []history.Lock{}
		}
		enc := json.NewEncoder(io.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(locks)
	case FormatJSONL:
		w := bufio.NewWriter(io.Out)
		enc := json.NewEncoder(w)
		for _, l := range locks {
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
		return w.Flush()
	case FormatCSV:
		t, err := NewTable(io.Out, lockColumns...)
		if err != nil {
			return err
		}
		for _, l := range locks {
			var status, chain string
			if r := l.Response; r != nil {
				status, chain = r.Status, ErrorChainText(r.ErrorChain)
			}
			if err := t.Row(stamp(l.Time), l.Device, string(l.Outcome), l.CommandUUID, status, chain, l.Error, stamp(l.AnsweredAt),
				l.Serial, l.Server, l.Context, l.Kind, l.User, l.PIN, l.PINEscrow, l.Reference); err != nil {
				return err
			}
		}
		return t.Flush()
	}
	return fmt.Errorf("unknown output format %q (want text, json, jsonl or csv)", format)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// locksText is "TIME  DEVICE  OUTCOME  DETAIL", the detail as a lock run's
// device line has it, then where the PIN is, who sent it and to which server.
func locksText(io *iostreams.IOStreams, locks []history.Lock) error {
	idWidth, outcomeWidth := 0, 0
	for _, l := range locks {
		idWidth, outcomeWidth = max(idWidth, len(l.Device)), max(outcomeWidth, len(l.Outcome))
	}
	w := bufio.NewWriter(io.Out)
	colors := io.ColorOut()
	for _, l := range locks {
		parts := []string{Detail(report.Device{ID: l.Device, Outcome: l.Outcome, CommandUUID: l.CommandUUID, Error: l.Error, Response: l.Response})}
		switch l.PIN {
		case history.PINGenerated:
			parts = append(parts, "PIN in "+l.PINEscrow)
		case history.PINServer:
			parts = append(parts, "server's PIN in "+l.PINEscrow)
		case history.PINGiven:
			parts = append(parts, "PIN given (not kept)")
		}
		if l.User != "" {
			parts = append(parts, "by "+l.User)
		}
		server := l.Server
		if l.Context != "" && l.Context != l.Server {
			server += " (" + l.Context + ")"
		}
		parts = append(parts, "on "+server)
		line := stamp(l.Time) + "  " + pad(l.Device, idWidth) + "  " + paint(colors, l.Outcome, string(l.Outcome)) +
			strings.Repeat(" ", outcomeWidth-len(l.Outcome)) + "  " + strings.Join(nonEmpty(parts), "  ")
		if _, err := w.WriteString(line + "\n"); err != nil {
			return err
		}
	}
	return w.Flush()
}

func nonEmpty(ss []string) []string {
	out := ss[:0]
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
