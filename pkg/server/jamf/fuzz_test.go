package jamf

import (
	"encoding/json"
	"testing"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

// FuzzInventory feeds Jamf's computer and mobile device records with
// arbitrary bytes: nothing may panic, and a model that comes out must be
// a valid identifier.
func FuzzInventory(f *testing.F) {
	f.Add([]byte(`{"id":"1","udid":"U","general":{"managementId":"M","remoteManagement":{"managed":true}},"hardware":{"serialNumber":"S","modelIdentifier":"MacBookAir10,1","appleSilicon":true},"operatingSystem":{"version":"11.4"}}`))
	f.Add([]byte(`{"mobileDeviceId":"2","deviceType":"iOS","general":{"udid":"U2","osVersion":"17.5.1","managed":true},"hardware":{"serialNumber":"S2","modelIdentifier":"iPhone11,8"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c computer
		if json.Unmarshal(data, &c) == nil {
			checkModel(t, c.record().device, data)
		}
		var m mobileDevice
		if json.Unmarshal(data, &m) == nil {
			checkModel(t, m.record().device, data)
		}
	})
}

func checkModel(t *testing.T, d apple.Device, data []byte) {
	t.Helper()
	if d.Model != "" && apple.ValidateModel(d.Model) != nil {
		t.Fatalf("invalid model %q passed from %q", d.Model, data)
	}
}
