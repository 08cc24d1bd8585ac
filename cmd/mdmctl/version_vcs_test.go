package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestVersionFromVCS builds mdmctl as a user does from a git checkout, VCS
// stamping on (this machine's GOFLAGS turns it off, so it is asked for),
// and checks that `mdmctl version` names the checkout's commit and time,
// with "+dirty" when the tree has changes. It builds in a clone holding
// the working tree's files (the code under test, uncommitted changes too),
// because Go stamps only a checkout whose .git is a folder, not a linked
// worktree, and so that the tree can be changed without touching yours.
func TestVersionFromVCS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mdmctl twice")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	gitOut := func(dir string, args ...string) string {
		t.Helper()
		out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
		if err != nil {
			t.Fatalf("git %s: %v", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out))
	}
	if err := exec.Command("git", "rev-parse", "--show-toplevel").Run(); err != nil {
		t.Skip("not in a git checkout")
	}
	root := gitOut(".", "rev-parse", "--show-toplevel")
	head := gitOut(root, "rev-parse", "HEAD")
	secs, err := strconv.ParseInt(gitOut(root, "log", "-1", "--format=%ct", head), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	when := time.Unix(secs, 0).UTC().Format(time.RFC3339)

	clone := filepath.Join(t.TempDir(), "mdmctl")
	if out, err := exec.Command("git", "clone", "--quiet", "--shared", "--no-checkout", root, clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	gitOut(clone, "checkout", "--quiet", "--detach", head)
	copyWorkingTree(t, root, clone, strings.Split(gitOut(root, "ls-files", "--cached", "--others", "--exclude-standard"), "\n"))
	// The clone's own status is what the build stamps: the checkout's may
	// change while the tests run.
	dirty := gitOut(clone, "status", "--porcelain") != ""

	version := func() map[string]string {
		t.Helper()
		bin := filepath.Join(t.TempDir(), "mdmctl")
		build := exec.Command("go", "build", "-buildvcs=true", "-trimpath", "-o", bin, "./cmd/mdmctl")
		build.Dir = clone
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		out, err := exec.Command(bin, "version", "-o", "json").Output()
		if err != nil {
			t.Fatalf("mdmctl version: %v", err)
		}
		var got map[string]string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return got
	}
	want := head
	if dirty {
		want += "+dirty"
	}
	if got := version(); got["commit"] != want || got["date"] != when {
		t.Errorf("checkout (changed: %v): version = %v, want commit %s of %s", dirty, got, want, when)
	}
	if dirty {
		return
	}
	f, err := os.OpenFile(filepath.Join(clone, "README.md"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("\nA local change.\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := version(); got["commit"] != head+"+dirty" {
		t.Errorf("changed checkout: commit = %q, want %s+dirty", got["commit"], head)
	}
}

// copyWorkingTree makes dst's files those of src: each listed path is
// copied, or removed when src no longer has it.
func copyWorkingTree(t *testing.T, src, dst string, paths []string) {
	t.Helper()
	for _, p := range paths {
		if p == "" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, p))
		if os.IsNotExist(err) {
			_ = os.Remove(filepath.Join(dst, p))
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(filepath.Join(src, p))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, p), data, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}
