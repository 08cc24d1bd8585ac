package webhook

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/micromdm/nanomdm/mdm"
	nanowebhook "github.com/micromdm/nanomdm/service/webhook"
	"howett.net/plist"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

var update = flag.Bool("update", false, "rewrite testdata from NanoMDM's webhook service")

const (
	exampleUDID    = "00008020-000915083C80012E"
	capturedEvent  = "testdata/nanomdm-devicelock-acknowledged.json"
	appleExamplePL = "../apple/testdata/apple-example-response.plist"
)

var appleExample = apple.Response{Status: apple.StatusAcknowledged, CommandUUID: "0001_DeviceLock", UDID: exampleUDID, MessageResult: apple.MessageResultSuccess}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The captured event in testdata must be, byte for byte, what NanoMDM
// v0.9.0 posts when a device sends Apple's example DeviceLock response;
// only created_at is pinned. go test -run Captured -update rewrites it.
func TestCapturedEventIsNanoMDMs(t *testing.T) {
	body, _ := nanoReport(t, deviceEnrollment(exampleUDID), readFile(t, appleExamplePL), nil)
	var ev nanowebhook.EventJson
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	ev.CreatedAt = time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	want, err := json.Marshal(&ev)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile(capturedEvent, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := readFile(t, capturedEvent)
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from NanoMDM's event (rerun with -update)\n got: %s\nwant: %s", capturedEvent, got, want)
	}

	e, err := DecodeEvent(got)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.Response()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, appleExample) {
		t.Errorf("captured event decodes to %+v, want Apple's example %+v", r, appleExample)
	}
	if e.Topic != TopicConnect || e.EventID != testEventID || !e.CreatedAt.Equal(ev.CreatedAt) {
		t.Errorf("envelope = %q %q %s", e.Topic, e.EventID, e.CreatedAt)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestDecodeEvent(t *testing.T) {
	example := readFile(t, appleExamplePL)
	errorResp := apple.Response{Status: apple.StatusError, CommandUUID: "C-ERR", UDID: "MAC-1", ErrorChain: []apple.ErrorChainItem{
		{ErrorCode: 12066, ErrorDomain: "MCMDMErrorDomain", LocalizedDescription: "A PIN is required.", USEnglishDescription: "A PIN is required."},
	}}
	userEnrollment := apple.Response{Status: apple.StatusAcknowledged, CommandUUID: "C-UE", EnrollmentID: "UE-7F3A", MessageResult: apple.MessageResultSuccess}
	binary, err := plist.Marshal(appleExample, plist.BinaryFormat)
	if err != nil {
		t.Fatal(err)
	}
	mustJSON := func(b []byte, _ string) []byte { return b }
	withParams := deviceEnrollment(exampleUDID)
	withParams.params = map[string]string{"tenant": "blue"}

	tests := []struct {
		name    string
		body    []byte
		ack     *Acknowledge // compared without RawPayload
		raw     []byte       // the RawPayload to expect, when ack is set
		checkin bool
		resp    *apple.Response // nil: Response must fail
	}{
		{
			name: "Apple's example through NanoMDM",
			body: mustJSON(nanoReport(t, deviceEnrollment(exampleUDID), example, nil)),
			ack: &Acknowledge{UDID: exampleUDID, IDs: &IDs{ID: exampleUDID, Type: "Device"},
				Status: "Acknowledged", CommandUUID: "0001_DeviceLock"},
			raw:  example,
			resp: &appleExample,
		},
		{
			name: "error with its chain",
			body: mustJSON(nanoResponse(t, deviceEnrollment("MAC-1"), errorResp, nil)),
			ack:  &Acknowledge{UDID: "MAC-1", IDs: &IDs{ID: "MAC-1", Type: "Device"}, Status: "Error", CommandUUID: "C-ERR"},
			resp: &errorResp,
		},
		{
			name: "NotNow",
			body: mustJSON(nanoResponse(t, deviceEnrollment("MAC-2"), apple.Response{Status: apple.StatusNotNow, CommandUUID: "C-NN", UDID: "MAC-2"}, nil)),
			ack:  &Acknowledge{UDID: "MAC-2", IDs: &IDs{ID: "MAC-2", Type: "Device"}, Status: "NotNow", CommandUUID: "C-NN"},
			resp: &apple.Response{Status: apple.StatusNotNow, CommandUUID: "C-NN", UDID: "MAC-2"},
		},
		{
			name: "Idle poll has no command UUID",
			body: mustJSON(nanoResponse(t, deviceEnrollment("MAC-3"), apple.Response{Status: apple.StatusIdle, UDID: "MAC-3"}, nil)),
			ack:  &Acknowledge{UDID: "MAC-3", IDs: &IDs{ID: "MAC-3", Type: "Device"}, Status: "Idle"},
			resp: &apple.Response{Status: apple.StatusIdle, UDID: "MAC-3"},
		},
		{
			name: "user enrollment reports an EnrollmentID",
			body: mustJSON(nanoResponse(t, enrollment{id: "UE-7F3A", typ: mdm.UserEnrollmentDevice}, userEnrollment, nil)),
			ack: &Acknowledge{EnrollmentID: "UE-7F3A", IDs: &IDs{ID: "UE-7F3A", Type: "User Enrollment (Device)"},
				Status: "Acknowledged", CommandUUID: "C-UE"},
			resp: &userEnrollment,
		},
		{
			name: "URL parameters of the device request",
			body: mustJSON(nanoReport(t, withParams, example, nil)),
			ack: &Acknowledge{UDID: exampleUDID, IDs: &IDs{ID: exampleUDID, Type: "Device"}, Status: "Acknowledged",
				CommandUUID: "0001_DeviceLock", URLParams: map[string]string{"tenant": "blue"}},
			resp: &appleExample,
		},
		{
			name: "binary plist report",
			body: mustJSON(nanoReport(t, deviceEnrollment(exampleUDID), binary, nil)),
			ack:  &Acknowledge{UDID: exampleUDID, IDs: &IDs{ID: exampleUDID, Type: "Device"}, Status: "Acknowledged", CommandUUID: "0001_DeviceLock"},
			raw:  binary,
			resp: &appleExample,
		},
		{
			name: "MicroMDM shape: no ids, no enrollment_id, null url_params",
			body: []byte(`{"topic":"mdm.Connect","event_id":"b0b1","created_at":"2026-11-28T06:00:00.123456789Z",` +
				`"acknowledge_event":{"udid":"` + exampleUDID + `","status":"Acknowledged","command_uuid":"0001_DeviceLock",` +
				`"url_params":null,"raw_payload":"` + base64.StdEncoding.EncodeToString(example) + `"}}`),
			ack:  &Acknowledge{UDID: exampleUDID, Status: "Acknowledged", CommandUUID: "0001_DeviceLock"},
			raw:  example,
			resp: &appleExample,
		},
		{
			name: "identifiers missing from the plist come from the event",
			body: []byte(`{"topic":"mdm.Connect","created_at":"2026-11-28T06:00:00Z","acknowledge_event":{"udid":"X-1",` +
				`"status":"Acknowledged","command_uuid":"C-1","raw_payload":"` +
				b64(`<plist><dict><key>Status</key><string>Acknowledged</string></dict></plist>`) + `"}}`),
			ack:  &Acknowledge{UDID: "X-1", Status: "Acknowledged", CommandUUID: "C-1"},
			resp: &apple.Response{Status: apple.StatusAcknowledged, CommandUUID: "C-1", UDID: "X-1"},
		},
		{
			name: "no raw_payload: the event's own fields",
			body: []byte(`{"topic":"mdm.Connect","created_at":"2026-11-28T06:00:00Z","acknowledge_event":{"enrollment_id":"UE-1","status":"Error","command_uuid":"C-2"}}`),
			ack:  &Acknowledge{EnrollmentID: "UE-1", Status: "Error", CommandUUID: "C-2"},
			resp: &apple.Response{Status: apple.StatusError, CommandUUID: "C-2", EnrollmentID: "UE-1"},
		},
		{
			name: "raw_payload that is no plist",
			body: []byte(`{"topic":"mdm.Connect","created_at":"2026-11-28T06:00:00Z","acknowledge_event":{"udid":"X","status":"Acknowledged","command_uuid":"C","raw_payload":"` + b64("not a plist") + `"}}`),
			ack:  &Acknowledge{UDID: "X", Status: "Acknowledged", CommandUUID: "C"},
		},
		{
			name: "neither raw_payload nor status",
			body: []byte(`{"topic":"mdm.Connect","created_at":"2026-11-28T06:00:00Z","acknowledge_event":{"udid":"X","command_uuid":"C"}}`),
			ack:  &Acknowledge{UDID: "X", CommandUUID: "C"},
		},
		{
			name:    "Authenticate check-in",
			body:    nanoCheckin(t, deviceEnrollment(exampleUDID), []byte(authenticatePlist)),
			checkin: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := DecodeEvent(tt.body)
			if err != nil {
				t.Fatalf("DecodeEvent: %v\n%s", err, tt.body)
			}
			if ev.CreatedAt.IsZero() {
				t.Errorf("created_at not decoded: %s", tt.body)
			}
			if (ev.Checkin != nil) != tt.checkin || (ev.Acknowledge != nil) != (tt.ack != nil) {
				t.Fatalf("checkin %v acknowledge %v, want checkin %t acknowledge %t", ev.Checkin, ev.Acknowledge, tt.checkin, tt.ack != nil)
			}
			if tt.ack != nil {
				got := *ev.Acknowledge
				if tt.raw != nil && !bytes.Equal(got.RawPayload, tt.raw) {
					t.Errorf("raw_payload = %q, want the device's bytes %q", got.RawPayload, tt.raw)
				}
				got.RawPayload = nil
				if !reflect.DeepEqual(&got, tt.ack) {
					t.Errorf("acknowledge_event = %+v (ids %+v), want %+v (ids %+v)", got, got.IDs, *tt.ack, tt.ack.IDs)
				}
			}
			resp, err := ev.Response()
			switch {
			case tt.resp == nil && err == nil:
				t.Errorf("Response() = %+v, want an error", resp)
			case tt.resp != nil && err != nil:
				t.Errorf("Response(): %v", err)
			case tt.resp != nil && !reflect.DeepEqual(resp, *tt.resp):
				t.Errorf("Response() = %+v, want %+v", resp, *tt.resp)
			}
		})
	}
}

func TestDecodeCheckinEvent(t *testing.T) {
	ev, err := DecodeEvent(nanoCheckin(t, deviceEnrollment(exampleUDID), []byte(authenticatePlist)))
	if err != nil {
		t.Fatal(err)
	}
	c := ev.Checkin
	if ev.Topic != TopicAuthenticate || c.UDID != exampleUDID || c.IDs == nil || c.IDs.ID != exampleUDID ||
		c.IDs.Type != "Device" || string(c.RawPayload) != authenticatePlist {
		t.Errorf("check-in event = %q %+v", ev.Topic, c)
	}
	if _, err := ev.Response(); err == nil || !strings.Contains(err.Error(), `"mdm.Authenticate" carries no command response`) {
		t.Errorf("Response() of a check-in: %v", err)
	}
}

func TestDecodeEventErrors(t *testing.T) {
	for name, in := range map[string]string{
		"empty":              ``,
		"not JSON":           `<plist/>`,
		"array":              `[]`,
		"no topic":           `{"created_at":"2026-11-28T06:00:00Z","acknowledge_event":{"status":"Idle","raw_payload":""}}`,
		"raw_payload base64": `{"topic":"mdm.Connect","created_at":"2026-11-28T06:00:00Z","acknowledge_event":{"status":"Idle","raw_payload":"%%%"}}`,
		"created_at":         `{"topic":"mdm.Connect","created_at":"yesterday"}`,
		"trailing data":      `{"topic":"mdm.Connect","created_at":"2026-11-28T06:00:00Z"} {}`,
	} {
		if ev, err := DecodeEvent([]byte(in)); err == nil {
			t.Errorf("%s: DecodeEvent accepted %q as %+v", name, in, ev)
		}
	}
}

func TestVerifySignature(t *testing.T) {
	key := []byte("hook-secret")
	body, sig := nanoResponse(t, deviceEnrollment(exampleUDID), appleExample, key)
	if sig == "" {
		t.Fatal("NanoMDM sent no signature")
	}
	if Sign(key, body) != sig {
		t.Errorf("Sign = %q, NanoMDM says %q", Sign(key, body), sig)
	}
	tampered := bytes.Replace(body, []byte("Acknowledged"), []byte("Acknowledgex"), 1)
	for _, tt := range []struct {
		name   string
		key    []byte
		body   []byte
		header string
		ok     bool
	}{
		{"NanoMDM's own signature", key, body, sig, true},
		{"missing header", key, body, "", false},
		{"wrong key", []byte("other"), body, sig, false},
		{"tampered body", key, tampered, sig, false},
		{"not base64", key, body, "!!" + sig, false},
		{"truncated", key, body, base64.StdEncoding.EncodeToString(mustDecode(t, sig)[:16]), false},
		{"hex instead of base64", key, body, "deadbeef", false},
	} {
		err := VerifySignature(tt.key, tt.body, tt.header)
		if (err == nil) != tt.ok {
			t.Errorf("%s: VerifySignature = %v, want ok %t", tt.name, err, tt.ok)
		}
	}
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
