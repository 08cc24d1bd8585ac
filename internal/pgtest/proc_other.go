//go:build !unix

package pgtest

import "os/exec"

// runAs can only run cmd as ourselves here; Windows has no root to avoid.
func runAs(*exec.Cmd, *account) {}
