package apple

import (
	"slices"
	"testing"
)

// m1Answer is how a MacBook Air (M1) on macOS 11.4 answers: no
// IsAppleSilicon (macOS 12 and later only), PINRequiredForDeviceLock
// (macOS 11 and later).
const m1Answer = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>CommandUUID</key><string>INFO-1</string>
	<key>QueryResponses</key>
	<dict>
		<key>BuildVersion</key><string>20F71</string>
		<key>Model</key><string>MacBookAir10,1</string>
		<key>ModelName</key><string>MacBook Air</string>
		<key>OSVersion</key><string>11.4</string>
		<key>PINRequiredForDeviceLock</key><false/>
		<key>ProductName</key><string>MacBookAir10,1</string>
		<key>ProvisioningUDID</key><string>00008103-001A2B3C4D5E601E</string>
	</dict>
	<key>Status</key><string>Acknowledged</string>
	<key>UDID</key><string>2E8A1C3F-0B11-4D04-9A10-000000001104</string>
</dict>
</plist>`

func TestInformationPayload(t *testing.T) {
	p, err := InformationPayload("INFO-1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCommand(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.CommandUUID != "INFO-1" || c.RequestType != RequestTypeDeviceInformation {
		t.Fatalf("envelope: %+v", c)
	}
	q, err := ParseQueries(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"OSVersion", "BuildVersion", "ProductName", "Model", "ModelName", "IsAppleSilicon", "PINRequiredForDeviceLock", "ProvisioningUDID"}
	if !slices.Equal(q, want) {
		t.Fatalf("Queries = %v, want %v", q, want)
	}
	if _, err := InformationPayload(""); err == nil {
		t.Fatal("empty command UUID accepted")
	}
}

func TestDecodeInformation(t *testing.T) {
	r, err := DecodeResponse([]byte(m1Answer))
	if err != nil {
		t.Fatal(err)
	}
	in := r.Information()
	if in.OSVersion != "11.4" || in.BuildVersion != "20F71" || in.ProductName != "MacBookAir10,1" || in.ModelName != "MacBook Air" ||
		in.ProvisioningUDID != "00008103-001A2B3C4D5E601E" {
		t.Fatalf("strings: %+v", in)
	}
	if in.IsAppleSilicon != nil {
		t.Fatal("IsAppleSilicon read from an answer that lacks it")
	}
	if in.PINRequiredForDeviceLock == nil || *in.PINRequiredForDeviceLock {
		t.Fatalf("PINRequiredForDeviceLock = %v, want false", in.PINRequiredForDeviceLock)
	}
	d := in.Device()
	if d.Platform != PlatformMacOS || d.Model != "MacBookAir10,1" || d.OSVersion.String() != "11.4" {
		t.Fatalf("facts: %+v", d)
	}
	if a := Assess(d, DeviceLock{}); a.Risk != RiskDeactivation {
		t.Fatalf("the M1 on 11.4 as it answered: %+v", a)
	}
}

func TestInformationDevice(t *testing.T) {
	yes := true
	for _, tc := range []struct {
		name string
		in   Information
		want Device
	}{
		{"iPhone: ProductName is the identifier", Information{OSVersion: "17.5.1", ProductName: "iPhone11,8", Model: "MT6J2LL"},
			Device{Platform: PlatformIOS, Model: "iPhone11,8", OSVersion: Version{17, 5, 1}}},
		{"Mac with Model alone", Information{OSVersion: "14.5", Model: "Mac14,2"},
			Device{Platform: PlatformMacOS, Model: "Mac14,2", OSVersion: Version{14, 5}}},
		{"an iPhone's Model is no identifier", Information{Model: "MT6J2LL"}, Device{}},
		// IsAppleSilicon alone settles nothing: the model and version do.
		{"IsAppleSilicon alone", Information{IsAppleSilicon: &yes}, Device{}},
		{"unparsable version", Information{OSVersion: "14.5 beta", ProductName: "Mac14,2"},
			Device{Platform: PlatformMacOS, Model: "Mac14,2"}},
		{"model with a space", Information{ProductName: "Mac 14,2"}, Device{}},
		{"unknown family kept, platform unknown", Information{ProductName: "Foo1,1"}, Device{Model: "Foo1,1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.Device()
			if got.Platform != tc.want.Platform || got.Model != tc.want.Model || got.OSVersion.Compare(tc.want.OSVersion) != 0 ||
				(got.OSVersion == nil) != (tc.want.OSVersion == nil) {
				t.Fatalf("Device() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestInformationWrongTypesNotAnswered(t *testing.T) {
	r := Response{Status: StatusAcknowledged, QueryResponses: map[string]any{
		"OSVersion": 11, "PINRequiredForDeviceLock": "true", "IsAppleSilicon": 1, "ProductName": []byte("Mac14,2"),
	}}
	if in := r.Information(); in.Informative() {
		t.Fatalf("values of the wrong type read as answers: %+v", in)
	}
}

func TestInformationRoundTrip(t *testing.T) {
	no := false
	in := Information{OSVersion: "14.5", ProductName: "Mac15,3", Model: "Mac15,3", PINRequiredForDeviceLock: &no}
	data, err := Response{Status: StatusAcknowledged, CommandUUID: "U", QueryResponses: in.QueryResponses()}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecodeResponse(data)
	if err != nil {
		t.Fatal(err)
	}
	got := r.Information()
	if got.OSVersion != "14.5" || got.ProductName != "Mac15,3" || got.PINRequiredForDeviceLock == nil || *got.PINRequiredForDeviceLock || got.IsAppleSilicon != nil {
		t.Fatalf("round trip: %+v", got)
	}
}
