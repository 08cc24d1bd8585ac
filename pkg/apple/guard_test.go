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
	const none, unknown, refuse = RiskNone, RiskUnknown, RiskDeactivation
	tests := []struct {
		platform Platform
		model    string
		os       string // "" = unknown
		want     Risk
		reason   string // a substring of the reason
	}{
		// The five that shipped before 11.5: dangerous on 11.0–11.4.x, and
		// an unknown version fails safe.
		{"", "MacBookAir10,1", "11.4", refuse, "Apple silicon on macOS 11.4"},
		{"", "MacBookAir10,1", "11.4.1", refuse, ""},
		{"", "MacBookAir10,1", "11", refuse, ""},
		{"", "MacBookAir10,1", "11.5", none, ""},
		{"", "MacBookAir10,1", "14.5", none, ""},
		{"", "MacBookAir10,1", "", refuse, "shipped with macOS 11.0 and its macOS version is unknown"},
		{"", "MacBookPro17,1", "", refuse, ""},
		{"", "Macmini9,1", "", refuse, ""},
		{"", "iMac21,1", "", refuse, "shipped with macOS 11.3"},
		{"", "iMac21,2", "11.4", refuse, ""},
		// Big Sur's compatibility version is 11.x with the minor unknown.
		{"", "MacBookAir10,1", "10.16", refuse, "how Big Sur reports itself"},
		{PlatformMacOS, "", "10.16", refuse, "Mac of unknown model"},
		{"", "", "10.16", refuse, "Big Sur"},
		{"", "Mac14,2", "10.16", refuse, "the facts contradict: Mac14,2 shipped with macOS 12.4"},
		{"", "MacBookPro16,1", "10.16", none, ""}, // Intel: 11.x is fine
		// A version below the model's first macOS is a contradiction.
		{"", "Mac14,8", "10.15.7", refuse, "the facts contradict: Mac14,8 shipped with macOS 13.4 and cannot run macOS 10.15.7"},
		{"", "iMac21,1", "11.0", refuse, "shipped with macOS 11.3 and cannot run macOS 11.0"},
		{"", "MacBookAir10,1", "10.15.7", refuse, "cannot run macOS 10.15.7"},
		{"", "Mac14,8", "11.4", refuse, "cannot run macOS 11.4"},
		// ... but 11.5 or later is safe on any Mac, model or not.
		{"", "Mac14,8", "12.0", none, ""},
		// Later Apple silicon can never run 11.x: safe even with no version.
		{"", "Mac14,2", "", none, ""},
		{PlatformMacOS, "Mac14,8", "", none, ""},
		{"", "MacBookPro18,3", "", none, ""},
		{"", "Mac13,1", "", none, ""},
		{"", "VirtualMac2,1", "", none, ""},
		{"", "Mac17,2", "", none, ""},
		{"", "Mac19,4", "", none, ""}, // a bare Mac not yet in the table: the family began on 12.3
		// Apple silicon by its family, not in the table (a typo or a model
		// that does not exist): fail safe when nothing settles it.
		{"", "MacBookAir11,1", "", refuse, "Apple silicon and its macOS version is unknown"},
		{"", "MacBookAir11,1", "11.2", refuse, ""},
		{"", "MacBookAir11,1", "10.15", refuse, "never ran a macOS before 11.0"},
		{"", "MacBookAir11,1", "12.1", none, ""},
		// Intel: never.
		{"", "MacBookPro16,4", "11.4", none, ""},
		{PlatformMacOS, "iMacPro1,1", "", none, ""},
		{"", "MacBookPro16,1", "", none, ""},
		// Unknown models on 11.0–11.4 stay refused; unknown facts warn.
		{PlatformMacOS, "Foo1,1", "11.4", refuse, "not a known Intel Mac"},
		{PlatformMacOS, "", "11.2", refuse, "model unknown on macOS 11.2"},
		{"", "", "11.2", refuse, "no platform or model"},
		{PlatformMacOS, "", "", unknown, "OS version unknown"},
		{"", "", "", unknown, "OS version unknown"},
		{PlatformMacOS, "", "10.15.7", none, ""},
		{PlatformMacOS, "VirtualMac1,1", "11.2", refuse, ""},
		// Not Macs.
		{PlatformIOS, "", "", none, ""},
		{"", "iPhone11,8", "14.4", none, ""},
		{PlatformVisionOS, "", "", none, ""},
	}
	for _, tt := range tests {
		var v Version
		if tt.os != "" {
			var err error
			if v, err = ParseVersion(tt.os); err != nil {
				t.Fatal(err)
			}
		}
		a := Assess(Device{Platform: tt.platform, Model: tt.model, OSVersion: v}, DeviceLock{})
		if a.Risk != tt.want || !strings.Contains(a.Reason, tt.reason) {
			t.Errorf("%s %q on %q: risk %d (%s), want %d with %q", tt.platform, tt.model, tt.os, a.Risk, a.Reason, tt.want, tt.reason)
		}
		if a.Risk != RiskNone && !strings.Contains(a.Reason, "before 11.5") {
			t.Errorf("%q on %q: reason %q does not state the rule", tt.model, tt.os, a.Reason)
		}
	}
}

func TestAssessObservedSources(t *testing.T) {
	v := func(s string) Version { x, _ := ParseVersion(s); return x }
	m1 := Observation{Source: "sandbox inventory", Device: Device{Platform: PlatformMacOS, Model: "MacBookAir10,1", OSVersion: v("11.4")}}
	tests := []struct {
		name string
		obs  []Observation
		want Risk
		in   []string // substrings of the reason
	}{
		{"a flag's newer version does not hide the inventory's",
			[]Observation{{Source: "flags", Device: Device{OSVersion: v("14.5")}}, m1}, RiskDeactivation,
			[]string{"macOS 11.4 from sandbox inventory", "OS version, 14.5 (flags) vs 11.4 (sandbox inventory)"}},
		{"a flag's Intel model does not hide the inventory's",
			[]Observation{{Source: "flags", Device: Device{Model: "MacBookPro16,1"}}, m1}, RiskDeactivation,
			[]string{"model MacBookAir10,1 from sandbox inventory", "model, MacBookPro16,1 (flags) vs MacBookAir10,1 (sandbox inventory)"}},
		{"the device's answer disagrees with the inventory",
			[]Observation{{Source: "Fleet inventory", Device: Device{Model: "MacBookAir10,1", OSVersion: v("14.5")}},
				{Source: "device answer", Device: Device{Model: "MacBookAir10,1", OSVersion: v("11.4")}}}, RiskDeactivation,
			[]string{"macOS 11.4 from device answer"}},
		{"model from one source, version from another",
			[]Observation{{Source: "flags", Device: Device{Model: "MacBookAir10,1"}}, {Source: "device answer", Device: Device{OSVersion: v("11.2")}}}, RiskDeactivation,
			[]string{"model MacBookAir10,1 from flags", "macOS 11.2 from device answer"}},
		{"agreeing sources are safe",
			[]Observation{{Source: "flags", Device: Device{OSVersion: v("14.5")}}, {Source: "device answer", Device: Device{Model: "MacBookAir10,1", OSVersion: v("14.5")}}}, RiskNone, nil},
		{"an empty source changes nothing",
			[]Observation{{Source: "flags"}, {Source: "Fleet inventory", Device: Device{Model: "Mac14,2"}}}, RiskNone, nil},
	}
	for _, tt := range tests {
		a := AssessObserved(tt.obs, DeviceLock{})
		if a.Risk != tt.want {
			t.Errorf("%s: risk %d (%s), want %d", tt.name, a.Risk, a.Reason, tt.want)
		}
		for _, s := range tt.in {
			if !strings.Contains(a.Reason, s) {
				t.Errorf("%s: reason %q lacks %q", tt.name, a.Reason, s)
			}
		}
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

func TestReportedVersion(t *testing.T) {
	for in, want := range map[string]string{
		"14.6.1": "14.6.1", "macOS 14.6.1": "14.6.1", "11.4 (20F71)": "11.4", "13.4.1 (a)": "13.4.1",
		"": "", "macOS": "", "14.x": "",
	} {
		got := ReportedVersion(in)
		if (got == nil && want != "") || (got != nil && got.String() != want) {
			t.Errorf("ReportedVersion(%q) = %v, want %q", in, got, want)
		}
	}
}
