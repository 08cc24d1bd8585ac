//go:build unix && !linux

package pgtest

import (
	"os/exec"
	"syscall"
)

// runAs runs cmd as owner (nil: as ourselves).
func runAs(cmd *exec.Cmd, owner *account) {
	if owner != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: owner.uid, Gid: owner.gid}}
	}
}
