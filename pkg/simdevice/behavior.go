package simdevice

import (
	"fmt"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

// Behavior decides how a device answers a command. seen counts earlier
// deliveries of the same CommandUUID to this device (0 the first time).
// The device fills in UDID and CommandUUID when the answer leaves them empty.
type Behavior interface {
	Answer(cmd apple.ParsedCommand, seen int) apple.Response
	// Offline devices enroll but never check in or answer.
	Offline() bool
}

// BehaviorFunc adapts a function to an online Behavior, for a test that
// needs an answer none of the Kinds gives.
type BehaviorFunc func(cmd apple.ParsedCommand, seen int) apple.Response

// Answer calls f.
func (f BehaviorFunc) Answer(cmd apple.ParsedCommand, seen int) apple.Response { return f(cmd, seen) }

// Offline is false: a function always answers.
func (BehaviorFunc) Offline() bool { return false }

// Kind names a canned Behavior; it is itself a Behavior, so a fleet table
// can hold Kinds and hand them straight to a device.
type Kind string

// The behaviors admins meet when they lock devices. Every Kind answers a
// command that is not DeviceLock with CommandFormatError, as a device does
// with a request type it cannot run; a Device answers DeviceInformation
// itself, from its Facts, before asking its Behavior.
const (
	Acknowledge Kind = "acknowledge"  // Acknowledged, MessageResult Success
	NoPasscode  Kind = "no-passcode"  // Acknowledged, MessageResult NoPasscodeSet
	LostMode    Kind = "lost-mode"    // Acknowledged, MessageResult DeviceInLostMode
	RequirePIN  Kind = "require-pin"  // Error with an ErrorChain unless the command has a PIN
	NotNowOnce  Kind = "not-now-once" // NotNow the first time per CommandUUID, then Acknowledged
	Offline     Kind = "offline"      // enrolls, then never checks in
	FormatError Kind = "format-error" // CommandFormatError for every command
)

var kinds = []Kind{Acknowledge, NoPasscode, LostMode, RequirePIN, NotNowOnce, Offline, FormatError}

// Kinds lists every Kind, in a stable order for tables and help text.
func Kinds() []Kind { return append([]Kind(nil), kinds...) }

// ParseKind accepts the name of a Kind.
func ParseKind(s string) (Kind, error) {
	for _, k := range kinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown behavior %q (want one of %v)", s, kinds)
}

// Describe says in a few words how a device of this kind answers DeviceLock.
func (k Kind) Describe() string {
	switch k {
	case Acknowledge:
		return "Acknowledged, MessageResult Success"
	case NoPasscode:
		return "Acknowledged, MessageResult NoPasscodeSet"
	case LostMode:
		return "Acknowledged, MessageResult DeviceInLostMode"
	case RequirePIN:
		return "Error (MCMDMErrorDomain) without a PIN, Acknowledged with one"
	case NotNowOnce:
		return "NotNow the first time, Acknowledged at the next check-in"
	case Offline:
		return "never checks in"
	case FormatError:
		return "CommandFormatError"
	}
	return "unknown behavior; acknowledges"
}

// Behave returns the behavior of a kind; an unknown kind acknowledges.
// (A Kind is a Behavior already; Behave stays for older callers.)
func Behave(k Kind) Behavior { return k }

// Offline reports whether the kind never checks in.
func (k Kind) Offline() bool { return k == Offline }

// Errors the simulated devices report. Apple documents the response keys but
// not stable codes ("do not rely on the codes"), so these are the
// simulator's choices in the domain real devices use; the wording of the
// request-type error is the one in Apple's localized strings.
const (
	ErrorDomain = "MCMDMErrorDomain"
	// ErrorCodePINRequired: a Mac whose Find My lock needs a PIN got none.
	ErrorCodePINRequired = 12066
	// ErrorCodeFormat: the command is not a DeviceLock the device can parse.
	ErrorCodeFormat = 12021
	// PINRequiredDescription is the LocalizedDescription of the PIN error.
	PINRequiredDescription = "A PIN is required to lock this Mac."
)

// Answer implements Behavior. An Offline kind, if asked directly, answers
// as Acknowledge would: it is offline, not broken.
func (k Kind) Answer(cmd apple.ParsedCommand, seen int) apple.Response {
	if cmd.RequestType != apple.RequestTypeDeviceLock || k == FormatError {
		return FormatErrorResponse(cmd.CommandUUID, fmt.Sprintf("“%s” is not a valid request type.", cmd.RequestType))
	}
	r := apple.Response{Status: apple.StatusAcknowledged, CommandUUID: cmd.CommandUUID, MessageResult: apple.MessageResultSuccess}
	switch k {
	case NoPasscode:
		r.MessageResult = apple.MessageResultNoPasscodeSet
	case LostMode:
		r.MessageResult = apple.MessageResultDeviceInLostMode
	case RequirePIN:
		if cmd.PIN == "" {
			return apple.Response{
				Status:      apple.StatusError,
				CommandUUID: cmd.CommandUUID,
				ErrorChain: []apple.ErrorChainItem{{
					ErrorCode:            ErrorCodePINRequired,
					ErrorDomain:          ErrorDomain,
					LocalizedDescription: PINRequiredDescription,
					USEnglishDescription: PINRequiredDescription,
				}},
			}
		}
	case NotNowOnce:
		if seen == 0 {
			return apple.Response{Status: apple.StatusNotNow, CommandUUID: cmd.CommandUUID}
		}
	}
	return r
}

// FormatErrorResponse is a device's answer to a command it cannot parse or run.
func FormatErrorResponse(commandUUID, description string) apple.Response {
	return apple.Response{
		Status:      apple.StatusCommandFormatError,
		CommandUUID: commandUUID,
		ErrorChain: []apple.ErrorChainItem{{
			ErrorCode:            ErrorCodeFormat,
			ErrorDomain:          ErrorDomain,
			LocalizedDescription: description,
			USEnglishDescription: description,
		}},
	}
}
