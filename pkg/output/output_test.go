package output

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/iostreams"
	"github.com/mdmctl/mdmctl/pkg/report"
)

// The hand-written JSON Lines encoder must write exactly what
// encoding/json writes.
func TestAppendDeviceMatchesEncodingJSON(t *testing.T) {
	devices := []report.Device{
		{ID: "A", Outcome: report.Queued, CommandUUID: "U"},
		{ID: "B", Outcome: report.Acknowledged, Queue: report.QueuedNotPushed, CommandUUID: "U", NotNow: 2,
			Response: &apple.Response{Status: "Acknowledged", UDID: "B", MessageResult: "Success"}},
		{ID: "C<&>", Outcome: report.Failed, Error: "line\nbreak \"quoted\" \\ tab\t \x01 \u2028 \xff é 🔒", Source: "f.csv:3", Warnings: []string{"w1", "w2"}, PIN: "123456"},
		{ID: "", Outcome: ""},
		{ID: "D", Outcome: report.Queued, CommandUUID: "U", EarlierRun: true},
		{ID: "M1", Outcome: report.Refused, Error: "guard", Facts: &apple.Information{OSVersion: "11.4", ProductName: "MacBookAir10,1", PINRequiredForDeviceLock: new(false)}},
	}
	for _, d := range devices {
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendDevice(nil, d)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want)+"\n" {
			t.Errorf("appendDevice\n got %s\nwant %s", got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "<&>", "\x00\x1f\x7f", "\u2028\u2029", "\xff\xfe", "é🔒"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

func TestPrinters(t *testing.T) {
	run := report.Run{RequestType: "DeviceLock", Summary: report.Summary{report.Queued: 1, report.Failed: 1}}
	devs := []report.Device{{ID: "A", Outcome: report.Queued, CommandUUID: "U"}, {ID: "B", Outcome: report.Failed, Error: "nope"}}
	for format, want := range map[string][]string{
		FormatText:  {"A  queued  command U\n", "B  failed  nope\n"},
		FormatJSONL: {`{"id":"A","outcome":"queued","command_uuid":"U"}` + "\n", `{"id":"B","outcome":"failed","error":"nope"}` + "\n"},
		FormatJSON:  {`"devices": [`, `"id": "B"`, `"summary": {`},
	} {
		streams, _, out, errOut := iostreams.Test()
		p, err := New(format, streams)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range devs {
			if err := p.Device(d); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.End(run); err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: output lacks %q:\n%s", format, w, out.String())
			}
		}
		if format == FormatText && errOut.String() != "2 devices: 1 queued, 1 failed\n" {
			t.Errorf("text summary = %q", errOut.String())
		}
	}
	if _, err := New("yaml", nil); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestColorOnlyWhenWanted(t *testing.T) {
	streams, _, out, _ := iostreams.Test()
	streams.SetColor(true)
	p, _ := New(FormatText, streams)
	_ = p.Device(report.Device{ID: "A", Outcome: report.Failed})
	_ = p.Flush()
	if !strings.Contains(out.String(), "\x1b[31mfailed\x1b[0m") {
		t.Errorf("no red outcome: %q", out.String())
	}
}

func TestFactsText(t *testing.T) {
	for _, tt := range []struct {
		in   apple.Information
		want string
	}{
		{apple.Information{OSVersion: "11.4", BuildVersion: "20F71", ProductName: "MacBookAir10,1", Model: "MacBookAir10,1", ModelName: "MacBook Air", PINRequiredForDeviceLock: new(false)},
			"MacBookAir10,1 (MacBook Air), OS 11.4 (20F71), PIN not required"},
		{apple.Information{OSVersion: "14.5", ProductName: "Mac15,3", IsAppleSilicon: new(true), PINRequiredForDeviceLock: new(true)},
			"Mac15,3, OS 14.5, Apple silicon, PIN required"},
		{apple.Information{ModelName: "iPhone"}, "iPhone"},
		{apple.Information{}, "nothing it was asked"},
	} {
		if got := Facts(tt.in); got != tt.want {
			t.Errorf("Facts(%+v) = %q, want %q", tt.in, got, tt.want)
		}
	}
	d := report.Device{ID: "M", Outcome: report.Refused, Facts: &apple.Information{OSVersion: "11.4"}}
	if got := Detail(d); !strings.Contains(got, "answered: OS 11.4") {
		t.Errorf("Detail = %q, want the answered facts", got)
	}
}
