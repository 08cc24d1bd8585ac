package apple

import (
	"fmt"
	"strings"

	"github.com/google/uuid"
	"howett.net/plist"
)

// RequestTypeDeviceLock is the RequestType of Apple's DeviceLock command.
const RequestTypeDeviceLock = "DeviceLock"

// DeviceLock holds the DeviceLock keys an admin chooses. Empty strings and a
// false tether flag are omitted from the payload, as the schema marks them optional.
type DeviceLock struct {
	PIN                          string
	Message                      string
	PhoneNumber                  string
	RequestRequiresNetworkTether bool
}

// deviceLockCommand is the Command dictionary exactly as Apple's schema names its keys.
type deviceLockCommand struct {
	RequestType                  string `plist:"RequestType"`
	PIN                          string `plist:"PIN,omitempty"`
	Message                      string `plist:"Message,omitempty"`
	PhoneNumber                  string `plist:"PhoneNumber,omitempty"`
	RequestRequiresNetworkTether bool   `plist:"RequestRequiresNetworkTether,omitempty"`
}

type envelope struct {
	Command     deviceLockCommand `plist:"Command"`
	CommandUUID string            `plist:"CommandUUID"`
}

// NewCommandUUID returns a fresh uppercase RFC 4122 UUID, the convention of
// Apple's and most MDM servers' examples.
func NewCommandUUID() string {
	return strings.ToUpper(uuid.NewString())
}

// Payload encodes the DeviceLock command envelope as an XML property list.
func (d DeviceLock) Payload(commandUUID string) ([]byte, error) {
	if commandUUID == "" {
		return nil, fmt.Errorf("command UUID is empty")
	}
	env := envelope{
		CommandUUID: commandUUID,
		Command: deviceLockCommand{
			RequestType:                  RequestTypeDeviceLock,
			PIN:                          d.PIN,
			Message:                      d.Message,
			PhoneNumber:                  d.PhoneNumber,
			RequestRequiresNetworkTether: d.RequestRequiresNetworkTether,
		},
	}
	// XMLFormat explicitly: the automatic choice may be binary.
	return plist.MarshalIndent(env, plist.XMLFormat, "\t")
}

// ParsedCommand is a decoded DeviceLock command envelope, as a device or a
// test server sees it.
type ParsedCommand struct {
	CommandUUID string
	RequestType string
	DeviceLock
}

// ParseCommand decodes a command plist (XML or binary) and returns its
// envelope; it fails when either required top-level key is missing.
func ParseCommand(data []byte) (ParsedCommand, error) {
	var env envelope
	if _, err := plist.Unmarshal(data, &env); err != nil {
		return ParsedCommand{}, fmt.Errorf("decoding command plist: %w", err)
	}
	if env.CommandUUID == "" || env.Command.RequestType == "" {
		return ParsedCommand{}, fmt.Errorf("command plist lacks CommandUUID or Command.RequestType")
	}
	return ParsedCommand{
		CommandUUID: env.CommandUUID,
		RequestType: env.Command.RequestType,
		DeviceLock: DeviceLock{
			PIN:                          env.Command.PIN,
			Message:                      env.Command.Message,
			PhoneNumber:                  env.Command.PhoneNumber,
			RequestRequiresNetworkTether: env.Command.RequestRequiresNetworkTether,
		},
	}, nil
}
