package apple

import (
	"bytes"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"howett.net/plist"
)

func decodeMap(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if _, err := plist.Unmarshal(data, &m); err != nil {
		t.Fatalf("decoding plist: %v\n%s", err, data)
	}
	return m
}

// Apple's example request (apple/device-management,
// examples/mdm/commands/device.lock/example1.plist) must come out equal in
// content: same keys, same values, whatever the key order or indentation.
func TestPayloadEqualsAppleExample(t *testing.T) {
	want, err := os.ReadFile("testdata/apple-example-request.plist")
	if err != nil {
		t.Fatal(err)
	}
	got, err := DeviceLock{Message: "Lock Message", PhoneNumber: "408-555-5555"}.Payload("0001_DeviceLock")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(got, []byte("<?xml")) {
		t.Errorf("payload is not an XML plist:\n%s", got)
	}
	if g, w := decodeMap(t, got), decodeMap(t, want); !reflect.DeepEqual(g, w) {
		t.Errorf("payload differs from Apple's example\n got: %#v\nwant: %#v", g, w)
	}
}

func TestPayloadKeys(t *testing.T) {
	tests := []struct {
		name    string
		lock    DeviceLock
		command map[string]any
	}{
		{"unset keys omitted", DeviceLock{}, map[string]any{"RequestType": "DeviceLock"}},
		{"PIN is a string", DeviceLock{PIN: "012345"}, map[string]any{"RequestType": "DeviceLock", "PIN": "012345"}},
		{"tether true", DeviceLock{RequestRequiresNetworkTether: true}, map[string]any{"RequestType": "DeviceLock", "RequestRequiresNetworkTether": true}},
		{"all keys", DeviceLock{PIN: "123456", Message: "m", PhoneNumber: "p", RequestRequiresNetworkTether: true},
			map[string]any{"RequestType": "DeviceLock", "PIN": "123456", "Message": "m", "PhoneNumber": "p", "RequestRequiresNetworkTether": true}},
		{"markup and emoji survive", DeviceLock{Message: `Call <IT> & "ask" 🔒`}, map[string]any{"RequestType": "DeviceLock", "Message": `Call <IT> & "ask" 🔒`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := tt.lock.Payload("U-1")
			if err != nil {
				t.Fatal(err)
			}
			m := decodeMap(t, data)
			if m["CommandUUID"] != "U-1" || len(m) != 2 {
				t.Errorf("envelope = %#v, want exactly CommandUUID and Command", m)
			}
			if got := m["Command"]; !reflect.DeepEqual(got, tt.command) {
				t.Errorf("Command = %#v, want %#v", got, tt.command)
			}
			parsed, err := ParseCommand(data)
			if err != nil {
				t.Fatal(err)
			}
			if parsed.DeviceLock != tt.lock || parsed.CommandUUID != "U-1" || parsed.RequestType != RequestTypeDeviceLock {
				t.Errorf("round trip = %+v, want %+v", parsed, tt.lock)
			}
		})
	}
	if _, err := (DeviceLock{}).Payload(""); err == nil {
		t.Error("empty command UUID accepted")
	}
}

func TestNewCommandUUID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`)
	a, b := NewCommandUUID(), NewCommandUUID()
	if !re.MatchString(a) || a == b {
		t.Errorf("NewCommandUUID() = %q, %q; want distinct uppercase RFC 4122 v4 UUIDs", a, b)
	}
}

func TestParseCommandErrors(t *testing.T) {
	for name, in := range map[string]string{
		"garbage":        "not a plist",
		"no CommandUUID": `<plist><dict><key>Command</key><dict><key>RequestType</key><string>DeviceLock</string></dict></dict></plist>`,
		"no RequestType": `<plist><dict><key>CommandUUID</key><string>X</string><key>Command</key><dict/></dict></plist>`,
		"empty":          "",
	} {
		if _, err := ParseCommand([]byte(in)); err == nil {
			t.Errorf("%s: ParseCommand accepted %q", name, in)
		}
	}
}

func TestDecodeResponse(t *testing.T) {
	example, err := os.ReadFile("testdata/apple-example-response.plist")
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecodeResponse(example)
	if err != nil {
		t.Fatal(err)
	}
	want := Response{Status: StatusAcknowledged, CommandUUID: "0001_DeviceLock", UDID: "00008020-000915083C80012E", MessageResult: MessageResultSuccess}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("Apple's example = %+v, want %+v", r, want)
	}
	if !r.Final() || r.Failed() || r.DeviceID() != "00008020-000915083C80012E" {
		t.Errorf("Final/Failed/DeviceID wrong for %+v", r)
	}

	withChain := Response{Status: StatusError, CommandUUID: "C", EnrollmentID: "E-1", ErrorChain: []ErrorChainItem{
		{ErrorCode: 12066, ErrorDomain: "MCMDMErrorDomain", LocalizedDescription: "PIN required", USEnglishDescription: "PIN required"},
		{ErrorCode: 3, ErrorDomain: "FMErrorDomain", LocalizedDescription: "inner"},
	}}
	for _, format := range []int{plist.XMLFormat, plist.BinaryFormat} {
		data, err := plist.Marshal(withChain, format)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeResponse(data)
		if err != nil {
			t.Fatalf("format %d: %v", format, err)
		}
		if !reflect.DeepEqual(got, withChain) {
			t.Errorf("format %d: %+v, want %+v", format, got, withChain)
		}
		if got.DeviceID() != "E-1" || !got.Failed() || !got.Final() {
			t.Errorf("user enrollment error: DeviceID %q Failed %t Final %t", got.DeviceID(), got.Failed(), got.Final())
		}
	}
	if _, err := DecodeResponse([]byte(`<plist><dict><key>UDID</key><string>X</string></dict></plist>`)); err == nil {
		t.Error("a response without Status was accepted")
	}
}

func TestResponseStatusClasses(t *testing.T) {
	for _, tt := range []struct {
		status        string
		final, failed bool
	}{
		{StatusAcknowledged, true, false},
		{StatusError, true, true},
		{StatusCommandFormatError, true, true},
		{StatusNotNow, false, false},
		{StatusIdle, false, false},
	} {
		r := Response{Status: tt.status}
		if r.Final() != tt.final || r.Failed() != tt.failed {
			t.Errorf("%s: Final %t Failed %t, want %t %t", tt.status, r.Final(), r.Failed(), tt.final, tt.failed)
		}
	}
}

func TestRedactPIN(t *testing.T) {
	data, _ := DeviceLock{PIN: "482913", Message: "m"}.Payload("U")
	red := RedactPIN(data)
	if bytes.Contains(red, []byte("482913")) || !strings.Contains(string(red), "<string>REDACTED</string>") {
		t.Errorf("PIN not redacted:\n%s", red)
	}
	if _, err := ParseCommand(red); err != nil {
		t.Errorf("redacted plist no longer parses: %v", err)
	}
}

func BenchmarkPayload(b *testing.B) {
	lock := DeviceLock{PIN: "123456", Message: "Return to IT", PhoneNumber: "408-555-5555"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := lock.Payload("5E5E2F3A-0000-4000-8000-00000000C0DE"); err != nil {
			b.Fatal(err)
		}
	}
}
