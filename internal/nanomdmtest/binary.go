package nanomdmtest

import (
	"bytes"
	"debug/buildinfo"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
)

// Version is the NanoMDM release mdmctl is tested against.
const Version = "v0.9.0"

const (
	nanomdmModule  = "github.com/micromdm/nanomdm"
	nanomdmPackage = nanomdmModule + "/cmd/nanomdm"
	ownModule      = "github.com/mdmctl/mdmctl"
	// EnvBinary names a nanomdm binary to use instead of <module>/.bin/nanomdm.
	EnvBinary = "MDMCTL_NANOMDM"
)

// installMu serialises installs inside one process; the file lock does
// it across the processes of a parallel `go test ./...`.
var installMu sync.Mutex

// Binary returns the nanomdm binary: $MDMCTL_NANOMDM as given, else
// <module root>/.bin/nanomdm, installed with `go install …@v0.9.0` when it
// is missing or is not v0.9.0.
func Binary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("$%s: %w", EnvBinary, err)
		}
		return p, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	return ensureBinary(filepath.Join(root, ".bin"), goInstall)
}

// BinaryT is Binary for tests: it fails t instead of returning an error.
func BinaryT(t TB) string {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("nanomdm binary: %v", err)
	}
	return bin
}

func exeName() string {
	if runtime.GOOS == "windows" {
		return "nanomdm.exe"
	}
	return "nanomdm"
}

// ensureBinary returns binDir/nanomdm, installing it with install (which
// writes nanomdm into the directory it is given) when it is not the wanted
// version. Installs go to a private directory and are renamed into place,
// so no process ever runs a half-written binary; the lock keeps parallel
// test processes from building it several times over.
func ensureBinary(binDir string, install func(gobin string) error) (string, error) {
	bin := filepath.Join(binDir, exeName())
	if isWanted(bin) {
		return bin, nil
	}
	installMu.Lock()
	defer installMu.Unlock()
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(filepath.Join(binDir, ".nanomdm-install.lock"))
	if err != nil {
		return "", fmt.Errorf("locking %s: %w", binDir, err)
	}
	defer unlock()
	if isWanted(bin) { // another process installed it while we waited
		return bin, nil
	}
	tmp, err := os.MkdirTemp(binDir, ".install-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := install(tmp); err != nil {
		return "", err
	}
	if err := os.Rename(filepath.Join(tmp, exeName()), bin); err != nil {
		return "", err
	}
	if !isWanted(bin) {
		return "", fmt.Errorf("installed %s is not %s@%s", bin, nanomdmModule, Version)
	}
	return bin, nil
}

// isWanted reads the module version Go stamped into the binary: `nanomdm
// -version` prints "unknown" for go-installed builds.
func isWanted(bin string) bool {
	info, err := buildinfo.ReadFile(bin)
	return err == nil && info.Main.Path == nanomdmModule && info.Main.Version == Version
}

func goInstall(gobin string) error {
	cmd := exec.Command("go", "install", nanomdmPackage+"@"+Version)
	// Run outside the module: `go install pkg@version` ignores go.mod, and
	// -mod=mod overrides a GOFLAGS=-mod=vendor that would make it refuse.
	cmd.Dir = gobin
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go install %s@%s: %v\n%s", nanomdmPackage, Version, err, out)
	}
	return nil
}

// moduleRoot finds mdmctl's go.mod above the working directory (tests run
// in their package directory; tools and scripts from the repository).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && isOwnModule(data) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no mdmctl go.mod above the working directory; set $" + EnvBinary)
		}
		dir = parent
	}
}

func isOwnModule(gomod []byte) bool {
	for line := range bytes.Lines(gomod) {
		f := bytes.Fields(line)
		if len(f) == 2 && string(f[0]) == "module" && string(f[1]) == ownModule {
			return true
		}
	}
	return false
}
