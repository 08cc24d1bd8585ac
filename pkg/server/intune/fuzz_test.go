package intune

import (
	"encoding/json"
	"testing"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

// FuzzManagedDevice feeds Graph's managedDevice with arbitrary bytes:
// nothing may panic, and the facts that come out must be ones the guard
// can trust (an Apple platform, an identifier-shaped valid model).
func FuzzManagedDevice(f *testing.F) {
	f.Add([]byte(`{"id":"1","operatingSystem":"macOS","osVersion":"11.4 (20F71)","model":"MacBookAir10,1"}`))
	f.Add([]byte(`{"id":"2","operatingSystem":"iOS","osVersion":"17.5.1","model":"iPhone 12"}`))
	f.Add([]byte(`{"id":"3","operatingSystem":"Windows","osVersion":"10.0.22631.3880","model":"Surface Laptop 5"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d managedDevice
		if json.Unmarshal(data, &d) != nil {
			return
		}
		facts := d.device()
		if facts.Platform == apple.PlatformUnknown && (facts.OSVersion != nil || facts.Model != "") {
			t.Fatalf("facts without an Apple platform: %+v from %q", facts, data)
		}
		if facts.Model != "" && apple.ValidateModel(facts.Model) != nil {
			t.Fatalf("invalid model %q passed from %q", facts.Model, data)
		}
	})
}
