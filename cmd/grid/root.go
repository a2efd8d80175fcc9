package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
)

// exitError carries an exit status through cobra.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// execute runs the command line and returns the process's exit status.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var in interrupted
	if errors.As(context.Cause(ctx), &in) {
		// A command that a signal stopped: it said what it stopped, or
		// the error says what the signal cut short.
		if !errors.As(err, &in) {
			fmt.Fprintf(stderr, "grid: %v (%v)\n", err, in)
		}
		return in.code()
	}
	fmt.Fprintf(stderr, "grid: %v\n", err)
	return 1
}

type globals struct {
	logLevel string
	stdout   io.Writer
	stderr   io.Writer
}

func (g *globals) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", g.logLevel)
	}
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: lvl})), nil
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "grid",
		Short:         "wasmgrid: data jobs whose tasks are WebAssembly modules",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	root.AddCommand(newRunCmd(g), newBenchCmd(g))
	root.AddCommand(newAllocatorCmd(g))
	root.AddCommand(newInitCmd(g), newConfigCmd(g), newCoordinatorCmd(g), newAgentCmd(g), newUpCmd(g))
	root.AddCommand(newClientCmds(g)...)
	return root
}

// assignments turns repeated k=v flags into a map.
func assignments(flag string, kvs []string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q: write it as --%s name=value", flag, kv, flag)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("--%s %s is given twice", flag, k)
		}
		m[k] = v
	}
	return m, nil
}
