package release

import (
	"bytes"
	"crypto/sha256"
	"debug/macho"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// distEnv names goreleaser's dist folder. Unset (a plain `go test ./...`)
// the tests skip; set, a missing artifact fails them.
const distEnv = "MDMCTL_RELEASE_DIST"

// artifact is the part of an entry in dist/artifacts.json the tests read.
type artifact struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	GOOS   string `json:"goos"`
	GOARCH string `json:"goarch"`
	Type   string `json:"type"`
}

func distDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(distEnv)
	if dir == "" {
		t.Skipf("%s is not set: run `goreleaser release --snapshot --clean` and point it at dist/ (.ci/run does)", distEnv)
	}
	return dir
}

// artifacts reads goreleaser's list of what it built. Its paths are
// relative to the folder goreleaser ran in, the dist folder's parent.
func artifacts(t *testing.T, dist string) []artifact {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dist, "artifacts.json"))
	if err != nil {
		t.Fatalf("the snapshot's artifact list: %v", err)
	}
	var list []artifact
	if err := json.Unmarshal(data, &list); err != nil {
		t.Fatalf("%s/artifacts.json: %v", dist, err)
	}
	root := filepath.Dir(filepath.Clean(dist))
	for i := range list {
		list[i].Path = filepath.Join(root, list[i].Path)
	}
	return list
}

func snapshotVersion(t *testing.T, dist string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dist, "metadata.json"))
	if err != nil {
		t.Fatalf("the snapshot's metadata: %v", err)
	}
	var meta struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(data, &meta); err != nil || meta.Version == "" {
		t.Fatalf("%s/metadata.json has no version (%v)", dist, err)
	}
	return meta.Version
}

// TestUniversalDarwinBinary opens the one macOS binary as a fat Mach-O and
// checks that it holds an arm64 and an amd64 executable, each stamped with
// this release's version, and that no per-architecture darwin binary is
// left beside it.
func TestUniversalDarwinBinary(t *testing.T) {
	dist := distDir(t)
	var universal []artifact
	for _, a := range artifacts(t, dist) {
		if a.Type != "Binary" || a.GOOS != "darwin" {
			continue
		}
		if a.GOARCH != "all" {
			t.Errorf("darwin binary for %s alone (%s): the universal binary should replace it", a.GOARCH, a.Path)
			continue
		}
		universal = append(universal, a)
	}
	if len(universal) != 1 {
		t.Fatalf("want one universal darwin binary in %s/artifacts.json, found %d", dist, len(universal))
	}
	path := universal[0].Path
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fat, err := macho.NewFatFile(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s is not a universal Mach-O: %v", path, err)
	}
	defer fat.Close()

	version := []byte(snapshotVersion(t, dist))
	want := map[macho.Cpu]bool{macho.CpuArm64: false, macho.CpuAmd64: false}
	for _, slice := range fat.Arches {
		if _, ok := want[slice.Cpu]; !ok {
			t.Errorf("%s: unexpected slice %v", path, slice.Cpu)
			continue
		}
		want[slice.Cpu] = true
		if slice.Type != macho.TypeExec {
			t.Errorf("%s: the %v slice is a %v, not an executable", path, slice.Cpu, slice.Type)
		}
		if slice.Segment("__TEXT") == nil {
			t.Errorf("%s: the %v slice has no __TEXT segment", path, slice.Cpu)
		}
		body := data[slice.Offset : slice.Offset+slice.Size]
		if !bytes.Contains(body, version) {
			t.Errorf("%s: the %v slice does not carry the release's version %q", path, slice.Cpu, version)
		}
	}
	for cpu, found := range want {
		if !found {
			t.Errorf("%s has no %v slice", path, cpu)
		}
	}
}

// TestChecksums recomputes every line of checksums.txt and checks that the
// file covers every archive and Linux package goreleaser made.
func TestChecksums(t *testing.T) {
	dist := distDir(t)
	data, err := os.ReadFile(filepath.Join(dist, "checksums.txt"))
	if err != nil {
		t.Fatalf("the snapshot's checksums: %v", err)
	}
	listed := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("checksums.txt: malformed line %q", line)
		}
		listed[name] = sum
	}
	for _, a := range artifacts(t, dist) {
		if a.Type != "Archive" && a.Type != "Linux Package" {
			continue
		}
		sum, ok := listed[a.Name]
		if !ok {
			t.Errorf("checksums.txt has no line for %s", a.Name)
			continue
		}
		body, err := os.ReadFile(a.Path)
		if err != nil {
			t.Fatal(err)
		}
		got := sha256.Sum256(body)
		if hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s: checksums.txt says %s, the file hashes to %x", a.Name, sum, got)
		}
	}
}
