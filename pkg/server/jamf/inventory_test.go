package jamf

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

// TestFilters: values are quoted and escaped for RSQL, and batches keep
// each filter within its bounds while keeping every value once, in order.
func TestFilters(t *testing.T) {
	if got := anyOf("udid", []string{`A"B`, `C\D`}); got != `udid=="A\"B",udid=="C\\D"` {
		t.Fatalf("anyOf = %s", got)
	}
	var values []string
	for i := range 137 {
		values = append(values, strings.Repeat("X", i%60)+"-"+string(rune('a'+i%26)))
	}
	var joined []string
	for _, b := range batches("hardware.serialNumber", values) {
		if len(b) == 0 || len(b) > batchValues {
			t.Fatalf("batch of %d", len(b))
		}
		if n := len(url.QueryEscape(anyOf("hardware.serialNumber", b))); n > batchBytes && len(b) > 1 {
			t.Fatalf("filter of %d bytes", n)
		}
		joined = append(joined, b...)
	}
	if strings.Join(joined, "|") != strings.Join(values, "|") {
		t.Fatal("batches lost, repeated or reordered values")
	}
}

// TestRecords: Jamf's words become the guard's facts; what does not parse
// stays unknown rather than trusted.
func TestRecords(t *testing.T) {
	var mac computer
	if err := json.Unmarshal([]byte(`{"id": 7, "udid": "U1", "general": {"managementId": "m-1", "remoteManagement": {"managed": true}},
		"hardware": {"serialNumber": "S1", "modelIdentifier": "MacBookAir10,1", "appleSilicon": true},
		"operatingSystem": {"version": "11.4 (a)"}}`), &mac); err != nil {
		t.Fatal(err)
	}
	r := mac.record()
	if r.jamfID != "7" || r.managementID != "m-1" || r.unmanaged() || r.device.Model != "MacBookAir10,1" || r.device.OSVersion.String() != "11.4" || r.device.Platform != apple.PlatformMacOS {
		t.Fatalf("mac: %+v", r)
	}
	var bad computer
	_ = json.Unmarshal([]byte(`{"id": "8", "udid": "U2", "general": {"remoteManagement": {"managed": false}}, "hardware": {"modelIdentifier": "not a model!"}, "operatingSystem": {"version": "eleven"}}`), &bad)
	if r := bad.record(); !r.unmanaged() || r.device.Model != "" || r.device.OSVersion != nil {
		t.Fatalf("bad: %+v", r)
	}
	var tv mobileDevice
	_ = json.Unmarshal([]byte(`{"mobileDeviceId": "9", "deviceType": "tvOS", "managementId": "m-9", "general": {"udid": "U3", "osVersion": "17.0"}, "hardware": {"modelIdentifier": "AppleTV11,1"}}`), &tv)
	if r := tv.record(); r.managementID != "m-9" || r.device.Platform != "" || r.device.Model != "" {
		t.Fatalf("tv: %+v", r)
	}
	var pad mobileDevice
	_ = json.Unmarshal([]byte(`{"mobileDeviceId": "10", "general": {"udid": "U4", "osVersion": "17.4", "managementId": "m-10"}, "hardware": {"serialNumber": "S4", "modelIdentifier": "iPad13,18"}}`), &pad)
	if r := pad.record(); r.managementID != "m-10" || r.device.Platform != apple.PlatformIPadOS || r.device.Model != "iPad13,18" {
		t.Fatalf("pad: %+v", r)
	}
}
