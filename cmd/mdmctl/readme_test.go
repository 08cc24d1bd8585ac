package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mdmctl/mdmctl/internal/nanomdmtest"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// TestReadmeQuickStart runs the README's Quick start blocks as written, a
// line at a time in a shell, so the README and mdmctl cannot drift apart:
// the sandbox block as it is, the NanoMDM block against the real NanoMDM
// (its example server URL and key replaced by the test server's).
func TestReadmeQuickStart(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := quickStartBlocks(t, string(readme))
	var script strings.Builder
	script.WriteString("# Generated from README.md's Quick start.\n")
	for _, line := range blocks[0] {
		writeLine(&script, line)
	}
	script.WriteString("nanomdm\nenroll 00008020-000915083C80012E platform=ios\nenv NANOMDM_API_KEY=$MDMCTL_API_KEY\nenv MDMCTL_SERVER=\nenv MDMCTL_API_KEY=\n")
	for _, line := range blocks[1] {
		writeLine(&script, strings.ReplaceAll(line, "https://mdm.example.com", "$NANOMDM_URL"))
	}
	// The test server has no APNs certificate, so the lock is queued but not
	// pushed (exit 3, above); the device gets it at its next check-in.
	script.WriteString("checkin 00008020-000915083C80012E\nreceived 00008020-000915083C80012E\nstdout 'DeviceLock message=\"Return to IT\" phone=\"408-555-5555\"'\n")

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "quick_start.txtar"), []byte(script.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	p := scriptParams(t, nanomdmtest.InMem)
	p.Dir = dir
	testscript.Run(t, p)
}

// exitComment is how the README notes a line's exit code: "... exit 6".
var exitComment = regexp.MustCompile(`#.*\bexit (\d+)\b`)

// writeLine runs one README line with sh, expecting the exit code its
// comment names (0 when it names none; 3 for a lock against the test
// server, which cannot push).
func writeLine(b *strings.Builder, line string) {
	code := "0"
	if m := exitComment.FindStringSubmatch(line); m != nil {
		code = m[1]
	} else if strings.HasPrefix(line, "mdmctl lock ") && strings.Contains(line, "--phone") {
		code = "3"
	}
	// In testscript, '' stands for ' inside a quoted argument.
	fmt.Fprintf(b, "exits %s sh -c '%s'\n", code, strings.ReplaceAll(line, "'", "''"))
}

// quickStartBlocks returns the lines of the first two code blocks under
// "## Quick start".
func quickStartBlocks(t *testing.T, readme string) [][]string {
	_, section, ok := strings.Cut(readme, "\n## Quick start\n")
	if !ok {
		t.Fatal("README.md has no Quick start section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var blocks [][]string
	parts := strings.Split(section, "```")
	for i := 1; i < len(parts) && len(blocks) < 2; i += 2 {
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(parts[i]), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
		blocks = append(blocks, lines)
	}
	if len(blocks) != 2 {
		t.Fatalf("Quick start has %d code blocks, want the sandbox's and NanoMDM's", len(blocks))
	}
	return blocks
}

// TestReadmeKindsTable: every registered kind has its row in the README's
// table of what each kind can do.
func TestReadmeKindsTable(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		if name, ok := strings.CutPrefix(line, "| `"); ok {
			if kind, _, ok := strings.Cut(name, "` |"); ok {
				rows[kind] = true
			}
		}
	}
	for _, kind := range server.Kinds() {
		if !rows[kind] {
			t.Errorf("README has no row for the %s kind in its kinds table", kind)
		}
	}
}
