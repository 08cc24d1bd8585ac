package main

import "syscall"

// ttyProcAttr makes the child's stdin terminal its controlling terminal, so
// Ctrl-C typed there reaches it as SIGINT.
func ttyProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
}
