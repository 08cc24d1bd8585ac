package nanomdmtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Environment of the helper process TestMain turns the test binary into.
const (
	helperBinDir = "NANOMDMTEST_HELPER_BINDIR"
	helperSource = "NANOMDMTEST_HELPER_SOURCE"
	helperCount  = "NANOMDMTEST_HELPER_COUNT"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperBinDir); dir != "" {
		// One of several processes racing to install into dir, as
		// parallel `go test` packages do.
		bin, err := ensureBinary(dir, fakeInstall(os.Getenv(helperSource), os.Getenv(helperCount)))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Print(bin)
		os.Exit(0)
	}
	code := m.Run()
	StopPostgres()
	os.Exit(code)
}

// fakeInstall stands in for `go install`: it copies src (a real nanomdm
// v0.9.0) into the GOBIN it is given and logs one line per install.
func fakeInstall(src, countFile string) func(string) error {
	return func(gobin string) error {
		if err := copyFile(src, filepath.Join(gobin, exeName())); err != nil {
			return err
		}
		f, err := os.OpenFile(countFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = fmt.Fprintln(f, "installed")
		return err
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func installs(t *testing.T, countFile string) int {
	t.Helper()
	data, err := os.ReadFile(countFile)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(data, []byte("\n"))
}

func TestEnsureBinaryInstallsOnceAcrossProcesses(t *testing.T) {
	real := BinaryT(t)
	if !isWanted(real) {
		t.Fatalf("%s is not nanomdm %s", real, Version)
	}
	binDir := filepath.Join(t.TempDir(), ".bin")
	countFile := filepath.Join(t.TempDir(), "count")
	const procs = 4
	var wg sync.WaitGroup
	outs := make([]string, procs)
	errs := make([]error, procs)
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), helperBinDir+"="+binDir, helperSource+"="+real, helperCount+"="+countFile)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			outs[i] = string(out)
			if err != nil {
				errs[i] = fmt.Errorf("%v: %s", err, stderr.String())
			}
		}()
	}
	wg.Wait()
	want := filepath.Join(binDir, exeName())
	for i := range procs {
		if errs[i] != nil || outs[i] != want {
			t.Errorf("process %d: %q, %v; want %s", i, outs[i], errs[i], want)
		}
	}
	if n := installs(t, countFile); n != 1 {
		t.Errorf("%d processes installed %d times, want once", procs, n)
	}
	if !isWanted(want) {
		t.Errorf("%s is not nanomdm %s", want, Version)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(binDir, ".install-*")); len(leftovers) != 0 {
		t.Errorf("install directories left behind: %v", leftovers)
	}
}

func TestEnsureBinaryReplacesOtherVersions(t *testing.T) {
	real := BinaryT(t)
	binDir := t.TempDir()
	countFile := filepath.Join(t.TempDir(), "count")
	stale := filepath.Join(binDir, exeName())
	if err := os.WriteFile(stale, []byte("#!/bin/sh\necho old nanomdm\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	bin, err := ensureBinary(binDir, fakeInstall(real, countFile))
	if err != nil || bin != stale || !isWanted(bin) || installs(t, countFile) != 1 {
		t.Fatalf("ensureBinary over a stale file: %q, %v, %d installs", bin, err, installs(t, countFile))
	}
	if _, err := ensureBinary(binDir, fakeInstall(real, countFile)); err != nil || installs(t, countFile) != 1 {
		t.Errorf("a current binary was installed again (%v)", err)
	}

	// A failed or wrong install is an error and leaves nothing behind.
	empty := t.TempDir()
	boom := errors.New("proxy unreachable")
	if _, err := ensureBinary(empty, func(string) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("install failure: %v", err)
	}
	self, _ := os.Executable()
	if _, err := ensureBinary(empty, func(gobin string) error { return copyFile(self, filepath.Join(gobin, exeName())) }); err == nil || !strings.Contains(err.Error(), "is not "+nanomdmModule) {
		t.Errorf("installing a binary that is not nanomdm: %v", err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(empty, ".install-*")); len(leftovers) != 0 {
		t.Errorf("install directories left behind: %v", leftovers)
	}
}

func TestModuleRoot(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "nanomdmtest")); err != nil {
		t.Errorf("module root %s does not hold this package", root)
	}
	if isOwnModule([]byte("module github.com/micromdm/nanomdm\n")) || !isOwnModule([]byte("// x\nmodule github.com/mdmctl/mdmctl\n\ngo 1.26\n")) {
		t.Error("isOwnModule misreads go.mod")
	}
}
