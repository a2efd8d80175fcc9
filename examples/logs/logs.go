// Package logs holds the host side of the logs example, a job in two
// languages over web server access logs: its map, which parses the lines,
// runs in Rust (guest/rust) and its reduce, which adds up the counts, in Go
// (guest/go). Job builds in Go, with the SDK, the job that job.toml
// describes; Generate writes synthetic access logs for the tests and the
// sample in data/.
package logs

import (
	"path/filepath"

	"github.com/wasmgrid/wasmgrid/sdk"
)

// Top is the number of lines of the report that job.toml prints: every
// status code, the count of malformed lines, and the most requested paths
// in the lines that remain.
const Top = 20

// Config says what the job reads and what it keeps. Zero fields get the
// defaults of job.toml.
type Config struct {
	// Dir is the example's directory, which holds guest/ (default
	// "examples/logs", from the repository's root).
	Dir string
	// Input is a glob of access logs (default: the sample, Dir/data/*.log).
	Input string
	// Top is the number of lines kept (default Top).
	Top int64
	// Sink is where the report goes (default sdk.Stdout()).
	Sink sdk.Sink
}

// Job builds the logs job in Go: the job of job.toml. The Rust guest's
// parse turns each line into ("status <code>", "1") and ("path <path>",
// "1"), or ("malformed", "1"); the Go guest's sum adds the counts up (on
// the map side too), by_rank keys each count for the sort, and format
// writes the lines "kind<TAB>name<TAB>count" of the report, of which the
// first cfg.Top are kept.
func Job(cfg Config) *sdk.JobBuilder {
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join("examples", "logs")
	}
	if cfg.Input == "" {
		cfg.Input = filepath.Join(cfg.Dir, "data", "*.log")
	}
	if cfg.Top <= 0 {
		cfg.Top = Top
	}
	if cfg.Sink == (sdk.Sink{}) {
		cfg.Sink = sdk.Stdout()
	}
	job := sdk.NewJob("logs")
	rs := job.Module("rust", sdk.GuestDir(filepath.Join(cfg.Dir, "guest", "rust")))
	gov := job.Module("go", sdk.GoGuest(filepath.Join(cfg.Dir, "guest", "go")))
	job.TextFile(cfg.Input).
		FlatMap(rs.Func("parse")).
		ReduceByKey(gov.Func("sum")).
		Map(gov.Func("by_rank")).
		SortByKey(0).
		Map(gov.Func("format")).
		Take(cfg.Top, cfg.Sink)
	return job
}
