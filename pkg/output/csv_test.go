package output

import (
	"encoding/csv"
	"strings"
	"testing"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/iostreams"
	"github.com/mdmctl/mdmctl/pkg/report"
)

func TestCSVPrinter(t *testing.T) {
	streams, _, out, errOut := iostreams.Test()
	p, err := New(FormatCSV, streams)
	if err != nil {
		t.Fatal(err)
	}
	devices := []report.Device{
		{ID: "A", Outcome: report.Acknowledged, Queue: report.Queued, CommandUUID: "U1", NotNow: 1,
			Response: &apple.Response{Status: "Acknowledged"}},
		{ID: "B", Outcome: report.DeviceError, CommandUUID: "U1", Response: &apple.Response{Status: "Error",
			ErrorChain: []apple.ErrorChainItem{{ErrorDomain: "MCMDMErrorDomain", ErrorCode: 12066, LocalizedDescription: "PIN, \"required\"\nnow"}}}},
		{ID: "C", Outcome: report.Failed, Error: "=HYPERLINK(\"http://evil\")", Source: "f.csv:3", EarlierRun: true},
	}
	for _, d := range devices {
		if err := p.Device(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.End(report.Run{Summary: report.Summary{report.Acknowledged: 1, report.DeviceError: 1, report.Failed: 1}}); err != nil {
		t.Fatal(err)
	}
	// RFC 4180: CRLF line ends (inside quoted fields too), fields with commas,
	// quotes or line breaks quoted, quotes doubled.
	want := "id,outcome,queue,command_uuid,status,error_chain,error,not_now,source,earlier_run,pin\r\n" +
		"A,acknowledged,queued,U1,Acknowledged,,,1,,,\r\n" +
		"B,error,,U1,Error,\"MCMDMErrorDomain 12066: PIN, \"\"required\"\"\r\nnow\",,,,,\r\n" +
		"C,failed,,,,,\"'=HYPERLINK(\"\"http://evil\"\")\",,f.csv:3,true,\r\n"
	if out.String() != want {
		t.Errorf("csv output\n got %q\nwant %q", out.String(), want)
	}
	rows, err := csv.NewReader(strings.NewReader(out.String())).ReadAll()
	if err != nil || len(rows) != 4 || len(rows[2]) != len(deviceColumns) {
		t.Fatalf("reading it back: %d rows, %v", len(rows), err)
	}
	if !strings.HasPrefix(errOut.String(), "3 devices: ") {
		t.Errorf("summary on stderr = %q", errOut.String())
	}
}

func TestDefuseFormula(t *testing.T) {
	for in, want := range map[string]string{
		"=1+1": "'=1+1", "+1 408-555-5555": "'+1 408-555-5555", "-2": "'-2", "@SUM(A1)": "'@SUM(A1)",
		"\tx": "'\tx", "\rx": "'\rx", "plain": "plain", "": "", "a=b": "a=b",
	} {
		if got := defuseFormula(in); got != want {
			t.Errorf("defuseFormula(%q) = %q, want %q", in, got, want)
		}
	}
}
