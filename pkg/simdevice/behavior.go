package simdevice

import (
	"github.com/mdmctl/mdmctl/pkg/apple"
)

// Behavior decides how a device answers a command. seen counts earlier
// deliveries of the same CommandUUID to this device.
type Behavior interface {
	Answer(cmd apple.ParsedCommand, seen int) apple.Response
	// Offline devices never check in.
	Offline() bool
}

// Kind names the behaviors a fleet table can list.
type Kind string

// The behaviors admins meet when they lock devices.
const (
	Acknowledge Kind = "acknowledge"  // Acknowledged, MessageResult Success
	NoPasscode  Kind = "no-passcode"  // Acknowledged, MessageResult NoPasscodeSet
	LostMode    Kind = "lost-mode"    // Acknowledged, MessageResult DeviceInLostMode
	RequirePIN  Kind = "require-pin"  // Error with an ErrorChain unless the command has a PIN
	NotNowOnce  Kind = "not-now-once" // NotNow the first time, then Acknowledged
	Offline     Kind = "offline"      // never checks in
	FormatError Kind = "format-error" // CommandFormatError for every command
)

// Behave returns the behavior of a kind; an unknown kind acknowledges.
func Behave(k Kind) Behavior { return kindBehavior(k) }

type kindBehavior Kind

func (k kindBehavior) Offline() bool { return Kind(k) == Offline }

// PIN-required error: the domain and code a Mac reports when Find My needs a
// PIN that the command lacks (Apple documents that codes are not stable).
const (
	pinErrorDomain = "MCMDMErrorDomain"
	pinErrorCode   = 12066
)

func (k kindBehavior) Answer(cmd apple.ParsedCommand, seen int) apple.Response {
	r := apple.Response{Status: apple.StatusAcknowledged, CommandUUID: cmd.CommandUUID}
	if cmd.RequestType != apple.RequestTypeDeviceLock || Kind(k) == FormatError {
		r.Status = apple.StatusCommandFormatError
		r.ErrorChain = []apple.ErrorChainItem{{ErrorCode: 12001, ErrorDomain: pinErrorDomain,
			LocalizedDescription: "Unrecognized command: " + cmd.RequestType}}
		return r
	}
	switch Kind(k) {
	case NoPasscode:
		r.MessageResult = apple.MessageResultNoPasscodeSet
	case LostMode:
		r.MessageResult = apple.MessageResultDeviceInLostMode
	case RequirePIN:
		if cmd.PIN == "" {
			r.Status = apple.StatusError
			r.ErrorChain = []apple.ErrorChainItem{{
				ErrorCode:            pinErrorCode,
				ErrorDomain:          pinErrorDomain,
				LocalizedDescription: "A PIN is required to lock this Mac.",
				USEnglishDescription: "A PIN is required to lock this Mac.",
			}}
			return r
		}
		r.MessageResult = apple.MessageResultSuccess
	case NotNowOnce:
		if seen == 0 {
			return apple.Response{Status: apple.StatusNotNow, CommandUUID: cmd.CommandUUID}
		}
		r.MessageResult = apple.MessageResultSuccess
	default:
		r.MessageResult = apple.MessageResultSuccess
	}
	return r
}
