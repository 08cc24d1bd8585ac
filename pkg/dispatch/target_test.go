package dispatch

import (
	"testing"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

func TestTargetMayBeMac(t *testing.T) {
	ios := apple.Device{Platform: apple.PlatformIOS}
	mac := apple.Device{Model: "Mac14,2"}
	for _, tc := range []struct {
		name     string
		facts    apple.Device
		observed []apple.Device
		want     bool
	}{
		{"nothing known", apple.Device{}, nil, true},
		{"flags say iOS", ios, nil, false},
		{"the inventory says iOS, the flags nothing", apple.Device{}, []apple.Device{ios}, false},
		{"a Mac's model in the inventory", apple.Device{}, []apple.Device{mac}, true},
		{"the sources disagree", ios, []apple.Device{mac}, true},
		{"an iPad's model", apple.Device{Model: "iPad13,18"}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := &Target{ID: "X", Facts: &tc.facts}
			for _, d := range tc.observed {
				tg.Observed = append(tg.Observed, apple.Observation{Source: "inventory", Device: d})
			}
			if got := tg.MayBeMac(); got != tc.want {
				t.Fatalf("MayBeMac = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTargetKnownPlatform(t *testing.T) {
	for _, tc := range []struct {
		name     string
		facts    apple.Device
		observed []apple.Device
		want     apple.Platform
	}{
		{"nothing known", apple.Device{}, nil, apple.PlatformUnknown},
		{"a model settles it", apple.Device{Model: "Mac14,2"}, nil, apple.PlatformMacOS},
		{"flags and inventory agree", apple.Device{Platform: apple.PlatformIOS}, []apple.Device{{Model: "iPhone11,8"}}, apple.PlatformIOS},
		{"they disagree", apple.Device{Platform: apple.PlatformIOS}, []apple.Device{{Model: "Mac14,2"}}, apple.PlatformUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := &Target{ID: "X", Facts: &tc.facts}
			for _, d := range tc.observed {
				tg.Observed = append(tg.Observed, apple.Observation{Source: "inventory", Device: d})
			}
			if got := tg.KnownPlatform(); got != tc.want {
				t.Fatalf("KnownPlatform = %q, want %q", got, tc.want)
			}
		})
	}
}
