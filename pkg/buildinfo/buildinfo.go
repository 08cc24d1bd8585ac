// Package buildinfo reports mdmctl's version, commit and its date: set by
// the release's -ldflags, else read from the Go module build info. The
// ldflags win field by field and the build info fills only what they leave
// empty, so a release says exactly what goreleaser stamped (the commit and
// the commit's date, as the build info would), and a build from a git
// checkout (go build, go install, with VCS stamping on: the default, unless
// GOFLAGS says -buildvcs=false) names its commit, "+dirty" when the tree had
// changes. Go stamps only a checkout whose .git is a folder, not a linked
// worktree.
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
		info = fromBuildInfo(info, bi)
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

func fromBuildInfo(info Info, bi *debug.BuildInfo) Info {
	if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	vcs := map[string]string{}
	for _, s := range bi.Settings {
		vcs[s.Key] = s.Value
	}
	if info.Commit == "" && vcs["vcs.revision"] != "" {
		info.Commit = vcs["vcs.revision"]
		if vcs["vcs.modified"] == "true" {
			info.Commit += "+dirty"
		}
	}
	if info.Date == "" {
		info.Date = vcs["vcs.time"]
	}
	return info
}
