package executor

import (
	"fmt"
	"syscall"
	"time"
	"unsafe"
)

// killTimer is a POSIX timer that sends this process a signal when it
// expires: a deadline that the kernel enforces. A guest that runs without
// termination checks cannot be preempted, so while one spins, a garbage
// collection of the executor cannot stop the world, and no goroutine runs
// (an executor's allocations start one within moments, and Go forces one
// every two minutes anyway): a deadline kept by a Go timer would then never
// fire. Go's handler of SIGTERM (not caught with signal.Notify) ends the
// process from inside the signal handler, so it works then too, and the
// exit status says which signal it was.
type killTimer struct{ id int32 }

// sigevent is the kernel's struct sigevent (64 bytes on 64-bit Linux).
type sigevent struct {
	value  uint64
	signo  int32
	notify int32
	_      [12]int32
}

type itimerspec struct {
	interval, value syscall.Timespec
}

const (
	clockMonotonic = 1
	sigevSignal    = 0
)

// armKillTimer sends this process sig after d, unless stopped first.
func armKillTimer(d time.Duration, sig syscall.Signal) (*killTimer, error) {
	ev := sigevent{signo: int32(sig), notify: sigevSignal}
	var id int32
	if _, _, e := syscall.RawSyscall(syscall.SYS_TIMER_CREATE, clockMonotonic, uintptr(unsafe.Pointer(&ev)), uintptr(unsafe.Pointer(&id))); e != 0 {
		return nil, fmt.Errorf("timer_create: %w", e)
	}
	spec := itimerspec{value: syscall.NsecToTimespec(max(int64(d), 1))}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_TIMER_SETTIME, uintptr(id), 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0); e != 0 {
		syscall.RawSyscall(syscall.SYS_TIMER_DELETE, uintptr(id), 0, 0)
		return nil, fmt.Errorf("timer_settime: %w", e)
	}
	return &killTimer{id: id}, nil
}

// stop disarms and deletes the timer.
func (k *killTimer) stop() {
	syscall.RawSyscall(syscall.SYS_TIMER_DELETE, uintptr(k.id), 0, 0)
}
