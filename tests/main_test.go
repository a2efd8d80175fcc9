package tests

import (
	"testing"

	"github.com/wasmgrid/wasmgrid/internal/executor"
	"github.com/wasmgrid/wasmgrid/internal/storage/s3test"
)

// TestMain lets the test binary serve as the executors of the grids that
// the tests start.
func TestMain(m *testing.M) {
	executor.MainIfExecutor()
	s3test.Main(m) // runs the tests, then stops the S3 server if one started
}
