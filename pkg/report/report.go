// Package report holds what mdmctl reports per device and per run: the data
// that printers render and exit codes are decided from.
package report

import "github.com/mdmctl/mdmctl/pkg/apple"

// Outcome is the final word on one device in one run.
type Outcome string

// Outcomes, from the server's queue and, with --wait, from the device.
const (
	Queued          Outcome = "queued"
	QueuedNotPushed Outcome = "queued-not-pushed"
	Failed          Outcome = "failed"
	Refused         Outcome = "refused"  // the safety guard kept the command from this device
	Invalid         Outcome = "invalid"  // the input line was invalid and skipped
	NotSent         Outcome = "not-sent" // interrupted before its request went out
	Planned         Outcome = "planned"  // --dry-run
	// Unknown: every attempt may have reached the server and none got an
	// answer, so the device may hold the command. A blind rerun with a new
	// CommandUUID could queue a second lock (and a second PIN).
	Unknown Outcome = "unknown"

	Acknowledged       Outcome = "acknowledged"
	DeviceError        Outcome = "error"
	CommandFormatError Outcome = "command-format-error"
	NoAnswer           Outcome = "no-answer"
	NotNow             Outcome = "not-now" // only when decoding a single report
	Idle               Outcome = "idle"    // only when decoding a single report
)

// Device is one device's line in the output.
type Device struct {
	ID          string  `json:"id"`
	Outcome     Outcome `json:"outcome"`
	CommandUUID string  `json:"command_uuid,omitempty"`
	// Reference is the server's own name for the command it queued, when
	// that is not the CommandUUID (a vendor API's command or action ID).
	Reference string `json:"server_reference,omitempty"`
	// Queue is the server's outcome when Outcome is the device's answer.
	Queue Outcome `json:"queue,omitempty"`
	// Error is the reason for any outcome short of success.
	Error string `json:"error,omitempty"`
	// Response is the device's own answer (--wait, or the raw kind).
	Response *apple.Response `json:"response,omitempty"`
	// NotNow counts NotNow answers seen before the final one.
	NotNow   int      `json:"not_now,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// Source names the input line for file input ("devices.csv:7").
	Source string `json:"source,omitempty"`
	// PIN is set only with --show-pins; never printed otherwise.
	PIN string `json:"pin,omitempty"`
	// PINNote is the part of Error that says where a PIN the server made
	// is while mdmctl holds no copy (dispatch's Join.PIN drops it once kept).
	PINNote string `json:"-"`
	// EarlierRun marks, in a resumed run, a device not sent again: its
	// outcome is the one the run's journal recorded.
	EarlierRun bool `json:"earlier_run,omitempty"`
	// Facts are what the device itself answered to DeviceInformation
	// (--preflight, devices inspect); nil when it was not asked or did not answer.
	Facts *apple.Information `json:"facts,omitempty"`
	// NotReached marks a failed device whose request provably never reached
	// the server (refused before connecting, or answered 429/503 on every
	// attempt): a resume may send it again under the same CommandUUID.
	NotReached bool `json:"-"`
}

// Summary counts devices per outcome.
type Summary map[Outcome]int

// Add counts one device.
func (s Summary) Add(o Outcome) { s[o]++ }

// Total is the number of devices counted.
func (s Summary) Total() int {
	n := 0
	for _, c := range s {
		n += c
	}
	return n
}

// Run is the whole run: what a JSON document holds.
type Run struct {
	RequestType string `json:"request_type"`
	// CommandUUID is set when every device got the same command.
	CommandUUID string   `json:"command_uuid,omitempty"`
	Server      string   `json:"server,omitempty"`
	DryRun      bool     `json:"dry_run,omitempty"`
	Waited      bool     `json:"waited,omitempty"`
	Devices     []Device `json:"devices"`
	Summary     Summary  `json:"summary"`
	Interrupted bool     `json:"interrupted,omitempty"`
}
