//go:build !linux

package executor

import (
	"errors"
	"syscall"
	"time"
)

type killTimer struct{}

func armKillTimer(time.Duration, syscall.Signal) (*killTimer, error) {
	return nil, errors.New("no kernel kill timer on this system")
}

func (*killTimer) stop() {}
