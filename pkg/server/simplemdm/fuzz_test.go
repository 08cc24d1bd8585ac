package simplemdm

import (
	"encoding/json"
	"testing"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

// FuzzDevice feeds SimpleMDM's device object with arbitrary bytes: nothing
// may panic, and a model that comes out must be a valid identifier.
func FuzzDevice(f *testing.F) {
	f.Add([]byte(`{"type":"device","id":7,"attributes":{"status":"enrolled","os_version":"11.4","product_name":"MacBookAir10,1","processor_architecture":"arm64"}}`))
	f.Add([]byte(`{"type":"device","id":"8","attributes":{"os_version":"13.4.1 (a)","product_name":"iPhone14,2"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d Device
		if json.Unmarshal(data, &d) != nil {
			return
		}
		facts := d.Facts()
		if facts.Model != "" && apple.ValidateModel(facts.Model) != nil {
			t.Fatalf("invalid model %q passed from %q", facts.Model, data)
		}
		_ = validID(d.ID)
	})
}
