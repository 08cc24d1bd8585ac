package output

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/mdmctl/mdmctl/pkg/report"
)

// appendDevice appends d as one JSON object, byte for byte what
// encoding/json writes for report.Device, without reflection: at fleet
// scale the JSON Lines output is most of mdmctl's own CPU time, which on a
// small machine is taken from the MDM server it talks to.
func appendDevice(b []byte, d report.Device) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = appendString(b, d.ID)
	b = append(b, `,"outcome":`...)
	b = appendString(b, string(d.Outcome))
	field := func(name, v string) {
		if v != "" {
			b = append(b, ',', '"')
			b = append(b, name...)
			b = append(b, '"', ':')
			b = appendString(b, v)
		}
	}
	field("command_uuid", d.CommandUUID)
	field("queue", string(d.Queue))
	field("error", d.Error)
	if d.Response != nil {
		resp, err := json.Marshal(d.Response)
		if err != nil {
			return nil, err
		}
		b = append(b, `,"response":`...)
		b = append(b, resp...)
	}
	if d.NotNow != 0 {
		b = append(b, `,"not_now":`...)
		b = strconv.AppendInt(b, int64(d.NotNow), 10)
	}
	if len(d.Warnings) > 0 {
		b = append(b, `,"warnings":[`...)
		for i, w := range d.Warnings {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, w)
		}
		b = append(b, ']')
	}
	field("source", d.Source)
	field("pin", d.PIN)
	if d.EarlierRun {
		b = append(b, `,"earlier_run":true`...)
	}
	if d.Facts != nil {
		facts, err := json.Marshal(d.Facts)
		if err != nil {
			return nil, err
		}
		b = append(b, `,"facts":`...)
		b = append(b, facts...)
	}
	return append(b, '}', '\n'), nil
}

const hex = "0123456789abcdef"

// plainASCII marks the ASCII bytes encoding/json copies as they are: one
// lookup per byte instead of six comparisons.
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString quotes s as encoding/json does, HTML escaping included.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if plainASCII[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
