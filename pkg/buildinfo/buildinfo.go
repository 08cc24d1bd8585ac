// Package buildinfo reports mdmctl's version, commit and build date: set by
// the release's -ldflags, else read from the Go module build info.
package buildinfo

import (
	"runtime/debug"
)

// Set with -ldflags "-X github.com/mdmctl/mdmctl/pkg/buildinfo.Version=..." etc.
var (
	Version = ""
	Commit  = ""
	Date    = ""
)

// Info is what `mdmctl version` prints.
type Info struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
}

// Get fills what ldflags left empty from the binary's build info: the module
// version for `go install ...@v1.2.3`, the VCS revision and time for a checkout.
func Get() Info {
	info := Info{Version: Version, Commit: Commit, Date: Date}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && info.Commit == "":
				info.Commit = s.Value
			case s.Key == "vcs.time" && info.Date == "":
				info.Date = s.Value
			}
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	if info.Date == "" {
		info.Date = "unknown"
	}
	return info
}
