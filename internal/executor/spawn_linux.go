package executor

import (
	"os/exec"
	"runtime"
	"syscall"
)

// sysProcAttr is how an executor is started: in a process group of its
// own, so that a signal to the agent's group (Ctrl-C in a terminal) is the
// agent's to handle, and with SIGKILL as its parent-death signal, so that
// it dies with its agent even while its guests spin.
//
// The kernel sends the parent-death signal when the *thread* that forked
// the child exits, not the process. Go threads do not exit, except one
// whose goroutine locked it and ended without unlocking: a Spawner forks
// from such a thread, its own, which lives as long as the Spawner runs.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

// startLocked starts cmd with the calling goroutine locked to its thread,
// for callers without a Spawner (the coordinator's short-lived inspectors,
// tests). The thread returns to Go's pool afterwards; Go ends a pool
// thread only when a goroutine that locked it ends still locked, which no
// code in this program does, so the signal still fires only when the
// process dies. A Spawner does not rely on that.
func startLocked(cmd *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Start()
}
