package apple

import (
	"strconv"
	"strings"
)

// The first macOS each Apple silicon model shipped with. A Mac never runs
// a macOS older than the one it shipped with, so only models that shipped
// before 11.5 can ever be in DeviceLock's dangerous range (11.0–11.4.x).
//
// Sources: Apple Support 116943 "Mac computers with Apple silicon" and each
// model's tech-specs page (the macOS it came with), cross-checked with the
// identifiers in macadmins/sofa data/models/sources/macos_devices.json.
// SOFA's "systemFirstRelease" is not a shipping version (it says 11.0 for
// the 2022 Mac Studio, Mac13,1, which came with 12.3), so it is not used.
// Where models of one line shipped with different point releases, the
// table keeps the earliest: a lower floor flags fewer contradictions but
// never lets a dangerous reading through, since every floor here but the
// five first models is at or above 11.5.
var appleSiliconFirstMacOS = map[string]Version{
	// The five that shipped before 11.5: the only ones that can be deactivated.
	"MacBookAir10,1": {11, 0}, "MacBookPro17,1": {11, 0}, "Macmini9,1": {11, 0},
	"iMac21,1": {11, 3}, "iMac21,2": {11, 3},

	"MacBookPro18,1": {12, 0}, "MacBookPro18,2": {12, 0}, "MacBookPro18,3": {12, 0}, "MacBookPro18,4": {12, 0},
	"Mac13,1": {12, 3}, "Mac13,2": {12, 3},
	"Mac14,2": {12, 4}, "Mac14,7": {12, 4},
	"Mac14,3": {13, 2}, "Mac14,5": {13, 2}, "Mac14,6": {13, 2}, "Mac14,9": {13, 2}, "Mac14,10": {13, 2}, "Mac14,12": {13, 2},
	"Mac14,8": {13, 4}, "Mac14,13": {13, 4}, "Mac14,14": {13, 4}, "Mac14,15": {13, 4},
	"Mac15,3": {14, 1}, "Mac15,4": {14, 1}, "Mac15,5": {14, 1}, "Mac15,6": {14, 1}, "Mac15,7": {14, 1},
	"Mac15,8": {14, 1}, "Mac15,9": {14, 1}, "Mac15,10": {14, 1}, "Mac15,11": {14, 1},
	"Mac15,12": {14, 3}, "Mac15,13": {14, 3}, "Mac15,14": {15, 3},
	"Mac16,1": {15, 1}, "Mac16,2": {15, 1}, "Mac16,3": {15, 1}, "Mac16,5": {15, 1}, "Mac16,6": {15, 1},
	"Mac16,7": {15, 1}, "Mac16,8": {15, 1}, "Mac16,10": {15, 1}, "Mac16,11": {15, 1},
	"Mac16,9": {15, 3}, "Mac16,12": {15, 3}, "Mac16,13": {15, 3},
	"Mac17,2": {26, 0},
	// Apple's arm64 virtual machine: the Virtualization framework runs a
	// macOS guest from macOS 12 on.
	"VirtualMac2,1": {12, 0},
}

// firstBareMacMacOS bounds identifiers of the bare Mac family that the
// table does not list yet (a new model): the family began with Mac13,1 on
// macOS 12.3, and no Intel Mac ever used the bare prefix.
var firstBareMacMacOS = Version{12, 3}

// FirstMacOS is the oldest macOS model can run, when known: the release it
// shipped with. ok is false for Intel and unknown models.
func FirstMacOS(model string) (Version, bool) {
	if v, ok := appleSiliconFirstMacOS[model]; ok {
		return v, true
	}
	if rest, ok := strings.CutPrefix(model, "Mac"); ok {
		if major, _, ok := strings.Cut(rest, ","); ok {
			if n, err := strconv.Atoi(major); err == nil && n >= 13 {
				if _, arch, known := ModelFacts(model); known && arch == ArchAppleSilicon {
					return firstBareMacMacOS, true
				}
			}
		}
	}
	return nil, false
}

// isBigSurCompat is true for 10.16: the version macOS 11 reports to
// software built against an older SDK (SYSTEM_VERSION_COMPAT=1);
// inventories have shown it for 11.x Macs (fleetdm/fleet#377). It means
// "11.something, minor unknown".
func isBigSurCompat(v Version) bool {
	return len(v) >= 2 && v[0] == 10 && v[1] == 16
}
