package docs

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompletionsUpToDate fails when a flag or command changed without the
// committed completion scripts being regenerated.
func TestCompletionsUpToDate(t *testing.T) {
	dir := t.TempDir()
	if err := Completions(dir); err != nil {
		t.Fatal(err)
	}
	for name := range CompletionFiles {
		fresh, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(filepath.Join("..", "..", "..", "completions", name))
		if err != nil {
			t.Fatalf("completions/%s: %v (run: go generate ./...)", name, err)
		}
		if !bytes.Equal(fresh, committed) {
			t.Errorf("completions/%s is out of date: run go generate ./...", name)
		}
	}
}

func TestManPages(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1764288000")
	dir := t.TempDir()
	if err := Man(dir); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(dir, "mdmctl-lock.1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--allow-deactivation", "--pin-file", "Nov 2025"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("mdmctl-lock.1 lacks %q", want)
		}
	}
}
