package tests

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/grid"
	"github.com/wasmgrid/wasmgrid/internal/executor"
	"github.com/wasmgrid/wasmgrid/sdk"
)

// Isolation between tenants on real agent processes: executors per tenant,
// executors that die with their agent, memory limits that hold, and CPU
// shared fairly while a neighbour misbehaves. The misbehaving modules are
// in tests/neighbours, in WAT.

// watModule compiles a WAT file of the tests' directory with wat2wasm into
// dir, or skips the test without wat2wasm.
func watModule(t *testing.T, src, dir string) string {
	t.Helper()
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("wat2wasm (wabt) is not on PATH, and CI is set: %v", err)
		}
		t.Skip("wat2wasm (wabt) is not on PATH: install wabt")
	}
	out := filepath.Join(dir, strings.TrimSuffix(filepath.Base(src), ".wat")+".wasm")
	if msg, err := exec.Command(wat2wasm, src, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm %s: %v\n%s", src, err, msg)
	}
	return out
}

// moduleJob writes a job that maps the lines of input with function f of
// the module at wasm, with more steps after it, and loads it.
func moduleJob(t *testing.T, dir, name, wasm, input, steps string, conf map[string]string) *sdk.Job {
	t.Helper()
	jobDir := filepath.Join(dir, name)
	if err := os.MkdirAll(jobDir, 0o755); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf("name = %q\n[modules.h]\npath = %q\n[source]\ntext = %q\n[[steps]]\nmap = \"h.f\"\n%s[sink]\ntext = %q\n",
		name, wasm, input, steps, filepath.Join(jobDir, "out"))
	path := filepath.Join(jobDir, "job.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	job, err := sdk.LoadJob(context.Background(), path, nil, conf)
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// executorsOf lists the executor processes whose parent is pid: processes
// with WASMGRID_EXECUTOR in their environment.
func executorsOf(t *testing.T, parent int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil || !bytes.Contains(env, []byte("\x00"+executor.EnvConfig+"=")) && !bytes.HasPrefix(env, []byte(executor.EnvConfig+"=")) {
			continue
		}
		if ppid, _ := procStat(pid); ppid == parent {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procStat is a process's parent and state ('R', 'S', 'Z', ...), from
// /proc/PID/stat; state 0 if the process is gone.
func procStat(pid int) (ppid int, state byte) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	i := strings.LastIndexByte(line, ')')
	if i < 0 || len(line) < i+4 {
		return 0, 0
	}
	fields := strings.Fields(line[i+2:])
	if len(fields) < 2 {
		return 0, 0
	}
	ppid, _ = strconv.Atoi(fields[1])
	return ppid, fields[0][0]
}

// processAlive: the process exists and has not exited (a zombie has).
func processAlive(pid int) bool {
	_, state := procStat(pid)
	return state != 0 && state != 'Z' && state != 'X'
}

// processCPU is a process's user and system CPU time.
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ = 100
}

// TestClusterExecutorsDieWithTheirAgent kills an agent process with
// SIGKILL while its executor runs a guest that loops for ever: the
// executor is gone within a second.
func TestClusterExecutorsDieWithTheirAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	dir := t.TempDir()
	spin := watModule(t, filepath.Join("neighbours", "spin.wat"), dir)
	input := filepath.Join(dir, "one.txt")
	os.WriteFile(input, []byte("one line\n"), 0o644)
	c := startCluster(t, 1, "a")
	agent := c.procs["agent-1"].Process.Pid
	job := moduleJob(t, dir, "spin", spin, input, "", map[string]string{"task.timeout": "10m"})
	r := c.remote(c.tokens["a"])
	if _, err := r.Submit(context.Background(), job, ""); err != nil {
		t.Fatal(err)
	}
	var pids []int
	waitFor(t, 60*time.Second, "the agent's executor to spin", func() bool {
		pids = executorsOf(t, agent)
		for _, pid := range pids {
			if processCPU(pid) > 300*time.Millisecond {
				return true
			}
		}
		return false
	})
	c.kill9("agent-1")
	killed := time.Now()
	// Polled, not slept: the bound is the requirement.
	for slices.ContainsFunc(pids, processAlive) {
		if time.Since(killed) > time.Second {
			t.Fatalf("executors %v of the killed agent still run %s after it died", pids, time.Since(killed).Round(time.Millisecond))
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("the agent's executors %v were gone %s after its SIGKILL", pids, time.Since(killed).Round(10*time.Microsecond))
}

// TestClusterMemoryBombFailsItsJob runs a job whose map tasks hold more
// host memory than their task.memory (a guest that returns 8 MiB records,
// buffered by the shuffle under a 2 GiB shuffle.memory): their executor is
// killed each time, and the job fails after its attempts with the rule
// and the fix.
func TestClusterMemoryBombFailsItsJob(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	dir := t.TempDir()
	flood := watModule(t, filepath.Join("hostile", "output-flood.wat"), dir)
	input := filepath.Join(dir, "lines.txt")
	var lines bytes.Buffer
	for i := range 2000 {
		fmt.Fprintf(&lines, "line %d\n", i)
	}
	os.WriteFile(input, lines.Bytes(), 0o644)
	c := startCluster(t, 1, "a")
	job := moduleJob(t, dir, "flood", flood, input, "[[steps]]\ngroup_by_key = true\n", map[string]string{
		"task.memory": "64MiB", "shuffle.memory": "2GiB", "batch.size": "4KiB", "task.max_attempts": "2", "partitions": "1",
	})
	r := c.remote(c.tokens["a"])
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	id, err := r.Submit(ctx, job, "")
	if err != nil {
		t.Fatal(err)
	}
	info, err := r.Watch(ctx, id, nil)
	if err == nil || info.State != "failed" {
		t.Fatalf("the job ended %s (%v), want failed", info.State, err)
	}
	for _, want := range []string{"failed 2 times", "module h (sha256 ", "executor of tenant a ", "MiB reserved for its running tasks (task.memory = 64 MiB + 128 MiB overhead): lower the job's memory use or raise task.memory"} {
		if !strings.Contains(info.Error, want) {
			t.Errorf("the job's error lacks %q:\n%s", want, info.Error)
		}
	}
	t.Logf("%s", info.Error)
}

// TestClusterNoisyNeighbour measures tenant B's short word count alone and
// while tenant A runs an endless loop, a memory bomb and a deep recursion
// on the same agent, each until its deadline (A's jobs are resubmitted as
// they fail): B's median time beside A is at most twice its median alone,
// and none of B's attempts is lost.
//
// DRF does not preempt, so the agent offers enough CPUs for both (5, on
// whatever the machine has). On a 2-core machine A's three spinning guests
// and B's tasks then compete for the cores, and B's share comes from the
// per-tenant CPU cgroups: equal weights give B's executor half of the
// machine at least. B is one map task and one reduce task, which alone use
// one core: with two tasks at once, B alone used both cores, half of the
// machine beside A made it 2x slower in theory and 2.15x in one run (A's
// executors restart at each deadline, and its memory bomb shares the
// memory bus), so that the bound measured the machine, not the isolation.
//
// The runs alone and beside A alternate, in pairs: the machine this runs
// on is shared, and its load (load average 8-10 on 2 cores, from other
// builds and tests) changes from second to second; B alone took 1.5-6 s.
// A change of load between a phase alone and a phase beside A made B 2.7-3x
// slower beside A in two runs, while A's and B's executors each got their
// half of what was left (B's 0.58 of a core, A's 0.47, per /proc/PID/stat).
func TestClusterNoisyNeighbour(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	dir := t.TempDir()
	oneLine := filepath.Join(dir, "one.txt")
	os.WriteFile(oneLine, []byte("one line\n"), 0o644)
	aConf := map[string]string{"task.timeout": "8s", "task.max_attempts": "1", "task.memory": "256MiB", "sink.overwrite": "true"}
	var aJobs []*sdk.Job
	for _, m := range []string{"spin", "fill", "recurse"} {
		wasm := watModule(t, filepath.Join("neighbours", m+".wat"), dir)
		aJobs = append(aJobs, moduleJob(t, dir, "a-"+m, wasm, oneLine, "", aConf))
	}
	corpus := filepath.Join(dir, "corpus.txt")
	if err := writeCorpus(corpus, 8<<20, 5); err != nil {
		t.Fatal(err)
	}
	want := referenceCounts(t, corpus)
	// A submits its three jobs at once, each uploading its module: more
	// than the API's default per-tenant budgets, which have tests of their own.
	c := startClusterCfg(t, 1, func(cfg *grid.CoordinatorConfig) {
		cfg.Limits.UploadsPerTenant, cfg.Limits.RequestsPerSecond, cfg.Limits.RequestBurst = 16, 1000, 1000
	}, func(cfg *grid.AgentConfig) { cfg.CPUs = 5 }, "a", "b")
	ctx := context.Background()
	ra, rb := c.remote(c.tokens["a"]), c.remote(c.tokens["b"])
	agent := c.procs["agent-1"].Process.Pid

	// B: a word count in C of 8 MiB, in one map and one reduce task.
	runB := func(name string) time.Duration {
		t.Helper()
		out := filepath.Join(dir, "b-"+name)
		job, err := sdk.LoadJob(ctx, repoPath("examples/wordcount/job.toml"),
			map[string]string{"input": corpus, "guest": "c", "output": out},
			map[string]string{"partitions": "1", "source.split_size": "64MiB"})
		if err != nil {
			t.Fatal(err)
		}
		info, err := rb.Run(ctx, job, io.Discard)
		if err != nil || info.State != "succeeded" || info.Summary == nil {
			t.Fatalf("B's %s run: %v (%s: %s)", name, err, info.State, info.Error)
		}
		counts, err := readCountParts(out)
		if err != nil {
			t.Fatal(err)
		}
		sameCounts(t, counts, want)
		logs, err := rb.Logs(ctx, info.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range logs {
			if l.Outcome != "succeeded" {
				t.Errorf("B's %s run: task %s attempt %d was %s: %s", name, l.Task, l.Attempt, l.Outcome, l.Error)
			}
		}
		t.Logf("B's %s run: %s", name, info.Summary.Duration.Round(time.Millisecond))
		return info.Summary.Duration
	}

	// A: three jobs of one task each, resubmitted as they fail, until
	// stopped.
	type noise struct {
		stop context.CancelFunc
		wg   sync.WaitGroup
		mu   sync.Mutex
		ids  []string
	}
	startA := func() *noise {
		nctx, stop := context.WithCancel(ctx)
		n := &noise{stop: stop}
		for _, job := range aJobs {
			n.wg.Go(func() {
				for nctx.Err() == nil {
					id, err := ra.Submit(nctx, job, "")
					if err != nil {
						if nctx.Err() == nil {
							t.Errorf("submit A's %s: %v", job.Spec.Name, err)
						}
						return
					}
					n.mu.Lock()
					n.ids = append(n.ids, id)
					n.mu.Unlock()
					_, _ = ra.Watch(nctx, id, nil)
				}
			})
		}
		// A's three guests run once three of A's executor threads spin.
		waitFor(t, 60*time.Second, "A's three tasks to run", func() bool {
			running := 0
			n.mu.Lock()
			defer n.mu.Unlock()
			for _, id := range n.ids {
				if j, err := ra.Job(ctx, id); err == nil && j.State == "running" && len(j.Stages) > 0 && j.Stages[0].Running > 0 {
					running++
				}
			}
			return running == 3
		})
		return n
	}
	stopA := func(n *noise) {
		n.stop()
		n.wg.Wait()
		n.mu.Lock()
		for _, id := range n.ids {
			_ = ra.Cancel(ctx, id)
		}
		n.mu.Unlock()
		// Its guests spin: the agent kills A's executor.
		waitFor(t, 60*time.Second, "A's executor to stop", func() bool { return len(tenantExecutors(t, agent, "a")) == 0 })
	}

	runB("warm-up") // compiles the guest and starts B's executor
	const pairs = 5
	var alone, beside []time.Duration
	withA := func(i int) {
		n := startA()
		defer stopA(n)
		beside = append(beside, runB(fmt.Sprintf("beside-%d", i)))
	}
	for i := range pairs {
		if i%2 == 0 {
			alone = append(alone, runB(fmt.Sprintf("alone-%d", i)))
			withA(i)
		} else {
			withA(i)
			alone = append(alone, runB(fmt.Sprintf("alone-%d", i)))
		}
	}
	ma, mb := median(alone), median(beside)
	ratio := float64(mb) / float64(ma)
	var pairRatios []string
	for i := range alone {
		pairRatios = append(pairRatios, fmt.Sprintf("%.2f", float64(beside[i])/float64(alone[i])))
	}
	t.Logf("B alone %v (median %v); beside A %v (median %v): %.2fx (pair by pair: %s)", rounded(alone), ma.Round(time.Millisecond), rounded(beside), mb.Round(time.Millisecond), ratio, strings.Join(pairRatios, " "))
	if ratio > 2 {
		t.Errorf("B's median time beside A is %.2fx its median alone; at most 2x", ratio)
	}
}

// tenantExecutors lists the live executors of tenant that agent runs.
func tenantExecutors(t *testing.T, agent int, tenant string) []int {
	var out []int
	for _, pid := range executorsOf(t, agent) {
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if processAlive(pid) && bytes.Contains(env, []byte(`"Tenant":"`+tenant+`"`)) {
			out = append(out, pid)
		}
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func rounded(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// readCountParts reads a word count's part files.
func readCountParts(dir string) (map[string]int64, error) {
	parts, err := filepath.Glob(filepath.Join(dir, "part-*"))
	if err != nil || len(parts) == 0 {
		return nil, fmt.Errorf("no part files in %s (%v)", dir, err)
	}
	counts := map[string]int64{}
	for _, p := range parts {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		for line := range strings.Lines(string(b)) {
			word, n, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
			v, err := strconv.ParseInt(n, 10, 64)
			if !ok || err != nil {
				return nil, fmt.Errorf("%s: %q is not word<TAB>count", p, line)
			}
			counts[word] += v
		}
	}
	return counts, nil
}
