package tests

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/examples/wordcount"
	"github.com/wasmgrid/wasmgrid/grid"
	"github.com/wasmgrid/wasmgrid/internal/guestbuild"
	"github.com/wasmgrid/wasmgrid/internal/jobspec"
	"github.com/wasmgrid/wasmgrid/wasmexec"
)

// The hostile-module corpus: modules a tenant could upload to hurt the grid
// (hang it, exhaust its memory, crash it, escape the sandbox, flood it), each
// with the error it must produce. tests/hostile/README.md lists them.
//
// The grid's module limits are smaller than the defaults so that the size
// caps can be tested with small modules, but they must still admit the Go
// word-count guest (about 3.1 MiB, 1.1 MiB of it data segments).
var hostileLimits = wasmexec.ModuleLimits{
	MaxBytes:     6 << 20,
	MaxDataBytes: 2 << 20,
}

// hostileConf applies to every hostile job; a case's conf overrides it. The
// timeout turns a guest that hangs where the corpus does not expect it into
// a failed case instead of a hung test.
var hostileConf = map[string]string{
	"task.max_attempts": "1",
	"task.timeout":      "20s",
}

// Categories of a failed check. A case that exposes a known host bug names
// the category of check that the bug breaks, so that the case is skipped
// (with the bug and the evidence) while every other check still fails it.
const (
	hostilePhase = "phase" // refused at Submit rather than in a task, or the reverse
	hostileLabel = "label" // the error does not name the module as "module h (sha256 …)"
	hostileTime  = "time"  // Submit took longer than the case allows
	hostileWant  = "want"  // anything else
)

type hostileCase struct {
	name string
	// The module: a file of tests/hostile, compiled with wat2wasm, or the
	// bytes of gen.
	wat      string
	watFlags []string // extra wat2wasm flags, to enable proposals
	gen      func(env *hostileEnv) ([]byte, error)
	// steps of the job; default a single map of h.f.
	steps string
	conf  map[string]string
	// atSubmit: Submit refuses the job; otherwise the job fails in a task.
	atSubmit bool
	want     []string // substrings of the error
	// wantOneOf, if set: the error contains one of them. For outcomes that
	// depend on the machine's speed.
	wantOneOf []string
	// maxSubmit, if set, bounds how long Submit may take.
	maxSubmit time.Duration
	// failedAttempts is how many attempts a job that runs must report
	// failed; 0 means 1.
	failedAttempts int
	// hostileWant, if set, is what jobspec's Check must say about the spec.
	hostileWant string
	// maxErrLen, if set, bounds the length of the error.
	maxErrLen int
	// bug is a known host bug this case exposes; bugIn are the categories
	// of the checks it breaks.
	bug   string
	bugIn []string
}

func hostileCases() []hostileCase {
	timeout := map[string]string{"task.timeout": "500ms"}
	return []hostileCase{
		// Hangs.
		{name: "loop-run", wat: "loop-run.wat", conf: timeout,
			want: []string{"function f", "ran past its deadline (task.timeout = 500ms)"}},
		{name: "start-loop", wat: "start-loop.wat", atSubmit: true,
			want: []string{"timeout", "module load timeout (1s)"}},
		// The start function hangs only when it can grow its memory past
		// 256 MiB: the manifest is read within task.memory, so it hangs
		// there, at submission, not in a task.
		{name: "start-loop-plentiful", wat: "start-loop-plentiful.wat", atSubmit: true, conf: map[string]string{"task.memory": "512MiB"},
			want: []string{"timeout", "module load timeout (1s)"}},
		{name: "describe-loop", wat: "describe-loop.wat", atSubmit: true,
			want: []string{"timeout", "module load timeout (1s)"}},
		// Loop-free code is not interrupted, but it runs in the coordinator's
		// inspector process, not in the coordinator, and a load that
		// returns past the deadline is refused.
		{name: "start-call-bomb", wat: "start-call-bomb.wat", atSubmit: true,
			want: []string{"timeout", "module load timeout (1s)"}},
		{name: "tail-call-loop", wat: "tail-call-loop.wat", watFlags: []string{"--enable-tail-call"}, atSubmit: true,
			want: []string{`feature "tail-call" is disabled`}},

		// Memory.
		{name: "grow-run", wat: "grow-run.wat", conf: map[string]string{"task.memory": "64MiB"},
			want: []string{"function f", "out of memory", "the task's limit is 64 MiB", "raise task.memory"}},
		{name: "memory-huge", wat: "memory-huge.wat", atSubmit: true, conf: map[string]string{"task.memory": "512MiB"},
			want: []string{"out of memory", "the module's memory starts at 1250 MiB; the task's limit is 512 MiB (raise task.memory)"}},
		{name: "memory-300mib", wat: "memory-300mib.wat", conf: map[string]string{"task.memory": "512MiB"},
			want: []string{"function f", "trap", "unreachable"}},
		{name: "init-grow", wat: "init-grow.wat", atSubmit: true, conf: map[string]string{"task.memory": "256MiB"},
			want: []string{"function start function or _initialize", "out of memory", "the task's limit is 256 MiB"}},
		// Out of memory or out of time, depending on the machine's speed.
		{name: "init-grow-slow", wat: "init-grow-slow.wat", atSubmit: true, conf: map[string]string{"task.memory": "256MiB"},
			want: []string{"function start function or _initialize"}},
		{name: "table-grow", wat: "table-grow.wat",
			want: []string{"function f", "trap", "unreachable"}},
		{name: "table-initial-huge", wat: "table-initial-huge.wat", atSubmit: true,
			want: []string{"a table of 2000000 initial elements; the limit is 1048576"}},
		{name: "tables-many", wat: "tables-many.wat", atSubmit: true,
			want: []string{"the module declares 17 tables; the limit is 16"}},
		{name: "recursion", wat: "recursion.wat",
			want: []string{"function f", "trap", "stack overflow"}},
		// A stack overflow, or out of time on a slow machine (-race makes
		// wazero's stack growth slow): recursion has no loop header where
		// the deadline could stop it, so it may end after the deadline.
		{name: "start-recursion", wat: "start-recursion.wat", atSubmit: true,
			wantOneOf: []string{"stack overflow", "module load timeout"}},

		// Output.
		{name: "output-1gib", wat: "output-1gib.wat",
			want: []string{"function f", "wasmgrid_output: range 0x0+1073741824 is outside the module's memory"}},
		{name: "output-oob", wat: "output-oob.wat",
			want: []string{"function f", "wasmgrid_output: range 0xffffff00+64 is outside the module's memory"}},
		{name: "output-flood", wat: "output-flood.wat", conf: map[string]string{"task.max_output": "4MiB", "batch.size": "4KiB"},
			want: []string{"function f", "task.max_output (4194304 bytes)"}},
		{name: "malformed-batch", wat: "malformed-batch.wat",
			want: []string{"function f", "malformed output batch", "batch count 5 cannot fit in 8 bytes"}},
		{name: "status-2", wat: "status-2.wat",
			want: []string{"function f", "guest refused the call (status 2): hostile: I refuse"}},
		{name: "fail-halfway", wat: "fail-halfway.wat", conf: map[string]string{"task.max_attempts": "2"}, failedAttempts: 2,
			want: []string{"failed 2 times", "function f", "guest error: hostile: gave up halfway through the batch"}},
		{name: "stderr-flood", wat: "stderr-flood.wat", maxErrLen: 64 << 10,
			want: []string{"function f", "unreachable", "(guest stderr: ", "xxxxxxxx", "hostile: end of the stderr flood"}},
		{name: "reduce-out-of-order", wat: "reduce-out-of-order.wat",
			steps: "map = \"h.f\"\n[[steps]]\nreduce_by_key = \"h.r\"", conf: map[string]string{"partitions": "1"},
			want: []string{"function r, as the map-side combiner", "combine partition 0", "out of key order"}},

		// Calls into the guest.
		{name: "alloc-zero", wat: "alloc-zero.wat",
			want: []string{"function f", "returned 0"}},
		{name: "alloc-oob", wat: "alloc-oob.wat",
			want: []string{"function f", "returned 0xfffffff0, outside the module's memory"}},
		{name: "proc-exit", wat: "proc-exit.wat",
			want: []string{"function f", "exited with code 7"}},
		{name: "proc-exit-0", wat: "proc-exit-0.wat",
			want: []string{"function f", "exited with code 0"}},

		// What is refused on sight.
		{name: "data-huge", gen: hostileGenDataHuge, atSubmit: true,
			want: []string{"bytes of data segments; the limit is 2097152"}},
		{name: "data-segments-many", gen: hostileGenDataSegmentsMany, atSubmit: true,
			want: []string{"the module declares 200001 data segments; the limit is 200000"}},
		// File functions load (no directory is open, so they only fail), and the
		// guest sees the refusal: it reports it as its error.
		{name: "import-path-open", wat: "import-path-open.wat", conf: map[string]string{"task.max_attempts": "1"},
			want: []string{"function f", "guest error: hostile: the sandbox refused path_open"}},
		{name: "import-sock-accept", wat: "import-sock-accept.wat", atSubmit: true,
			want: []string{"wasi_snapshot_preview1.sock_accept", "needs network sockets"}},
		{name: "import-env", wat: "import-env.wat", atSubmit: true,
			want: []string{"env.launch_missiles", "which the host does not provide"}},
		{name: "import-memory", wat: "import-memory.wat", atSubmit: true,
			want: []string{"wasi_snapshot_preview1.memory as a memory", "must define its own memory"}},
		{name: "not-wasm", gen: hostileGenNotWasm, atSubmit: true, hostileWant: "is not a WebAssembly module",
			want: []string{"not a WebAssembly module"}},
		{name: "wasm-version-2", gen: hostileGenVersion2, atSubmit: true,
			want: []string{"unsupported WebAssembly version 02 00 00 00"}},
		{name: "truncated", gen: hostileGenTruncated, atSubmit: true,
			want: []string{"truncated module"}},
		{name: "function-bomb", gen: hostileGenFunctionBomb, atSubmit: true,
			want: []string{"the module declares 1000001 functions; the limit is 100000"}},
		{name: "oversize", gen: hostileGenOversize, atSubmit: true,
			want: []string{fmt.Sprintf("the module is %d bytes; the limit is %d", hostileLimits.MaxBytes+1, hostileLimits.MaxBytes)}},

		// The guest ABI.
		{name: "wrong-signature", wat: "wrong-signature.wat", atSubmit: true,
			want: []string{"export wasmgrid_run has the signature (i32, i32, i32) -> (i32)"}},
		{name: "missing-exports", wat: "missing-exports.wat", atSubmit: true,
			want: []string{"missing exports wasmgrid_describe, wasmgrid_alloc, wasmgrid_output"}},
		{name: "run-global", wat: "run-global.wat", atSubmit: true,
			want: []string{"missing exports wasmgrid_run"}},
		{name: "bad-manifest", wat: "bad-manifest.wat", atSubmit: true,
			want: []string{"manifest", `"mapp f"`}},
		{name: "manifest-huge", wat: "manifest-huge.wat", atSubmit: true,
			want: []string{"manifest: 2097152 bytes, more than 1 MiB"}},
		{name: "describe-oob", wat: "describe-oob.wat", atSubmit: true,
			want: []string{"wasmgrid_describe: range 0x7fff0000+6 is outside the module's memory"}},
		{name: "abi-version-7", wat: "abi-version-7.wat", atSubmit: true,
			want: []string{"guest ABI version 7"}},
		{name: "init-trap", wat: "init-trap.wat", atSubmit: true,
			want: []string{"function start function or _initialize", "trap", "unreachable"}},
	}
}

// hostileInputLines is the length of the hostile jobs' input, in lines.
const hostileInputLines = 2000

// hostileEnv is what the generators and jobs share.
type hostileEnv struct {
	wat2wasm    string
	dir         string // scratch directory
	input       string // the hostile jobs' input file
	baseline    []byte // tests/hostile/baseline.wat, compiled
	baselineWat string // and its source
}

// compile runs wat2wasm on WAT text.
func (e *hostileEnv) compile(name, wat string) ([]byte, error) {
	src := filepath.Join(e.dir, name+".wat")
	if err := os.WriteFile(src, []byte(wat), 0o644); err != nil {
		return nil, err
	}
	return e.compileFile(src)
}

func (e *hostileEnv) compileFile(src string, flags ...string) ([]byte, error) {
	out := filepath.Join(e.dir, strings.TrimSuffix(filepath.Base(src), ".wat")+".wasm")
	cmd := exec.Command(e.wat2wasm, append(flags, src, "-o", out)...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("wat2wasm %s: %v\n%s", src, err, msg)
	}
	return os.ReadFile(out)
}

// withSegments is baseline.wat with another initial memory size and extra
// data segments.
func (e *hostileEnv) withSegments(memoryPages int, segments string) string {
	wat := strings.Replace(e.baselineWat, `(memory (export "memory") 8)`, fmt.Sprintf(`(memory (export "memory") %d)`, memoryPages), 1)
	return strings.Replace(wat, `(data (i32.const 16) "map f\n")`, `(data (i32.const 16) "map f\n")`+"\n"+segments, 1)
}

// hostileGenDataHuge is the baseline with a 3 MiB data segment.
func hostileGenDataHuge(e *hostileEnv) ([]byte, error) {
	seg := `  (data (i32.const 65536) "` + strings.Repeat("x", 3<<20) + `")`
	return e.compile("data-huge", e.withSegments(64, seg))
}

// hostileGenDataSegmentsMany is the baseline (one segment) with 200,000 more, empty
// and passive.
func hostileGenDataSegmentsMany(e *hostileEnv) ([]byte, error) {
	return e.compile("data-segments-many", e.withSegments(8, strings.Repeat("  (data \"\")\n", 200_000)))
}

func hostileGenNotWasm(*hostileEnv) ([]byte, error) {
	return []byte("#!/bin/sh\n# a shell script uploaded as a module\necho 'hello from a hostile tenant'\n"), nil
}

// hostileGenVersion2 is the baseline claiming binary format version 2.
func hostileGenVersion2(e *hostileEnv) ([]byte, error) {
	b := slices.Clone(e.baseline)
	b[4] = 2
	return b, nil
}

// hostileGenTruncated is the first half of the baseline.
func hostileGenTruncated(e *hostileEnv) ([]byte, error) {
	return slices.Clone(e.baseline[:len(e.baseline)/2]), nil
}

// hostileGenFunctionBomb declares 1,000,001 empty functions: a type section with
// () -> (), a function section and a code section.
func hostileGenFunctionBomb(*hostileEnv) ([]byte, error) {
	const n = 1_000_001
	b := []byte("\x00asm\x01\x00\x00\x00")
	b = hostileSection(b, 1, []byte{1, 0x60, 0, 0})
	funcs := hostileLEB(nil, n)
	funcs = append(funcs, make([]byte, n)...) // every function has type 0
	b = hostileSection(b, 3, funcs)
	code := hostileLEB(nil, n)
	for range n {
		code = append(code, 2, 0, 0x0b) // body of 2 bytes: no locals, end
	}
	return hostileSection(b, 10, code), nil
}

// hostileGenOversize is the baseline with a custom section that makes it one byte
// larger than the grid's MaxBytes.
func hostileGenOversize(e *hostileEnv) ([]byte, error) {
	name := hostileLEB(nil, uint32(len("hostile-padding")))
	name = append(name, "hostile-padding"...)
	rest := hostileLimits.MaxBytes + 1 - len(e.baseline) - 1 // after the section id
	for l := 1; l <= 5; l++ {
		size := rest - l
		if len(hostileLEB(nil, uint32(size))) != l {
			continue
		}
		payload := append(name, make([]byte, size-len(name))...)
		b := hostileSection(slices.Clone(e.baseline), 0, payload)
		if len(b) != hostileLimits.MaxBytes+1 {
			return nil, fmt.Errorf("oversize module is %d bytes", len(b))
		}
		return b, nil
	}
	return nil, errors.New("no LEB length fits")
}

func hostileSection(b []byte, id byte, payload []byte) []byte {
	b = append(b, id)
	b = hostileLEB(b, uint32(len(payload)))
	return append(b, payload...)
}

func hostileLEB(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// hostileOutcome is what became of one case's job.
type hostileOutcome struct {
	hash           string
	checkErr       error // jobspec's Check of the spec
	submitErr      error
	submitTime     time.Duration
	runErr         error
	ran            bool // Submit accepted the job
	failedAttempts int
	recordsOut     int64
	outputLeft     error // why the failed job's output directory is a problem, if it is
	elapsed        time.Duration
}

func TestHostileModules(t *testing.T) {
	start := time.Now()
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("wat2wasm (wabt) is not on PATH, and CI is set: %v", err)
		}
		t.Skip("wat2wasm (wabt) is not on PATH: install wabt to run the hostile-module corpus")
	}
	cases := hostileCases()
	checkHostileCorpusFiles(t, cases)

	work := t.TempDir()
	env := &hostileEnv{wat2wasm: wat2wasm, dir: filepath.Join(work, "modules"), input: filepath.Join(work, "input.txt")}
	if err := os.MkdirAll(env.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var lines bytes.Buffer
	for i := range hostileInputLines {
		fmt.Fprintf(&lines, "hostile input line %d: the quick brown fox jumps over the lazy dog\n", i)
	}
	if err := os.WriteFile(env.input, lines.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if env.baseline, err = env.compileFile(filepath.Join("hostile", "baseline.wat")); err != nil {
		t.Fatal(err)
	}
	wat, err := os.ReadFile(filepath.Join("hostile", "baseline.wat"))
	if err != nil {
		t.Fatal(err)
	}
	env.baselineWat = string(wat)

	wc := newHostileWordCount(t, work)
	t.Logf("the word-count guest built in %s", time.Since(start).Round(time.Millisecond))
	g := startHostileGrid(t, work)

	// The word count alone, then the memory figures before the corpus.
	wcStart := time.Now()
	if err := wc.run(g, "wordcount-alone"); err != nil {
		t.Fatal(err)
	}
	t.Logf("the word count alone ran in %s (its module compiled on the way)", time.Since(wcStart).Round(time.Millisecond))
	before := hostileMemory(t)
	t.Logf("after the grid started and the word count ran once: heap in use %.1f MiB, RSS %.1f MiB", hostileMiB(before.heapInuse), hostileMiB(before.rss))

	// The corpus, several jobs at once, with the word count among them.
	corpusStart := time.Now()
	outcomes, baselineErr, wcErr := runHostileCorpus(g, env, wc, cases)
	t.Logf("the corpus of %d cases and the word count ran in %s", len(cases), time.Since(corpusStart).Round(time.Millisecond))

	t.Run("wordcount", func(t *testing.T) {
		if wcErr != nil {
			t.Fatalf("the well-behaved word count, run with the corpus: %v", wcErr)
		}
	})
	t.Run("baseline", func(t *testing.T) {
		if baselineErr != nil {
			t.Fatalf("the well-behaved baseline module, from which some cases are made: %v", baselineErr)
		}
	})
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkHostileOutcome(t, c, outcomes[i]) })
	}

	after := hostileMemory(t)
	t.Logf("after the corpus: heap in use %.1f MiB (%+.1f MiB), RSS %.1f MiB (%+.1f MiB)",
		hostileMiB(after.heapInuse), hostileMiB(after.heapInuse)-hostileMiB(before.heapInuse), hostileMiB(after.rss), hostileMiB(after.rss)-hostileMiB(before.rss))
	// The agents and the coordinator live in this process: the corpus must
	// not leave memory behind in them.
	if slack := max(before.heapInuse/10, 8<<20); after.heapInuse > before.heapInuse+slack {
		t.Errorf("heap in use grew from %.1f MiB to %.1f MiB over the corpus, more than %.1f MiB", hostileMiB(before.heapInuse), hostileMiB(after.heapInuse), hostileMiB(slack))
	}
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

// checkHostileCorpusFiles checks that every .wat of tests/hostile is a case (or the
// baseline) and that every case's file exists.
func checkHostileCorpusFiles(t *testing.T, cases []hostileCase) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("hostile", "*.wat"))
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{"baseline.wat": true}
	names := map[string]bool{}
	for _, c := range cases {
		if names[c.name] {
			t.Fatalf("two cases are named %s", c.name)
		}
		names[c.name] = true
		if (c.wat == "") == (c.gen == nil) {
			t.Fatalf("case %s needs exactly one of wat and gen", c.name)
		}
		if c.wat != "" {
			used[c.wat] = true
			if _, err := os.Stat(filepath.Join("hostile", c.wat)); err != nil {
				t.Fatalf("case %s: %v", c.name, err)
			}
		}
	}
	for _, f := range files {
		if !used[filepath.Base(f)] {
			t.Errorf("%s is in the corpus directory but no case uses it", f)
		}
	}
}

// runHostileCorpus submits every case, the baseline and the word count,
// several at once, and waits for all of them. The modules' bytes are made
// here and dropped on return, so that the memory measured afterwards is the
// grid's.
func runHostileCorpus(g *grid.Grid, env *hostileEnv, wc *hostileWordCount, cases []hostileCase) (outcomes []hostileOutcome, baselineErr, wcErr error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	outcomes = make([]hostileOutcome, len(cases))
	sem := make(chan struct{}, 8) // jobs in flight at once
	var wg sync.WaitGroup
	wg.Go(func() { wcErr = wc.run(g, "wordcount-with-corpus") })
	wg.Go(func() {
		sem <- struct{}{}
		defer func() { <-sem }()
		o := runHostileJob(ctx, g, env, "baseline", env.baseline, `map = "h.f"`, nil)
		switch {
		case o.submitErr != nil:
			baselineErr = o.submitErr
		case o.runErr != nil:
			baselineErr = o.runErr
		case o.recordsOut != hostileInputLines:
			baselineErr = fmt.Errorf("%d records out of the identity map, want %d", o.recordsOut, hostileInputLines)
		}
	})
	for i, c := range cases {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var wasm []byte
			var err error
			if c.wat != "" {
				wasm, err = env.compileFile(filepath.Join("hostile", c.wat), c.watFlags...)
			} else {
				wasm, err = c.gen(env)
			}
			if err != nil {
				outcomes[i] = hostileOutcome{submitErr: fmt.Errorf("making the module: %w", err)}
				return
			}
			steps := c.steps
			if steps == "" {
				steps = `map = "h.f"`
			}
			outcomes[i] = runHostileJob(ctx, g, env, c.name, wasm, steps, c.conf)
		})
	}
	wg.Wait()
	return outcomes, baselineErr, wcErr
}

// runHostileJob submits one job whose module h is wasm, and waits for it.
func runHostileJob(ctx context.Context, g *grid.Grid, env *hostileEnv, name string, wasm []byte, steps string, conf map[string]string) hostileOutcome {
	start := time.Now()
	sum := sha256.Sum256(wasm)
	o := hostileOutcome{hash: hex.EncodeToString(sum[:])}
	dir := filepath.Join(env.dir, "job-"+name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		o.submitErr = err
		return o
	}
	path := filepath.Join(dir, "h.wasm")
	if err := os.WriteFile(path, wasm, 0o644); err != nil {
		o.submitErr = err
		return o
	}
	out := filepath.Join(dir, "out")
	text := fmt.Sprintf("name = %q\n[modules.h]\npath = %q\n[source]\ntext = %q\n[[steps]]\n%s\n[sink]\ntext = %q\n",
		"hostile-"+name, path, env.input, steps, out)
	merged := maps.Clone(hostileConf)
	maps.Copy(merged, conf)
	spec, err := jobspec.Parse([]byte(text), filepath.Join(dir, "job.toml"), nil, merged)
	if err != nil {
		o.submitErr = fmt.Errorf("parse the spec: %w", err)
		return o
	}
	o.checkErr = spec.Check()
	// The bytes go to the grid directly, as a client that skipped Check
	// would send them.
	submitStart := time.Now()
	job, err := g.Submit(ctx, grid.JobRequest{Spec: spec, Modules: map[string][]byte{"h": wasm}})
	o.submitTime = time.Since(submitStart)
	if err != nil {
		o.submitErr = err
		o.elapsed = time.Since(start)
		return o
	}
	o.ran = true
	s, err := job.Wait(ctx)
	o.runErr = err
	if s != nil {
		o.failedAttempts = s.FailedAttempts
		o.recordsOut = s.RecordsOut
	}
	if err != nil {
		if _, statErr := os.Stat(out); !errors.Is(statErr, os.ErrNotExist) {
			o.outputLeft = fmt.Errorf("the failed job left its output directory %s (%v)", out, statErr)
		}
	}
	o.elapsed = time.Since(start)
	return o
}

type hostileProblem struct{ kind, msg string }

func checkHostileOutcome(t *testing.T, c hostileCase, o hostileOutcome) {
	var problems []hostileProblem
	fail := func(kind, format string, args ...any) {
		problems = append(problems, hostileProblem{kind, fmt.Sprintf(format, args...)})
	}
	var err error
	phaseOK := true
	switch {
	case o.hash == "":
		t.Fatalf("no job: %v", o.submitErr)
	case c.atSubmit && o.ran:
		phaseOK = false
		fail(hostilePhase, "Submit accepted the job (in %s), which must be refused; the job ended with: %v", o.submitTime.Round(time.Millisecond), o.runErr)
	case !c.atSubmit && !o.ran:
		phaseOK = false
		fail(hostilePhase, "Submit refused the job, which must fail in its task: %v", o.submitErr)
	case c.atSubmit:
		err = o.submitErr
	default:
		err = o.runErr
		if err == nil {
			t.Fatal("the job succeeded")
		}
	}
	if phaseOK {
		if c.atSubmit {
			t.Logf("Submit (%s): %s", o.submitTime.Round(time.Millisecond), hostileShorten(err))
		} else {
			t.Logf("job (%s, %d failed attempts, error of %d bytes): %s", o.elapsed.Round(time.Millisecond), o.failedAttempts, len(err.Error()), hostileShorten(err))
		}
		msg := err.Error()
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				fail(hostileWant, "the error lacks %q", w)
			}
		}
		if label := fmt.Sprintf("module h (sha256 %s)", o.hash[:12]); !strings.Contains(msg, label) {
			fail(hostileLabel, "the error does not name the module as %q", label)
		}
		if len(c.wantOneOf) > 0 && !slices.ContainsFunc(c.wantOneOf, func(w string) bool { return strings.Contains(msg, w) }) {
			fail(hostileWant, "the error lacks all of %q", c.wantOneOf)
		}
		if c.maxErrLen > 0 && len(msg) > c.maxErrLen {
			fail(hostileWant, "the error is %d bytes long; at most %d are acceptable", len(msg), c.maxErrLen)
		}
		if c.maxSubmit > 0 && o.submitTime > c.maxSubmit {
			fail(hostileTime, "Submit took %s; ModuleLoadTimeout is 1s and the case allows %s", o.submitTime.Round(time.Millisecond), c.maxSubmit)
		}
		if o.ran {
			want := max(c.failedAttempts, 1)
			if o.failedAttempts != want {
				fail(hostileWant, "%d failed attempts, want %d", o.failedAttempts, want)
			}
			if o.outputLeft != nil {
				fail(hostileWant, "%v", o.outputLeft)
			}
		}
	}
	switch {
	case c.hostileWant != "" && (o.checkErr == nil || !strings.Contains(o.checkErr.Error(), c.hostileWant)):
		fail(hostileWant, "jobspec Check = %v, want an error containing %q", o.checkErr, c.hostileWant)
	case c.hostileWant == "" && o.checkErr != nil:
		fail(hostileWant, "jobspec Check failed: %v", o.checkErr)
	case o.checkErr != nil:
		t.Logf("jobspec Check: %v", o.checkErr)
	}

	if len(problems) == 0 {
		if c.bug != "" {
			t.Logf("the known bug seems fixed; remove it from the case: %s", c.bug)
		}
		return
	}
	var text []string
	onlyBug := c.bug != ""
	for _, p := range problems {
		text = append(text, p.msg)
		onlyBug = onlyBug && slices.Contains(c.bugIn, p.kind)
	}
	if onlyBug {
		t.Skipf("known bug: %s\n%s", c.bug, strings.Join(text, "\n"))
	}
	for _, p := range text {
		t.Error(p)
	}
}

// startHostileGrid starts the one grid of the test.
func startHostileGrid(t *testing.T, work string) *grid.Grid {
	t.Helper()
	g, err := grid.New(grid.Config{
		Agents:            2,
		Slots:             2,
		MemoryMiB:         4096,
		CacheDir:          filepath.Join(work, "cache"),
		ModuleLoadTimeout: time.Second,
		ModuleLimits:      hostileLimits,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return g
}

// hostileWordCount is the well-behaved job: the word count's Go guest over
// examples/wordcount/data, checked against a native count.
type hostileWordCount struct {
	wasm []byte
	data string // the input glob
	dir  string
	want map[string]int64
}

func newHostileWordCount(t *testing.T, work string) *hostileWordCount {
	t.Helper()
	guest, err := filepath.Abs(filepath.Join("..", "examples", "wordcount", "guest", "go"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := filepath.Abs(filepath.Join("..", "examples", "wordcount", "data"))
	if err != nil {
		t.Fatal(err)
	}
	wc := &hostileWordCount{data: filepath.Join(data, "*.txt"), dir: filepath.Join(work, "wordcount"), want: map[string]int64{}}
	wasmPath := filepath.Join(work, "wc.wasm")
	if err := guestbuild.BuildGo(context.Background(), guest, wasmPath); err != nil {
		t.Fatal(err)
	}
	if wc.wasm, err = os.ReadFile(wasmPath); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(wc.data)
	if err != nil || len(files) == 0 {
		t.Fatalf("no input in %s: %v", wc.data, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for line := range bytes.Lines(b) {
			wordcount.Split(line, func(k, _ []byte) { wc.want[string(k)]++ })
		}
	}
	// The figures the example's README quotes: a check of the reference.
	for w, n := range map[string]int64{"the": 32, "jabberwock": 3, "tyger": 4} {
		if wc.want[w] != n {
			t.Fatalf("native count: %q occurs %d times, want %d", w, wc.want[w], n)
		}
	}
	if len(wc.want) != 153 {
		t.Fatalf("native count: %d distinct words, want 153", len(wc.want))
	}
	return wc
}

// run runs the word count and checks its output exactly.
func (wc *hostileWordCount) run(g *grid.Grid, name string) error {
	dir := filepath.Join(wc.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	out := filepath.Join(dir, "out")
	text := fmt.Sprintf("name = %q\n[modules.wc]\npath = %q\n[source]\ntext = %q\n[[steps]]\nflat_map = \"wc.split\"\n[[steps]]\nreduce_by_key = \"wc.sum\"\n[sink]\ntext = %q\n",
		name, filepath.Join(dir, "wc.wasm"), wc.data, out)
	spec, err := jobspec.Parse([]byte(text), filepath.Join(dir, "job.toml"), nil, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	job, err := g.Submit(ctx, grid.JobRequest{Spec: spec, Modules: map[string][]byte{"wc": wc.wasm}})
	if err != nil {
		return err
	}
	sum, err := job.Wait(ctx)
	if err != nil {
		return err
	}
	if sum.FailedAttempts != 0 {
		return fmt.Errorf("%d of its %d attempts failed", sum.FailedAttempts, sum.Attempts)
	}
	got, err := readHostileCounts(out)
	if err != nil {
		return err
	}
	var diffs []string
	for _, w := range slices.Sorted(maps.Keys(wc.want)) {
		if got[w] != wc.want[w] {
			diffs = append(diffs, fmt.Sprintf("%q: %d, want %d", w, got[w], wc.want[w]))
		}
	}
	for w, n := range got {
		if _, ok := wc.want[w]; !ok {
			diffs = append(diffs, fmt.Sprintf("%q: %d, want none", w, n))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%d words differ from the native count: %s", len(diffs), strings.Join(diffs[:min(10, len(diffs))], ", "))
	}
	return nil
}

// readHostileCounts reads a word count's text parts.
func readHostileCounts(dir string) (map[string]int64, error) {
	if _, err := os.Stat(filepath.Join(dir, "_SUCCESS")); err != nil {
		return nil, err
	}
	parts, err := filepath.Glob(filepath.Join(dir, "part-*"))
	if err != nil || len(parts) == 0 {
		return nil, fmt.Errorf("no part files in %s (%v)", dir, err)
	}
	counts := map[string]int64{}
	for _, p := range parts {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			word, n, ok := strings.Cut(sc.Text(), "\t")
			c, err := strconv.ParseInt(n, 10, 64)
			if !ok || err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %q is not word<TAB>count", p, sc.Text())
			}
			if _, dup := counts[word]; dup {
				f.Close()
				return nil, fmt.Errorf("%s: %q appears twice", p, word)
			}
			counts[word] = c
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return counts, nil
}

type hostileMem struct{ heapInuse, rss uint64 }

// hostileMemory measures this process: the coordinator and the agents.
func hostileMemory(t *testing.T) hostileMem {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := hostileMem{heapInuse: ms.HeapInuse}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Logf("no RSS: %v", err)
		return m
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				m.rss = kb << 10
			}
		}
	}
	return m
}

// hostileShorten keeps logs of long errors (a guest's stderr) readable.
func hostileShorten(err error) string {
	s := err.Error()
	if len(s) <= 1200 {
		return s
	}
	return fmt.Sprintf("%s[… %d bytes …]%s", s[:800], len(s)-1200, s[len(s)-400:])
}

func hostileMiB(n uint64) float64 { return float64(n) / (1 << 20) }
