package executor

import (
	"context"
	"errors"
	"log/slog"
	"os/exec"
	"runtime"
)

// Spawner starts executor processes from one goroutine locked to its OS
// thread for as long as Run runs. On Linux an executor's parent-death
// signal (SIGKILL) fires when the thread that forked it exits; a thread of
// Go's pool could in principle exit under it, this one exits only when Run
// returns, and then takes any executor still alive with it.
type Spawner struct {
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

// NewSpawner returns a Spawner; Run starts it.
func NewSpawner() *Spawner { return &Spawner{reqs: make(chan spawnReq)} }

var errSpawnerStopped = errors.New("executor: the spawner has stopped")

// Run starts the processes asked of Start until ctx ends. Stop the
// executors first: when Run returns, its thread ends, and the kernel kills
// the executors it started.
func (s *Spawner) Run(ctx context.Context) {
	// Never unlocked: the thread ends with this goroutine.
	runtime.LockOSThread()
	for {
		select {
		case r := <-s.reqs:
			r.done <- r.cmd.Start()
		case <-ctx.Done():
			return
		}
	}
}

// Start starts an executor process as StartProcess does, from the
// Spawner's thread. It fails if Run is not running by the time ctx ends.
func (s *Spawner) Start(ctx context.Context, argv []string, cfg Config, logger *slog.Logger) (*Process, error) {
	return startProcess(argv, cfg, logger, func(cmd *exec.Cmd) error {
		r := spawnReq{cmd: cmd, done: make(chan error, 1)}
		select {
		case s.reqs <- r:
		case <-ctx.Done():
			return errors.Join(errSpawnerStopped, context.Cause(ctx))
		}
		return <-r.done
	})
}
