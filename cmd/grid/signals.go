package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// interrupted is the cause of a context that SIGINT or SIGTERM ended. A
// command that stops because of it returns it, and the process exits with
// the shell's status for the signal: 128 + its number (130, 143).
type interrupted struct{ sig syscall.Signal }

func (e interrupted) Error() string { return "interrupted by " + signalName(e.sig) }

func (e interrupted) code() int { return 128 + int(e.sig) }

func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// signalContext returns a context that the first SIGINT or SIGTERM ends
// with an interrupted cause, so that the command stops what it runs and
// cleans up; a second signal exits at once, with the status of that
// signal, whatever is still running (executors die with this process).
// stop restores the default handling.
func signalContext(parent context.Context, stderr io.Writer) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case sig := <-sigs:
			cancel(interrupted{sig.(syscall.Signal)})
		case <-done:
			return
		}
		select {
		case sig := <-sigs:
			in := interrupted{sig.(syscall.Signal)}
			fmt.Fprintf(stderr, "grid: %v again: exiting now\n", in)
			os.Exit(in.code())
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		<-exited
		cancel(nil)
	}
}
