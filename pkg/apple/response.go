package apple

import (
	"fmt"

	"howett.net/plist"
)

// Status values a device reports for a command (DeviceLockResponse.Status).
const (
	StatusAcknowledged       = "Acknowledged"
	StatusError              = "Error"
	StatusCommandFormatError = "CommandFormatError"
	StatusNotNow             = "NotNow"
	StatusIdle               = "Idle"
)

// MessageResult values of a DeviceLockResponse.
const (
	MessageResultSuccess          = "Success"
	MessageResultDeviceInLostMode = "DeviceInLostMode"
	MessageResultNoPasscodeSet    = "NoPasscodeSet"
	MessageResultUnknown          = "Unknown"
)

// ErrorChainItem is one entry of a response's ErrorChain; the first is the top-level error.
type ErrorChainItem struct {
	ErrorCode            int    `plist:"ErrorCode" json:"error_code"`
	ErrorDomain          string `plist:"ErrorDomain" json:"error_domain"`
	LocalizedDescription string `plist:"LocalizedDescription" json:"localized_description"`
	USEnglishDescription string `plist:"USEnglishDescription,omitempty" json:"us_english_description,omitempty"`
}

// Response is a device's DeviceLockResponse. Only Status is always present.
type Response struct {
	Status           string           `plist:"Status" json:"status"`
	CommandUUID      string           `plist:"CommandUUID,omitempty" json:"command_uuid,omitempty"`
	UDID             string           `plist:"UDID,omitempty" json:"udid,omitempty"`
	EnrollmentID     string           `plist:"EnrollmentID,omitempty" json:"enrollment_id,omitempty"`
	EnrollmentUserID string           `plist:"EnrollmentUserID,omitempty" json:"enrollment_user_id,omitempty"`
	MessageResult    string           `plist:"MessageResult,omitempty" json:"message_result,omitempty"`
	ErrorChain       []ErrorChainItem `plist:"ErrorChain,omitempty" json:"error_chain,omitempty"`
	NotOnConsole     bool             `plist:"NotOnConsole,omitempty" json:"not_on_console,omitempty"`
	UserID           string           `plist:"UserID,omitempty" json:"user_id,omitempty"`
	UserLongName     string           `plist:"UserLongName,omitempty" json:"user_long_name,omitempty"`
	UserShortName    string           `plist:"UserShortName,omitempty" json:"user_short_name,omitempty"`
	// QueryResponses is a DeviceInformation answer's; read it with
	// Information. Output shows the facts it gives, not the raw values.
	QueryResponses map[string]any `plist:"QueryResponses,omitempty" json:"-"`
}

// DecodeResponse parses a device's result plist (XML or binary).
func DecodeResponse(data []byte) (Response, error) {
	var r Response
	if _, err := plist.Unmarshal(data, &r); err != nil {
		return Response{}, fmt.Errorf("decoding response plist: %w", err)
	}
	if r.Status == "" {
		return Response{}, fmt.Errorf("response plist has no Status")
	}
	return r, nil
}

// Encode renders the response as an XML property list, as a device sends it.
func (r Response) Encode() ([]byte, error) {
	return plist.MarshalIndent(r, plist.XMLFormat, "\t")
}

// DeviceID is the identifier the device reported: its UDID for device
// enrollments, else its EnrollmentID.
func (r Response) DeviceID() string {
	if r.UDID != "" {
		return r.UDID
	}
	return r.EnrollmentID
}

// Final reports whether the status ends the command: Acknowledged, Error or
// CommandFormatError. NotNow means the server will ask again; Idle is a poll.
func (r Response) Final() bool {
	switch r.Status {
	case StatusAcknowledged, StatusError, StatusCommandFormatError:
		return true
	}
	return false
}

// Failed reports whether the device refused or could not run the command.
func (r Response) Failed() bool {
	return r.Status == StatusError || r.Status == StatusCommandFormatError
}
