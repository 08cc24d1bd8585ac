package cmdutil

import (
	"go/build"
	"strings"
	"testing"
)

// TestImportsNoServerOrReport keeps cmdutil what every command shares and
// nothing more: servers, their answers and the reports of runs belong to
// the packages that own them (connect, exitcode, dispatch).
func TestImportsNoServerOrReport(t *testing.T) {
	p, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range p.Imports {
		for _, banned := range []string{"/pkg/server", "/pkg/report", "/pkg/webhook", "/pkg/dispatch", "/pkg/apple"} {
			if strings.HasSuffix(imp, banned) || strings.Contains(imp, banned+"/") {
				t.Errorf("cmdutil imports %s", imp)
			}
		}
	}
}
