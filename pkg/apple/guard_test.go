package apple

import (
	"strings"
	"testing"
)

func TestModelFacts(t *testing.T) {
	tests := []struct {
		model    string
		platform Platform
		arch     Arch
		known    bool
	}{
		// Every family boundary: last Intel, first Apple silicon.
		{"MacBookAir9,1", PlatformMacOS, ArchIntel, true},
		{"MacBookAir10,1", PlatformMacOS, ArchAppleSilicon, true},
		{"MacBookPro16,4", PlatformMacOS, ArchIntel, true},
		{"MacBookPro16,1", PlatformMacOS, ArchIntel, true},
		{"MacBookPro17,1", PlatformMacOS, ArchAppleSilicon, true},
		{"MacBookPro18,4", PlatformMacOS, ArchAppleSilicon, true},
		{"Macmini8,1", PlatformMacOS, ArchIntel, true},
		{"Macmini9,1", PlatformMacOS, ArchAppleSilicon, true},
		{"iMac20,2", PlatformMacOS, ArchIntel, true},
		{"iMac21,1", PlatformMacOS, ArchAppleSilicon, true},
		// Families that never were Apple silicon, anchored so iMac does not
		// swallow iMacPro and Mac does not swallow MacBook.
		{"iMacPro1,1", PlatformMacOS, ArchIntel, true},
		{"MacBook10,1", PlatformMacOS, ArchIntel, true},
		{"MacPro7,1", PlatformMacOS, ArchIntel, true},
		{"Xserve3,1", PlatformMacOS, ArchIntel, true},
		{"PowerMac11,2", PlatformMacOS, ArchIntel, true},
		// Bare Mac identifiers: Apple silicon, including the 2023 Mac Pro.
		{"Mac14,8", PlatformMacOS, ArchAppleSilicon, true},
		{"Mac13,1", PlatformMacOS, ArchAppleSilicon, true},
		{"Mac17,2", PlatformMacOS, ArchAppleSilicon, true},
		{"VirtualMac2,1", PlatformMacOS, ArchAppleSilicon, true},
		{"VirtualMac1,1", PlatformMacOS, ArchUnknown, true},
		// Not Macs.
		{"iPhone11,8", PlatformIOS, ArchUnknown, true},
		{"iPod9,1", PlatformIOS, ArchUnknown, true},
		{"iPad8,12", PlatformIPadOS, ArchUnknown, true},
		{"Watch6,1", PlatformWatchOS, ArchUnknown, true},
		{"RealityDevice14,1", PlatformVisionOS, ArchUnknown, true},
		// Typos and unknown families fail safe: unknown.
		{"", PlatformUnknown, ArchUnknown, false},
		{"MacBookAir", PlatformUnknown, ArchUnknown, false},
		{"macbookair10,1", PlatformUnknown, ArchUnknown, false},
		{"MacBookAir10.1", PlatformUnknown, ArchUnknown, false},
		{"Foo1,1", PlatformUnknown, ArchUnknown, false},
		{"MacBookAir10,1 ", PlatformUnknown, ArchUnknown, false},
	}
	for _, tt := range tests {
		p, a, k := ModelFacts(tt.model)
		if p != tt.platform || a != tt.arch || k != tt.known {
			t.Errorf("ModelFacts(%q) = %q, %s, %t; want %q, %s, %t", tt.model, p, a, k, tt.platform, tt.arch, tt.known)
		}
	}
}

func TestVersions(t *testing.T) {
	ordered := []string{"10.15.7", "11", "11.4", "11.4.1", "11.5", "11.5.2", "12.0", "14.6.1"}
	for i := range ordered {
		for j := range ordered {
			a, errA := ParseVersion(ordered[i])
			b, errB := ParseVersion(ordered[j])
			if errA != nil || errB != nil {
				t.Fatalf("parse: %v %v", errA, errB)
			}
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
	eleven, _ := ParseVersion("11")
	elevenZero, _ := ParseVersion("11.0")
	if eleven.Compare(elevenZero) != 0 {
		t.Error("11 and 11.0 differ")
	}
	for _, bad := range []string{"", "v11", "11..4", "11.4.", ".11", "11.4.x", "١١.٤", "11.4.1.2.3", "11,4", " 11.4", "99999.1"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) accepted", bad)
		}
	}
}

func TestAssessDeactivationRisk(t *testing.T) {
	versions := []struct {
		v          string
		inDanger   bool // 11.0 <= v < 11.5
		preSilicon bool // < 11.0
	}{
		{"10.15.7", false, true}, {"11", true, false}, {"11.0", true, false}, {"11.4.1", true, false},
		{"11.5", false, false}, {"11.5.2", false, false}, {"12.0", false, false},
	}
	devices := []struct {
		name     string
		platform Platform
		model    string
		// risk when the version is in the danger range, and when unknown
		inDanger Risk
		noOS     Risk
	}{
		{"Apple silicon", PlatformUnknown, "MacBookAir10,1", RiskDeactivation, RiskUnknown},
		{"Apple silicon, bare Mac", PlatformMacOS, "Mac14,8", RiskDeactivation, RiskUnknown},
		{"Apple VM", PlatformUnknown, "VirtualMac2,1", RiskDeactivation, RiskUnknown},
		{"Intel", PlatformUnknown, "MacBookPro16,4", RiskNone, RiskNone},
		{"Intel iMac Pro", PlatformMacOS, "iMacPro1,1", RiskNone, RiskNone},
		{"unknown model on macOS", PlatformMacOS, "Foo1,1", RiskDeactivation, RiskUnknown},
		{"no model on macOS", PlatformMacOS, "", RiskDeactivation, RiskUnknown},
		{"nothing known", PlatformUnknown, "", RiskDeactivation, RiskUnknown},
		{"iPhone by platform", PlatformIOS, "", RiskNone, RiskNone},
		{"iPhone by model", PlatformUnknown, "iPhone11,8", RiskNone, RiskNone},
		{"visionOS", PlatformVisionOS, "", RiskNone, RiskNone},
	}
	for _, d := range devices {
		t.Run(d.name, func(t *testing.T) {
			a := Assess(Device{Platform: d.platform, Model: d.model}, DeviceLock{})
			if a.Risk != d.noOS {
				t.Errorf("no OS version: risk %d, want %d (%s)", a.Risk, d.noOS, a.Reason)
			}
			for _, v := range versions {
				ver, _ := ParseVersion(v.v)
				a := Assess(Device{Platform: d.platform, Model: d.model, OSVersion: ver}, DeviceLock{})
				want := RiskNone
				if v.inDanger {
					want = d.inDanger
				}
				if a.Risk != want {
					t.Errorf("%s: risk %d, want %d (%s)", v.v, a.Risk, want, a.Reason)
				}
				if a.Risk != RiskNone && !strings.Contains(a.Reason, "before 11.5") {
					t.Errorf("%s: reason %q does not state the rule", v.v, a.Reason)
				}
			}
		})
	}
}

func TestAssessNotes(t *testing.T) {
	v := func(s string) Version { x, _ := ParseVersion(s); return x }
	tests := []struct {
		name string
		dev  Device
		lock DeviceLock
		want string // a substring of one note; "" means no notes
	}{
		{"PIN to an iPhone", Device{Platform: PlatformIOS}, DeviceLock{PIN: "123456"}, "PIN is ignored on ios"},
		{"PIN to a Mac", Device{Model: "Mac14,2", OSVersion: v("14.5")}, DeviceLock{PIN: "123456"}, ""},
		{"PIN, platform unknown", Device{}, DeviceLock{PIN: "123456"}, ""},
		{"phone to an Intel Mac", Device{Model: "iMac20,2", OSVersion: v("12.0")}, DeviceLock{PhoneNumber: "1"}, "not shown on an Intel Mac"},
		{"phone to Apple silicon on 11.4", Device{Model: "MacBookAir10,1", OSVersion: v("11.4")}, DeviceLock{PhoneNumber: "1"}, "not shown on macOS 11.4"},
		{"phone to Apple silicon on 14.5", Device{Model: "MacBookAir10,1", OSVersion: v("14.5")}, DeviceLock{PhoneNumber: "1"}, ""},
		{"phone to an iPhone", Device{Platform: PlatformIOS}, DeviceLock{PhoneNumber: "1"}, ""},
		{"message to visionOS", Device{Platform: PlatformVisionOS}, DeviceLock{Message: "m"}, "message is not shown on visionOS"},
	}
	for _, tt := range tests {
		notes := Assess(tt.dev, tt.lock).Notes
		joined := strings.Join(notes, "; ")
		if tt.want == "" && len(notes) > 0 || tt.want != "" && !strings.Contains(joined, tt.want) {
			t.Errorf("%s: notes %q, want %q", tt.name, notes, tt.want)
		}
	}
}

func TestCheckConsistent(t *testing.T) {
	for _, tt := range []struct {
		dev Device
		ok  bool
	}{
		{Device{Platform: PlatformIOS, Model: "MacBookAir10,1"}, false},
		{Device{Platform: PlatformMacOS, Model: "iPhone11,8"}, false},
		{Device{Platform: PlatformIOS, Model: "iPad8,12"}, true},
		{Device{Platform: PlatformIPadOS, Model: "iPad8,12"}, true},
		{Device{Platform: PlatformMacOS, Model: "Foo1,1"}, true},
		{Device{Platform: PlatformMacOS}, true},
	} {
		if err := CheckConsistent(tt.dev); (err == nil) != tt.ok {
			t.Errorf("CheckConsistent(%+v) = %v, want ok=%t", tt.dev, err, tt.ok)
		}
	}
}

func TestParsePlatform(t *testing.T) {
	for in, want := range map[string]Platform{"": PlatformUnknown, "macOS": PlatformMacOS, "iPadOS": PlatformIPadOS, "ios": PlatformIOS, "visionos": PlatformVisionOS, "watchOS": PlatformWatchOS} {
		if got, err := ParsePlatform(in); err != nil || got != want {
			t.Errorf("ParsePlatform(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"tvos", "mac", "osx", " ios"} {
		if _, err := ParsePlatform(bad); err == nil {
			t.Errorf("ParsePlatform(%q) accepted", bad)
		}
	}
}
