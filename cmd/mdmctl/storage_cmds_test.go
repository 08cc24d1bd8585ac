package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// cmdNanoMDMSQL runs a query in the database of the script's NanoMDM
// (pgsql storage) and prints psql's unaligned rows, for stdout to match:
// what NanoMDM stored, not what mdmctl said.
func cmdNanoMDMSQL(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: nanomdm-sql QUERY")
	}
	set := devicesOf(ts)
	if set.server == nil {
		ts.Fatalf("nanomdm-sql: start nanomdm first")
	}
	out, err := set.server.Query(args[0])
	ts.Check(err)
	ts.Stdout().Write([]byte(out + "\n"))
}

// cmdCloneEnrollment enrolls every ID in FILE (one a line) on the script's
// pgsql NanoMDM as a copy of the enrolled device FROM's rows (see
// nanomdmtest.Server.CloneEnrollment): clone-enrollment FROM FILE.
func cmdCloneEnrollment(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: clone-enrollment FROM FILE")
	}
	set := devicesOf(ts)
	if set.server == nil {
		ts.Fatalf("clone-enrollment: start nanomdm first")
	}
	data, err := os.ReadFile(filepath.Join(ts.Getenv("WORK"), args[1]))
	ts.Check(err)
	ts.Check(set.server.CloneEnrollment(args[0], strings.Fields(string(data))))
}
