package pgtest

import (
	"os/exec"
	"syscall"
)

// runAs runs cmd as owner (nil: as ourselves), and has the kernel kill it
// if the test process dies before its cleanup runs.
func runAs(cmd *exec.Cmd, owner *account) {
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if owner != nil {
		attr.Credential = &syscall.Credential{Uid: owner.uid, Gid: owner.gid}
	}
	cmd.SysProcAttr = attr
}
