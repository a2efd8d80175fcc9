package main

import (
	"os"
	"testing"

	"github.com/wasmgrid/wasmgrid/internal/executor"
)

// TestMain lets the test binary serve as the executors of the grids that
// the tests start.
func TestMain(m *testing.M) {
	executor.MainIfExecutor()
	os.Exit(m.Run())
}
