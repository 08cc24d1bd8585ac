package apple

import (
	"fmt"
	"regexp"
	"unicode"
	"unicode/utf8"
)

// maxTextLen bounds Message and PhoneNumber: far above anything a Lock Screen
// shows, low enough that a pasted file is caught.
const maxTextLen = 1024

// maxIDLen bounds a target ID; UDIDs and enrollment IDs are well under it.
const maxIDLen = 256

// ValidatePIN accepts exactly six ASCII digits, the Find My PIN every vendor
// enforces. The PIN is never echoed in the error.
func ValidatePIN(pin string) error {
	if len(pin) != 6 {
		return fmt.Errorf("must be exactly six digits 0-9")
	}
	for i := 0; i < len(pin); i++ {
		if pin[i] < '0' || pin[i] > '9' {
			return fmt.Errorf("must be exactly six digits 0-9")
		}
	}
	return nil
}

// ValidateText checks a Lock Screen string (message or phone number): valid
// UTF-8, no control characters, bounded length. Empty means unset.
func ValidateText(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("is not valid UTF-8")
	}
	if len(s) > maxTextLen {
		return fmt.Errorf("is longer than %d bytes", maxTextLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("contains control character %U", r)
		}
	}
	return nil
}

// ValidateTargetID checks an enrollment ID (UDID or EnrollmentID). The
// forbidden characters would split or reroute NanoMDM's /v1/enqueue/{ids} path.
func ValidateTargetID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("target ID is empty")
	case !utf8.ValidString(id):
		return fmt.Errorf("target ID %q is not valid UTF-8", id)
	case len(id) > maxIDLen:
		return fmt.Errorf("target ID %.20q... is longer than %d bytes", id, maxIDLen)
	}
	if i := badASCIIByte(id); i < 0 {
		return nil // every byte plain ASCII: the common case, checked without decoding
	}
	for _, r := range id {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("target ID %q contains whitespace or a control character", id)
		}
		if unicode.Is(unicode.Cf, r) {
			// Zero-width spaces, joiners, direction marks and BOMs come with
			// text copied from web pages and chat; the server would see an ID
			// no device has.
			return fmt.Errorf("target ID %+q contains the invisible character %U (copied from a web page or a document?)", id, r)
		}
	}
	return nil
}

// badASCIIByte returns the index of the first byte of id that is not a
// printable ASCII character allowed in a target ID, or -1.
func badASCIIByte(id string) int {
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f {
			return i
		}
	}
	return -1
}

// ValidateModel accepts a printable model identifier. An unrecognized but
// well-formed identifier is allowed: the guard treats it as unknown.
func ValidateModel(model string) error {
	if len(model) > 64 {
		return fmt.Errorf("model identifier longer than 64 bytes")
	}
	for _, r := range model {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' {
			return fmt.Errorf("model identifier %q must be printable ASCII without spaces, like MacBookAir10,1", model)
		}
	}
	return nil
}

// RedactPIN replaces the PIN value of a command plist, for printing.
func RedactPIN(payload []byte) []byte {
	return pinValueRE.ReplaceAll(payload, []byte("${1}REDACTED${2}"))
}

var pinValueRE = regexp.MustCompile(`(<key>PIN</key>\s*<string>)[^<]*(</string>)`)
