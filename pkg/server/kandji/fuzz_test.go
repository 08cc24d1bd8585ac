package kandji

import (
	"encoding/json"
	"testing"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

// FuzzDeviceDetails feeds Kandji's device details with arbitrary bytes:
// nothing may panic, and the facts that come out must be ones the guard
// can trust (an Apple platform, a valid model identifier).
func FuzzDeviceDetails(f *testing.F) {
	f.Add([]byte(`{"general":{"platform":"Mac","os_version":"11.4"},"hardware_overview":{"model_identifier":"MacBookAir10,1","processor_name":"Apple M1"}}`))
	f.Add([]byte(`{"general":{"platform":"iPhone","os_version":"17.5.1"}}`))
	f.Add([]byte(`{"general":{"platform":"AppleTV","os_version":"17.0"},"hardware_overview":{"model_identifier":"AppleTV11,1"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d details
		if json.Unmarshal(data, &d) != nil {
			return
		}
		checkFacts(t, d.device(), data)
	})
}

func checkFacts(t *testing.T, d apple.Device, data []byte) {
	t.Helper()
	if d.Platform == apple.PlatformUnknown && (d.OSVersion != nil || d.Model != "") {
		t.Fatalf("facts without an Apple platform: %+v from %q", d, data)
	}
	if d.Model != "" && apple.ValidateModel(d.Model) != nil {
		t.Fatalf("invalid model %q passed from %q", d.Model, data)
	}
}
