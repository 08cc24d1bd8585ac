package output

import (
	"fmt"
	"strings"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/report"
)

// note is a device answer that calls for a next step.
type note int

const (
	noteNone note = iota
	notePINRequired
	noteNoPasscode
	noteLostMode
	noteCount
)

// errorCodePINRequired is the MCMDMErrorDomain code of a Mac that needs a
// PIN to lock.
const errorCodePINRequired = 12066

func noteFor(r *apple.Response) note {
	switch {
	case r == nil:
		return noteNone
	case len(r.ErrorChain) > 0 && r.ErrorChain[0].ErrorCode == errorCodePINRequired:
		return notePINRequired
	case r.MessageResult == apple.MessageResultNoPasscodeSet:
		return noteNoPasscode
	case r.MessageResult == apple.MessageResultDeviceInLostMode:
		return noteLostMode
	}
	return noteNone
}

// advice is what the device line adds to the answer.
func (n note) advice() string {
	switch n {
	case notePINRequired:
		return "give a six-digit PIN with MDMCTL_PIN or --pin-file, or --pin-generate --pin-escrow FILE"
	case noteNoPasscode:
		return "no passcode is set, so the Lock Screen shows no message and anyone can unlock the device"
	case noteLostMode:
		return "the device is already in Lost Mode"
	}
	return ""
}

// label is how the summary counts it.
func (n note) label() string {
	switch n {
	case notePINRequired:
		return "needing a PIN"
	case noteNoPasscode:
		return "without a passcode"
	case noteLostMode:
		return "already in Lost Mode"
	}
	return ""
}

// joinSentence appends advice to the device's words, after its own full
// stop if it ended a sentence.
func joinSentence(s, advice string) string {
	if strings.HasSuffix(s, ".") {
		return s + " " + strings.ToUpper(advice[:1]) + advice[1:] + "."
	}
	return s + ": " + advice
}

// noteCounts counts the answers that call for a next step, for the summary.
type noteCounts [noteCount]int

func (c *noteCounts) add(d report.Device) { c[noteFor(d.Response)]++ }

// String is "1 needing a PIN, 1 without a passcode", or "" when none.
func (c *noteCounts) String() string {
	var parts []string
	for n := notePINRequired; n < noteCount; n++ {
		if c[n] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[n], n.label()))
		}
	}
	return strings.Join(parts, ", ")
}
