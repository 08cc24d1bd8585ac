package fleetdm_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server/fleetdm/fleetdmtest"
)

// TestHostFacts reads Fleet's words for platform, OS and model into the
// guard's facts; what does not parse stays unknown.
func TestHostFacts(t *testing.T) {
	tests := []struct {
		host      fleetdmtest.Host
		want      apple.Platform
		wantModel string
		wantOS    string
	}{
		{fleetdmtest.Host{Platform: "darwin", OSVersion: "macOS 11.4", HardwareModel: "MacBookAir10,1"}, apple.PlatformMacOS, "MacBookAir10,1", "11.4"},
		{fleetdmtest.Host{Platform: "darwin", OSVersion: "macOS 13.4.1 (a)", HardwareModel: "Mac14,3"}, apple.PlatformMacOS, "Mac14,3", "13.4.1"},
		// Big Sur's compatibility version, as Fleet has shown it for 11.x
		// Macs (fleetdm/fleet#377): read as given, for the guard to judge.
		{fleetdmtest.Host{Platform: "darwin", OSVersion: "macOS 10.16", HardwareModel: "MacBookAir10,1"}, apple.PlatformMacOS, "MacBookAir10,1", "10.16"},
		{fleetdmtest.Host{Platform: "ios", OSVersion: "iOS 17.5.1", HardwareModel: "iPhone11,8"}, apple.PlatformIOS, "iPhone11,8", "17.5.1"},
		{fleetdmtest.Host{Platform: "ipados", OSVersion: "iPadOS 17.4", HardwareModel: "iPad13,18"}, apple.PlatformIPadOS, "iPad13,18", "17.4"},
		{fleetdmtest.Host{Platform: "darwin", OSVersion: "", HardwareModel: "not a model"}, apple.PlatformMacOS, "", ""},
		{fleetdmtest.Host{Platform: "windows", OSVersion: "Windows 11 Pro 23H2"}, apple.PlatformUnknown, "", ""},
	}
	var hosts []fleetdmtest.Host
	for i := range tests {
		tests[i].host.UUID = "H" + string(rune('A'+i))
		hosts = append(hosts, tests[i].host)
	}
	fake := fleetdmtest.Start(token, hosts...)
	defer fake.Close()
	c := client(t, fake.URL)
	for _, tt := range tests {
		d, found, err := c.Host(context.Background(), tt.host.UUID)
		if err != nil || !found {
			t.Fatalf("%s: found %v, err %v", tt.host.UUID, found, err)
		}
		if d.Platform != tt.want || d.Model != tt.wantModel || d.OSVersion.String() != tt.wantOS {
			t.Errorf("%+v: got %v %q %q", tt.host, d.Platform, d.Model, d.OSVersion)
		}
		if tt.wantOS == "10.16" && apple.Assess(d, apple.DeviceLock{}).Risk != apple.RiskDeactivation {
			t.Errorf("%+v: an M1 on macOS 10.16 (Big Sur 11.x) is not refused", tt.host)
		}
	}
	if _, found, err := c.Host(context.Background(), "NOPE"); found || err != nil {
		t.Fatalf("unknown host: found %v, err %v", found, err)
	}
}

func TestDevicesLooksUpEachOnceAndReportsFailures(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if strings.HasSuffix(r.URL.Path, "/BROKEN") {
			http.Error(w, "db down", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"host":{"platform":"darwin","os_version":"macOS 14.5","hardware_model":"Mac15,3"}}`))
	}))
	defer srv.Close()
	known, err := client(t, srv.URL).Devices(context.Background(), []string{"A", "B", "BROKEN", "C"}, 3)
	if err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("err = %v", err)
	}
	if len(known) != 3 || known["A"].Model != "Mac15,3" || calls.Load() != 4 {
		t.Fatalf("known %v after %d calls", known, calls.Load())
	}
}
