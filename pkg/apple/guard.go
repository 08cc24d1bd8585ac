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

// ReportedVersion reads an OS version as inventories write it ("macOS
// 14.6.1", "11.4 (20F71)", "13.4.1 (a)" with a Rapid Security Response):
// the word from the first digit on; nil when there is none or it does not
// parse, so the guard treats the version as unknown.
func ReportedVersion(s string) Version {
	i := strings.IndexAny(s, "0123456789")
	if i < 0 {
		return nil
	}
	v, err := ParseVersion(strings.Fields(s[i:])[0])
	if err != nil {
		return nil
	}
	return v
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
// one device whose facts come from one source. A model identifier settles
// the platform when none is given.
func Assess(d Device, lock DeviceLock) Assessment {
	return AssessObserved([]Observation{{Device: d}}, lock)
}

// MayBeMac is true unless d says the device is not a Mac (its platform,
// or the platform its model identifier settles): a PIN is needed, and
// made, only where the device may be a Mac.
func MayBeMac(d Device) bool {
	p := d.KnownPlatform()
	return p == PlatformUnknown || p == PlatformMacOS
}

// KnownPlatform is d's platform, or else the one its model identifier
// settles; PlatformUnknown when neither tells.
func (d Device) KnownPlatform() Platform {
	if d.Platform != PlatformUnknown {
		return d.Platform
	}
	p, _, _ := ModelFacts(d.Model)
	return p
}

// Observation is what one source says about a device: the flags or a CSV
// line, a server's inventory, or the device's own DeviceInformation answer.
type Observation struct {
	// Source names it in messages ("flags", "devices.csv:7", "sandbox
	// inventory", "device answer"); it may be empty when it is the only one.
	Source string
	Device
}

// AssessObserved applies the guard to everything known about one device.
// Sources can disagree (a flag says 14.5, the inventory 11.4): the guard
// reads every combination of the values they give and decides on the most
// dangerous one, naming where each value came from. Nothing a source says
// replaces what another says.
func AssessObserved(obs []Observation, lock DeviceLock) Assessment {
	f := gather(obs)
	var worst reading
	first := true
	for _, m := range f.models {
		for _, v := range f.versions {
			for _, p := range f.platformsFor(m) {
				r := reading{platform: p, model: m, version: v}
				r.risk, r.reason = r.assess()
				if first || r.risk > worst.risk {
					worst, first = r, false
				}
			}
		}
	}
	a := Assessment{Risk: worst.risk, Reason: worst.reason}
	if a.Risk != RiskNone {
		a.Reason = f.annotate(worst, a.Reason)
	}
	_, arch, _ := ModelFacts(worst.model)
	a.Notes = keyNotes(worst.effectivePlatform(), arch, worst.version, lock)
	return a
}

// facts are the distinct values the observations give, each with the
// sources that gave it. A field no source gives has the one value
// "unknown" (empty model, nil version, PlatformUnknown).
type facts struct {
	platforms []Platform
	models    []string
	versions  []Version
	said      map[string][]string // "model=X", "os=V", "platform=P" -> sources
	named     bool                // more than one source: name them
}

func gather(obs []Observation) facts {
	f := facts{said: map[string][]string{}, named: len(obs) > 1}
	add := func(key, source string) bool {
		seen := len(f.said[key]) > 0
		f.said[key] = append(f.said[key], sourceName(source))
		return !seen
	}
	for _, o := range obs {
		if o.Platform != PlatformUnknown && add("platform="+string(o.Platform), o.Source) {
			f.platforms = append(f.platforms, o.Platform)
		}
		if o.Model != "" && add("model="+o.Model, o.Source) {
			f.models = append(f.models, o.Model)
		}
		if o.OSVersion != nil && add("os="+o.OSVersion.String(), o.Source) {
			f.versions = append(f.versions, o.OSVersion)
		}
	}
	if len(f.models) == 0 {
		f.models = []string{""}
	}
	if len(f.versions) == 0 {
		f.versions = []Version{nil}
	}
	return f
}

func sourceName(s string) string {
	if s == "" {
		return "flags"
	}
	return s
}

// platformsFor is the platform readings with model m: a known model
// settles the platform; otherwise every platform a source gave.
func (f facts) platformsFor(m string) []Platform {
	if mp, _, known := ModelFacts(m); known {
		return []Platform{mp}
	}
	if len(f.platforms) == 0 {
		return []Platform{PlatformUnknown}
	}
	return f.platforms
}

// annotate names the sources behind a verdict when there is more than one,
// and what they disagree on.
func (f facts) annotate(r reading, reason string) string {
	if !f.named {
		return reason
	}
	var parts []string
	if r.model != "" {
		parts = append(parts, "model "+r.model+" from "+strings.Join(f.said["model="+r.model], ", "))
	}
	if r.version != nil {
		parts = append(parts, "macOS "+r.version.String()+" from "+strings.Join(f.said["os="+r.version.String()], ", "))
	}
	var disagree []string
	if len(f.models) > 1 {
		disagree = append(disagree, f.list("model", "model=", f.models, func(m string) string { return m }))
	}
	if len(f.versions) > 1 {
		vs := make([]string, len(f.versions))
		for i, v := range f.versions {
			vs[i] = v.String()
		}
		disagree = append(disagree, f.list("OS version", "os=", vs, func(v string) string { return v }))
	}
	if len(parts) > 0 {
		reason += " (" + strings.Join(parts, "; ") + ")"
	}
	if len(disagree) > 0 {
		reason += "; the sources disagree on the " + strings.Join(disagree, " and the ") + ": mdmctl goes by the most dangerous reading"
	}
	return reason
}

func (f facts) list(what, prefix string, values []string, show func(string) string) string {
	items := make([]string, len(values))
	for i, v := range values {
		items[i] = show(v) + " (" + strings.Join(f.said[prefix+v], ", ") + ")"
	}
	return what + ", " + strings.Join(items, " vs ")
}

// reading is one combination of values for a device, and the guard's
// verdict on it.
type reading struct {
	platform Platform
	model    string
	version  Version
	risk     Risk
	reason   string
}

func (r reading) effectivePlatform() Platform {
	if r.platform == PlatformUnknown {
		if mp, _, known := ModelFacts(r.model); known {
			return mp
		}
	}
	return r.platform
}

// assess is the rule for one reading (apple-devicelock.md §5, §5a).
func (r reading) assess() (Risk, string) {
	platform := r.effectivePlatform()
	if platform != PlatformUnknown && platform != PlatformMacOS {
		return RiskNone, ""
	}
	_, arch, _ := ModelFacts(r.model)
	if arch == ArchIntel {
		return RiskNone, ""
	}
	first, firstKnown := FirstMacOS(r.model)
	v := r.version
	switch {
	case v == nil && firstKnown && first.Compare(firstSafeMacOS) >= 0:
		// It shipped with 11.5 or later, so it can never run an older macOS.
		return RiskNone, ""
	case v == nil && arch == ArchAppleSilicon:
		return RiskDeactivation, fmt.Sprintf("%s is Apple silicon%s and its macOS version is unknown: %s; give --os-version or ask the device with --preflight",
			r.model, shippedWith(first, firstKnown), DeactivationRule)
	case v == nil:
		return RiskUnknown, "OS version unknown: " + DeactivationRule +
			"; give --os-version (and --model) so mdmctl can check"
	case v.Compare(firstSafeMacOS) >= 0:
		// 11.5 or later is safe on every Mac, whatever the model: a model
		// that shipped later contradicts nothing dangerous.
		return RiskNone, ""
	case isBigSurCompat(v) && firstKnown && first.Compare(Version{11}) > 0:
		return RiskDeactivation, fmt.Sprintf("the facts contradict: %s shipped with macOS %s but macOS %s is reported (how Big Sur 11.x reports itself to older software): %s",
			r.model, first, v, DeactivationRule)
	case isBigSurCompat(v):
		return RiskDeactivation, fmt.Sprintf("macOS %s is how Big Sur reports itself to older software, so this is macOS 11 with its minor version unknown, on %s: %s",
			v, describeModel(r.model, arch), DeactivationRule)
	case firstKnown && v.Compare(first) < 0:
		return RiskDeactivation, fmt.Sprintf("the facts contradict: %s shipped with macOS %s and cannot run macOS %s: %s; check the model and version",
			r.model, first, v, DeactivationRule)
	case v.Compare(firstAppleSiliconMacOS) < 0 && arch == ArchAppleSilicon:
		return RiskDeactivation, fmt.Sprintf("the facts contradict: %s is Apple silicon, which never ran a macOS before 11.0, but macOS %s is reported: %s; check the model and version",
			r.model, v, DeactivationRule)
	case v.Compare(firstAppleSiliconMacOS) < 0:
		// Below 11.0 cannot be Apple silicon (and is no iOS release that
		// still matters here either way).
		return RiskNone, ""
	case arch == ArchAppleSilicon:
		return RiskDeactivation, fmt.Sprintf("%s is Apple silicon on macOS %s: %s", r.model, v, DeactivationRule)
	case platform == PlatformUnknown && r.model == "":
		return RiskDeactivation, fmt.Sprintf("OS version %s with no platform or model may be a Mac: %s; give --platform or --model", v, DeactivationRule)
	case r.model == "":
		return RiskDeactivation, fmt.Sprintf("model unknown on macOS %s: %s; give --model", v, DeactivationRule)
	default:
		return RiskDeactivation, fmt.Sprintf("model %q is not a known Intel Mac, on macOS %s: %s", r.model, v, DeactivationRule)
	}
}

func shippedWith(first Version, known bool) string {
	if !known {
		return ""
	}
	return " that shipped with macOS " + first.String()
}

func describeModel(model string, arch Arch) string {
	switch {
	case model == "":
		return "a Mac of unknown model"
	case arch == ArchAppleSilicon:
		return model + " (Apple silicon)"
	}
	return fmt.Sprintf("model %q, not a known Intel Mac", model)
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
