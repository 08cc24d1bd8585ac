package targets

import (
	"errors"
	"strings"
	"testing"
)

func readIDs(t *testing.T, in string) ([]Entry, error) {
	t.Helper()
	var out []Entry
	err := ReadIDs(in, "ids.txt", func(e Entry) error { out = append(out, e); return nil })
	return out, err
}

func readCSV(t *testing.T, in string) ([]Entry, error) {
	t.Helper()
	var out []Entry
	err := ReadCSV(strings.NewReader(in), "f.csv", func(e Entry) error { out = append(out, e); return nil })
	return out, err
}

func TestReadIDs(t *testing.T) {
	got, err := readIDs(t, "# header\nA\n\n  B  \r\nC\n#D\nlast-without-newline")
	if err != nil {
		t.Fatal(err)
	}
	var ids, sources []string
	for _, e := range got {
		ids = append(ids, e.ID)
		sources = append(sources, e.Source())
	}
	if strings.Join(ids, ",") != "A,B,C,last-without-newline" || strings.Join(sources, ",") != "ids.txt:2,ids.txt:4,ids.txt:5,ids.txt:7" {
		t.Errorf("ids %v at %v", ids, sources)
	}
	// A Windows editor's file: a byte-order mark and CRLF line ends.
	bom, err := readIDs(t, "\ufeffDEV-1\r\nDEV-2\r\n")
	if err != nil || len(bom) != 2 || bom[0].ID != "DEV-1" || bom[1].ID != "DEV-2" {
		t.Errorf("BOM and CRLF should not be part of the IDs: %+v, %v", bom, err)
	}
	long, err := readIDs(t, "A\n"+strings.Repeat("x", MaxLine+10)+"\nB\n")
	if err != nil || len(long) != 3 || long[1].Err == nil || long[1].Source() != "ids.txt:2" || long[2].ID != "B" {
		t.Errorf("an over-long line should be one entry with an error and reading go on: %+v, %v", long, err)
	}
	stdin, _ := func() ([]Entry, error) {
		var out []Entry
		err := ReadIDs("X\n", "-", func(e Entry) error { out = append(out, e); return nil })
		return out, err
	}()
	if stdin[0].Source() != "stdin:1" {
		t.Errorf("stdin source = %q", stdin[0].Source())
	}
	stop := errors.New("stop")
	if err := ReadIDs("A\nB\n", "x", func(Entry) error { return stop }); err != stop {
		t.Errorf("a callback error must end reading, got %v", err)
	}
}

func TestReadCSV(t *testing.T) {
	got, err := readCSV(t, "\ufeffUDID, OS_Version ,model,platform,message,phone,pin\n"+
		"MAC1,11.4,\"MacBookAir10,1\",macos,\"Call, please\",408,123456\n"+
		",,,,,,\n"+
		"#COMMENTED,,,,,,\n"+
		"SHORT,1\n"+
		"IPHONE,17.5,,ios,,,\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("entries: %+v", got)
	}
	m := got[0]
	if m.ID != "MAC1" || m.OSVersion != "11.4" || m.Model != "MacBookAir10,1" || m.Platform != "macos" || m.Message != "Call, please" || m.Phone != "408" || m.PIN != "123456" || m.Source() != "f.csv:2" {
		t.Errorf("row = %+v", m)
	}
	if got[1].Err == nil || got[1].Source() != "f.csv:5" {
		t.Errorf("short row = %+v", got[1])
	}
	if got[2].ID != "IPHONE" || got[2].Source() != "f.csv:6" {
		t.Errorf("last row = %+v", got[2])
	}
	for in, want := range map[string]string{
		"":                 "empty CSV file",
		"model\nX\n":       "no udid column",
		"udid,asset_tag\n": `unknown CSV column "asset_tag"`,
		"udid,UDID\nX,Y\n": "appears twice",
	} {
		if _, err := readCSV(t, in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("header %q: %v, want %q", in, err, want)
		}
	}
	bad, err := readCSV(t, "udid\nA\"B\nC\n")
	if err != nil || len(bad) != 2 || bad[0].Err == nil || bad[0].Source() != "f.csv:2" || bad[1].ID != "C" {
		t.Errorf("a malformed row should be reported and reading go on: %+v, %v", bad, err)
	}
	if _, err := readCSV(t, "udid\n"+strings.Repeat("x", MaxLine+1)); err == nil || !strings.Contains(err.Error(), "line longer than") {
		t.Errorf("an endless line: %v", err)
	}
}

func FuzzReadIDs(f *testing.F) {
	f.Add("A\n# c\n\nB\r\n")
	f.Add(strings.Repeat("x", 100))
	f.Fuzz(func(t *testing.T, in string) {
		_ = ReadIDs(in, "f", func(e Entry) error {
			if e.Err == nil && (e.ID == "" || strings.HasPrefix(e.ID, "#") || strings.TrimSpace(e.ID) != e.ID) {
				t.Fatalf("bad entry %+v from %q", e, in)
			}
			if e.Line < 1 {
				t.Fatalf("entry without a line: %+v", e)
			}
			return nil
		})
	})
}

func FuzzReadCSV(f *testing.F) {
	f.Add("udid,model\nA,\"Mac14,2\"\n")
	f.Add("udid\nA\"B\n")
	f.Fuzz(func(t *testing.T, in string) {
		_ = ReadCSV(strings.NewReader(in), "f", func(e Entry) error {
			if e.Line < 1 {
				t.Fatalf("entry without a line: %+v", e)
			}
			return nil
		})
	})
}

func TestReadCSVSerialColumn(t *testing.T) {
	got, err := readCSV(t, "serial,udid,message\nC02X1,,Return it\n,U2,\nC02X3,U3,\n# comment,,\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Serial != "C02X1" || got[0].ID != "" || got[0].Message != "Return it" ||
		got[1].ID != "U2" || got[1].Serial != "" || got[2].ID != "U3" || got[2].Serial != "C02X3" {
		t.Fatalf("rows %+v", got)
	}
	if _, err := readCSV(t, "serial\nC02X1\n"); err != nil {
		t.Errorf("a serial column alone: %v", err)
	}
}
