package apple

import (
	"reflect"
	"testing"
)

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"11", "11.4.1", "10.15.7", "", "11..4", "١١"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			return
		}
		again, err := ParseVersion(v.String())
		if err != nil || again.Compare(v) != 0 {
			t.Fatalf("%q -> %s does not round trip: %v", s, v, err)
		}
	})
}

func FuzzModelFacts(f *testing.F) {
	for _, s := range []string{"MacBookAir10,1", "iMacPro1,1", "Mac14,8", "iPhone11,8", "", "Foo99999999999999999999,1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, a, known := ModelFacts(s)
		if !known && (p != PlatformUnknown || a != ArchUnknown) {
			t.Fatalf("unknown model %q has facts %q %s", s, p, a)
		}
		if a != ArchUnknown && p != PlatformMacOS {
			t.Fatalf("%q: an architecture for a non-Mac", s)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte(`<plist><dict><key>Status</key><string>Acknowledged</string></dict></plist>`))
	f.Add([]byte("bplist00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeResponse(data)
		if err == nil && r.Status == "" {
			t.Fatal("decoded a response without Status")
		}
	})
}

func FuzzParseCommand(f *testing.F) {
	p, _ := DeviceLock{PIN: "123456", Message: "m"}.Payload("U")
	f.Add(p)
	f.Add([]byte("<plist/>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCommand(data)
		if err == nil && (c.CommandUUID == "" || c.RequestType == "") {
			t.Fatal("parsed a command without its required keys")
		}
	})
}

func FuzzDecodeInformation(f *testing.F) {
	f.Add([]byte(m1Answer))
	f.Add([]byte(`<plist><dict><key>Status</key><string>Acknowledged</string><key>QueryResponses</key><dict><key>OSVersion</key><integer>11</integer></dict></dict></plist>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeResponse(data)
		if err != nil {
			return
		}
		in := r.Information()
		d := in.Device()
		if d.OSVersion != nil && d.OSVersion.String() == "" {
			t.Fatal("an empty version counted as known")
		}
		if d.Model != "" && ValidateModel(d.Model) != nil {
			t.Fatalf("model %q taken from an answer that does not validate", d.Model)
		}
		if _, _, known := ModelFacts(d.Model); !known && d.Platform != PlatformUnknown {
			t.Fatalf("platform %s from unknown model %q", d.Platform, d.Model)
		}
		// What a device answered, sent again, reads the same.
		again := Response{Status: r.Status, QueryResponses: in.QueryResponses()}.Information()
		if !reflect.DeepEqual(again, in) {
			t.Fatalf("round trip: %+v became %+v", in, again)
		}
	})
}
