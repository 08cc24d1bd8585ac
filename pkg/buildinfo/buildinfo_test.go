package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	checkout := func(modified string) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261203174232-a538690faa4a"}, Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "a538690faa4a9b37af152e0106eff90b120ebb21"},
			{Key: "vcs.time", Value: "2026-12-03T17:42:32Z"}, {Key: "vcs.modified", Value: modified},
		}}
	}
	tests := []struct {
		name    string
		ldflags Info
		bi      *debug.BuildInfo
		want    Info
	}{
		{"clean checkout", Info{}, checkout("false"),
			Info{"v0.0.0-20261203174232-a538690faa4a", "a538690faa4a9b37af152e0106eff90b120ebb21", "2026-12-03T17:42:32Z"}},
		{"dirty checkout", Info{}, checkout("true"),
			Info{"v0.0.0-20261203174232-a538690faa4a", "a538690faa4a9b37af152e0106eff90b120ebb21+dirty", "2026-12-03T17:42:32Z"}},
		// goreleaser's ldflags win over the VCS info, field by field.
		{"release", Info{"1.2.3", "0123456789abcdef0123456789abcdef01234567", "2026-11-30T10:00:00Z"}, checkout("true"),
			Info{"1.2.3", "0123456789abcdef0123456789abcdef01234567", "2026-11-30T10:00:00Z"}},
		{"ldflags version only", Info{Version: "1.2.3"}, checkout("false"),
			Info{"1.2.3", "a538690faa4a9b37af152e0106eff90b120ebb21", "2026-12-03T17:42:32Z"}},
		{"go install of a tag", Info{}, &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, Info{Version: "v1.2.3"}},
		{"no VCS", Info{}, &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, Info{}},
	}
	for _, tt := range tests {
		if got := fromBuildInfo(tt.ldflags, tt.bi); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
