//go:build !linux

package nanomdmtest

import "os/exec"

// dieWithParent has no portable equivalent; Close and t.Cleanup kill the server.
func dieWithParent(*exec.Cmd) {}
