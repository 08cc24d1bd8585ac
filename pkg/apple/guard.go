package apple

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Platform is the operating system family of a device.
type Platform string

// Platforms DeviceLock knows; PlatformUnknown means no fact was given.
const (
	PlatformUnknown  Platform = ""
	PlatformMacOS    Platform = "macos"
	PlatformIOS      Platform = "ios"
	PlatformIPadOS   Platform = "ipados"
	PlatformVisionOS Platform = "visionos"
	PlatformWatchOS  Platform = "watchos"
)

// Platforms lists the accepted --platform values.
var Platforms = []Platform{PlatformMacOS, PlatformIOS, PlatformIPadOS, PlatformVisionOS, PlatformWatchOS}

// ParsePlatform accepts a platform name, case-insensitively ("macOS", "iPadOS").
func ParsePlatform(s string) (Platform, error) {
	if s == "" {
		return PlatformUnknown, nil
	}
	p := Platform(strings.ToLower(s))
	for _, known := range Platforms {
		if p == known {
			return p, nil
		}
	}
	return PlatformUnknown, fmt.Errorf("unknown platform %q (want one of macos, ios, ipados, visionos, watchos)", s)
}

// Arch says whether a Mac model is Apple silicon.
type Arch int

// Architectures a model identifier can reveal.
const (
	ArchUnknown Arch = iota
	ArchAppleSilicon
	ArchIntel // Intel or older (PowerPC): never subject to the deactivation rule
)

func (a Arch) String() string {
	switch a {
	case ArchAppleSilicon:
		return "Apple silicon"
	case ArchIntel:
		return "Intel"
	}
	return "unknown"
}

var (
	modelRE = regexp.MustCompile(`^([A-Za-z]+)(\d+),(\d+)$`)
	// The first model number that is Apple silicon per family; below it, Intel.
	firstAppleSilicon = map[string]int{"MacBookAir": 10, "MacBookPro": 17, "Macmini": 9, "iMac": 21}
	neverAppleSilicon = map[string]bool{
		"MacBook": true, "iMacPro": true, "MacPro": true, "Xserve": true,
		"PowerMac": true, "PowerBook": true, "RackMac": true, "iBook": true, "eMac": true,
	}
	nonMacFamilies = map[string]Platform{
		"iPhone": PlatformIOS, "iPod": PlatformIOS, "iPad": PlatformIPadOS,
		"Watch": PlatformWatchOS, "RealityDevice": PlatformVisionOS,
	}
)

// ModelFacts interprets a model identifier (DeviceInformation ProductName,
// e.g. "MacBookAir10,1"). known is false for anything that is not
// a well-formed identifier of a family mdmctl knows.
func ModelFacts(model string) (platform Platform, arch Arch, known bool) {
	m := modelRE.FindStringSubmatch(model)
	if m == nil {
		return PlatformUnknown, ArchUnknown, false
	}
	family := m[1]
	major, err := strconv.Atoi(m[2])
	if err != nil {
		return PlatformUnknown, ArchUnknown, false
	}
	if p, ok := nonMacFamilies[family]; ok {
		return p, ArchUnknown, true
	}
	switch {
	case family == "Mac":
		return PlatformMacOS, ArchAppleSilicon, true
	case family == "VirtualMac":
		if major >= 2 {
			return PlatformMacOS, ArchAppleSilicon, true
		}
		return PlatformMacOS, ArchUnknown, true
	case neverAppleSilicon[family]:
		return PlatformMacOS, ArchIntel, true
	}
	if first, ok := firstAppleSilicon[family]; ok {
		if major >= first {
			return PlatformMacOS, ArchAppleSilicon, true
		}
		return PlatformMacOS, ArchIntel, true
	}
	return PlatformUnknown, ArchUnknown, false
}

// Version is a dotted OS version, compared numerically component by component.
type Version []int

var versionRE = regexp.MustCompile(`^\d{1,4}(\.\d{1,4}){0,3}$`)

// ParseVersion parses "11", "11.4" or "11.4.1" (ASCII digits only).
func ParseVersion(s string) (Version, error) {
	if !versionRE.MatchString(s) {
		return nil, fmt.Errorf("invalid OS version %q (want numbers like 11.4.1)", s)
	}
	parts := strings.Split(s, ".")
	v := make(Version, len(parts))
	for i, p := range parts {
		v[i], _ = strconv.Atoi(p) // the regexp guarantees digits
	}
	return v, nil
}

// Compare returns -1, 0 or 1; missing components count as zero (11 == 11.0).
func (v Version) Compare(o Version) int {
	for i := 0; i < len(v) || i < len(o); i++ {
		a, b := 0, 0
		if i < len(v) {
			a = v[i]
		}
		if i < len(o) {
			b = o[i]
		}
		if a != b {
			if a < b {
				return -1
			}
			return 1
		}
	}
	return 0
}

func (v Version) String() string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ".")
}

var (
	firstAppleSiliconMacOS = Version{11, 0}
	firstSafeMacOS         = Version{11, 5}
)

// Device holds what is known about a target; zero values mean unknown.
type Device struct {
	Platform  Platform
	Model     string
	OSVersion Version
}

// Risk is the guard's verdict on sending DeviceLock to a device.
type Risk int

const (
	// RiskNone: the device is known to be unaffected by the deactivation rule.
	RiskNone Risk = iota
	// RiskUnknown: the facts do not settle it; send, but warn.
	RiskUnknown
	// RiskDeactivation: the device is, or may be, an Apple silicon Mac on
	// macOS 11.0–11.4.x; DeviceLock would deactivate it.
	RiskDeactivation
)

// Assessment is the guard's answer for one device.
type Assessment struct {
	Risk Risk
	// Reason explains a RiskDeactivation or RiskUnknown verdict.
	Reason string
	// Notes are lesser warnings: keys the device will ignore.
	Notes []string
}

// DeactivationRule is Apple's wording of the danger, quoted in refusals.
const DeactivationRule = "DeviceLock deactivates an Apple silicon Mac running macOS before 11.5; " +
	"reactivating it needs a network connection and a local administrator with a Secure Token"

// Assess applies the Apple silicon rule and the per-platform key rules to
// one device. A model identifier settles the platform when none is given.
func Assess(d Device, lock DeviceLock) Assessment {
	platform := d.Platform
	modelPlatform, arch, modelKnown := ModelFacts(d.Model)
	if platform == PlatformUnknown && modelKnown {
		platform = modelPlatform
	}
	var a Assessment
	a.Risk, a.Reason = deactivationRisk(platform, arch, d)
	a.Notes = keyNotes(platform, arch, d.OSVersion, lock)
	return a
}

func deactivationRisk(platform Platform, arch Arch, d Device) (Risk, string) {
	if platform != PlatformUnknown && platform != PlatformMacOS {
		return RiskNone, ""
	}
	v := d.OSVersion
	if v == nil {
		if arch == ArchIntel {
			return RiskNone, ""
		}
		return RiskUnknown, "OS version unknown: " + DeactivationRule +
			"; give --os-version (and --model) so mdmctl can check"
	}
	if v.Compare(firstSafeMacOS) >= 0 || v.Compare(firstAppleSiliconMacOS) < 0 {
		// >= 11.5 is safe on every Mac; < 11.0 cannot be Apple silicon
		// (and is no iOS release that still matters here either way).
		return RiskNone, ""
	}
	switch {
	case arch == ArchIntel:
		return RiskNone, ""
	case arch == ArchAppleSilicon:
		return RiskDeactivation, fmt.Sprintf("%s is Apple silicon on macOS %s: %s", d.Model, v, DeactivationRule)
	case platform == PlatformUnknown && d.Model == "":
		return RiskDeactivation, fmt.Sprintf("OS version %s with no platform or model may be a Mac: %s; give --platform or --model", v, DeactivationRule)
	case d.Model == "":
		return RiskDeactivation, fmt.Sprintf("model unknown on macOS %s: %s; give --model", v, DeactivationRule)
	default:
		return RiskDeactivation, fmt.Sprintf("model %q is not a known Intel Mac, on macOS %s: %s", d.Model, v, DeactivationRule)
	}
}

func keyNotes(platform Platform, arch Arch, v Version, lock DeviceLock) []string {
	var notes []string
	if lock.PIN != "" && platform != PlatformUnknown && platform != PlatformMacOS {
		notes = append(notes, fmt.Sprintf("PIN is ignored on %s (it applies to macOS only)", platform))
	}
	if platform == PlatformVisionOS {
		if lock.Message != "" {
			notes = append(notes, "message is not shown on visionOS")
		}
		if lock.PhoneNumber != "" {
			notes = append(notes, "phone number is not shown on visionOS")
		}
	}
	if lock.PhoneNumber != "" && platform == PlatformMacOS {
		switch {
		case arch == ArchIntel:
			notes = append(notes, "phone number is not shown on an Intel Mac")
		case v != nil && v.Compare(firstSafeMacOS) < 0:
			notes = append(notes, fmt.Sprintf("phone number is not shown on macOS %s (needs 11.5 on Apple silicon)", v))
		}
	}
	return notes
}

// CheckConsistent rejects facts that contradict each other: a Mac model
// with a non-macOS platform, or an iPhone model with --platform macos.
func CheckConsistent(d Device) error {
	if d.Platform == PlatformUnknown || d.Model == "" {
		return nil
	}
	mp, _, known := ModelFacts(d.Model)
	if !known {
		return nil
	}
	compatible := mp == d.Platform || (mp == PlatformIPadOS && d.Platform == PlatformIOS) || (mp == PlatformIOS && d.Platform == PlatformIPadOS)
	if !compatible {
		return fmt.Errorf("model %s is a %s device, not %s", d.Model, mp, d.Platform)
	}
	return nil
}
