// Package response implements `mdmctl response decode`.
package response

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/dispatch"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/output"
	"github.com/mdmctl/mdmctl/pkg/report"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

// maxInput bounds what decode reads: one event or one response plist.
const maxInput = 4 << 20

// NewCmdResponse returns `mdmctl response`.
func NewCmdResponse(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "response",
		Short: "Work with devices' command responses",
	}
	cmd.AddCommand(newCmdDecode(f))
	return cmd
}

func newCmdDecode(f *cmdutil.Factory) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "decode [FILE|-]",
		Short: "Decode a webhook event or a response plist and print the device's answer",
		Long: `Decode a device's answer to a command and print it the way mdmctl lock --wait
does: a NanoMDM or MicroMDM webhook event (JSON, its raw_payload decoded) or a
raw DeviceLockResponse plist (XML or binary). Reads standard input without
FILE or with -.`,
		Example: `  mdmctl response decode event.json
  curl -s ... | mdmctl response decode - -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := "-"
			if len(args) == 1 {
				name = args[0]
			}
			data, err := read(f, name)
			if err != nil {
				return err
			}
			resp, err := Decode(data)
			if err != nil {
				return exitcode.Usagef("%s: %v", label(name), err)
			}
			p, err := output.New(format, f.IOStreams)
			if err != nil {
				return &exitcode.UsageError{Err: fmt.Errorf("invalid --output: %v", err)}
			}
			d := report.Device{ID: resp.DeviceID(), Outcome: dispatch.AnswerOutcome(resp), CommandUUID: resp.CommandUUID, Response: &resp}
			run := report.Run{CommandUUID: resp.CommandUUID, Summary: report.Summary{d.Outcome: 1}}
			if err := p.Device(d); err != nil {
				return err
			}
			return p.End(run)
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", output.FormatText, "output format: text, json, jsonl")
	return cmd
}

func label(name string) string {
	if name == "-" {
		return "stdin"
	}
	return name
}

func read(f *cmdutil.Factory, name string) ([]byte, error) {
	var r io.Reader = f.IOStreams.In
	if name != "-" {
		file, err := os.Open(name)
		if err != nil {
			return nil, exitcode.Usagef("%s: %v", name, cmdutil.PathErr(err))
		}
		defer file.Close()
		r = file
	}
	data, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err != nil {
		return nil, exitcode.Usagef("%s: %v", label(name), err)
	}
	if len(data) > maxInput {
		return nil, exitcode.Usagef("%s: larger than %d bytes", label(name), maxInput)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, exitcode.Usagef("%s: empty input", label(name))
	}
	return data, nil
}

// Decode reads a webhook event (JSON) or a response plist.
func Decode(data []byte) (apple.Response, error) {
	if trimmed := bytes.TrimSpace(data); trimmed[0] == '{' {
		ev, err := webhook.DecodeEvent(trimmed)
		if err != nil {
			return apple.Response{}, err
		}
		if ev.Acknowledge == nil {
			return apple.Response{}, fmt.Errorf("webhook event %q carries no command response (no acknowledge_event)", ev.Topic)
		}
		resp, err := ev.Acknowledge.Response()
		if err != nil {
			return apple.Response{}, err
		}
		if resp.UDID == "" && resp.EnrollmentID == "" {
			resp.UDID, resp.EnrollmentID = ev.Acknowledge.UDID, ev.Acknowledge.EnrollmentID
		}
		return resp, nil
	}
	return apple.DecodeResponse(data)
}
