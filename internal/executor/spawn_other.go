//go:build !linux

package executor

import (
	"os/exec"
	"syscall"
)

// sysProcAttr puts an executor in a process group of its own. Without a
// parent-death signal, the executor's watch of its parent and of its
// input is what ends it when its agent dies.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func startLocked(cmd *exec.Cmd) error { return cmd.Start() }
