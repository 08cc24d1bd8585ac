package fleetdm

import (
	"encoding/json"
	"testing"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

// FuzzDecode feeds Fleet's three reply shapes (host details, command
// results, errors) with arbitrary bytes: nothing may panic, and what comes
// out must keep the guard's and the collector's invariants.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"host":{"platform":"darwin","os_version":"macOS 11.4","hardware_model":"MacBookAir10,1"}}`))
	f.Add([]byte(`{"results":[{"host_uuid":"H","command_uuid":"C","status":"Error","result":"PGRpY3Q+PC9kaWN0Pg=="}]}`))
	f.Add([]byte(`{"message":"Validation Failed","errors":[{"name":"host_uuids","reason":"No hosts targeted."}]}`))
	f.Add([]byte(`{"host":{"platform":"windows","os_version":"Windows 11"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var h struct {
			Host *host `json:"host"`
		}
		if json.Unmarshal(data, &h) == nil && h.Host != nil {
			d := h.Host.device()
			if d.Platform == apple.PlatformUnknown && (d.OSVersion != nil || d.Model != "") {
				t.Fatalf("facts without an Apple platform: %+v from %q", d, data)
			}
			if d.Model != "" && apple.ValidateModel(d.Model) != nil {
				t.Fatalf("invalid model %q passed", d.Model)
			}
		}
		var res struct {
			Results []Answer `json:"results"`
		}
		if json.Unmarshal(data, &res) == nil {
			for _, a := range res.Results {
				r := a.Response()
				if a.HostUUID != "" && r.UDID == "" && r.EnrollmentID == "" {
					t.Fatalf("answer lost its host: %+v", a)
				}
			}
		}
		var e errorReply
		_ = json.Unmarshal(data, &e)
		_ = e.text()
	})
}
