package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/grid"
	"github.com/wasmgrid/wasmgrid/internal/storage"
	"github.com/wasmgrid/wasmgrid/sdk"
	"github.com/wasmgrid/wasmgrid/sdk/local"
)

var (
	gridBinOnce sync.Once
	gridBin     string
	gridBinErr  error
)

// buildGrid builds the grid command once per test binary.
func buildGrid(t testing.TB) string {
	t.Helper()
	gridBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wasmgrid-bin-")
		if err != nil {
			gridBinErr = err
			return
		}
		gridBin = filepath.Join(dir, "grid")
		out, err := exec.Command("go", "build", "-o", gridBin, repoPath("cmd/grid")).CombinedOutput()
		if err != nil {
			gridBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if gridBinErr != nil {
		t.Fatal(gridBinErr)
	}
	return gridBin
}

// cluster is a coordinator and agents, each a process of the grid binary,
// started as an operator would: grid init, grid coordinator, grid agent.
type cluster struct {
	t      testing.TB
	bin    string
	dir    string
	addr   string // the API's URL, https://
	ca     string // the cluster's ca.pem, which clients trust
	admin  string
	tokens map[string]string // tenant -> token
	gossip string
	procs  map[string]*exec.Cmd
	logs   map[string]*bytes.Buffer
	mu     sync.Mutex
}

func startCluster(t testing.TB, agents int, tenants ...string) *cluster {
	t.Helper()
	return startClusterWith(t, agents, nil, tenants...)
}

func startClusterWith(t testing.TB, agents int, agentCfg func(*grid.AgentConfig), tenants ...string) *cluster {
	t.Helper()
	return startClusterCfg(t, agents, nil, agentCfg, tenants...)
}

// startClusterCfg starts a cluster whose tenants (and "default", for the
// admin's jobs) are granted the machine's temporary directory, where tests
// keep their inputs and outputs, as volume "tmp"; coordCfg, if set, edits
// the coordinator's config after that, as an operator would before
// starting it.
func startClusterCfg(t testing.TB, agents int, coordCfg func(*grid.CoordinatorConfig), agentCfg func(*grid.AgentConfig), tenants ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, bin: buildGrid(t), dir: t.TempDir(), procs: map[string]*exec.Cmd{}, logs: map[string]*bytes.Buffer{}, tokens: map[string]string{}}
	args := []string{"init", c.dir, "--agents", strconv.Itoa(agents), "--api-addr", "127.0.0.1:0", "--control-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0"}
	for _, tn := range tenants {
		args = append(args, "--tenant", tn)
	}
	out, err := exec.Command(c.bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("grid init: %v\n%s", err, out)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if tok, ok := strings.CutPrefix(line, "admin token: "); ok {
			c.admin = tok
		}
		if rest, ok := strings.CutPrefix(line, "tenant "); ok {
			name, tok, _ := strings.Cut(rest, " token: ")
			c.tokens[name] = tok
		}
	}
	if c.admin == "" {
		t.Fatalf("grid init printed no admin token:\n%s", out)
	}
	// Tenants' weights, as an operator would edit them.
	if err := c.editCoordinator(func(cfg *grid.CoordinatorConfig) {
		cfg.AgentGrace = 2e9
		tmp, err := filepath.EvalSymlinks(os.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		cfg.Volumes = []storage.Volume{{Name: "tmp", URL: "file://" + tmp}}
		cfg.Tenants = append(cfg.Tenants, grid.TenantConfig{Name: "default", Weight: 1})
		for i := range cfg.Tenants {
			cfg.Tenants[i].Grants = map[string]string{"tmp": "read-write"}
			if cfg.Tenants[i].Name == "heavy" {
				cfg.Tenants[i].Weight = 3
			}
		}
		if coordCfg != nil {
			coordCfg(cfg)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if agentCfg != nil {
		for i := range agents {
			path := filepath.Join(c.dir, fmt.Sprintf("agent-%d.toml", i+1))
			cfg, err := grid.LoadAgentConfig(path)
			if err != nil {
				t.Fatal(err)
			}
			agentCfg(cfg)
			if err := grid.WriteConfig(path, cfg); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(c.stop)
	c.start("coordinator", "coordinator", "--config", filepath.Join(c.dir, "coordinator.toml"))
	var addrs grid.Addresses
	waitFor(t, 30*time.Second, "the coordinator's addresses", func() bool {
		b, err := os.ReadFile(filepath.Join(c.dir, "coordinator-state", "addresses.json"))
		return err == nil && json.Unmarshal(b, &addrs) == nil
	})
	c.addr, c.gossip, c.ca = addrs.APIURL, addrs.Gossip, filepath.Join(c.dir, "ca.pem")
	for i := range agents {
		c.startAgent(fmt.Sprintf("agent-%d", i+1))
	}
	waitFor(t, 30*time.Second, fmt.Sprintf("%d alive agents", agents), func() bool {
		return c.countAgents("alive") == agents
	})
	return c
}

func (c *cluster) editCoordinator(fn func(*grid.CoordinatorConfig)) error {
	path := filepath.Join(c.dir, "coordinator.toml")
	cfg, err := grid.LoadCoordinatorConfig(path)
	if err != nil {
		return err
	}
	fn(cfg)
	// Loading made the paths absolute; that is fine to write back.
	return grid.WriteConfig(path, cfg)
}

func (c *cluster) startAgent(name string) {
	c.start(name, "agent", "--config", filepath.Join(c.dir, name+".toml"), "--join", c.gossip)
}

func (c *cluster) start(name string, args ...string) {
	c.t.Helper()
	cmd := exec.Command(c.bin, append(args, "--log-level", "info")...)
	buf := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = &lockedWriter{mu: &c.mu, w: buf}, &lockedWriter{mu: &c.mu, w: buf}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.procs[name], c.logs[name] = cmd, buf
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// kill9 kills a process the hard way.
func (c *cluster) kill9(name string) {
	p := c.procs[name]
	_ = p.Process.Kill()
	_ = p.Wait()
	delete(c.procs, name)
}

func (c *cluster) stop() {
	for _, p := range c.procs {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	for name, p := range c.procs {
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			c.t.Errorf("%s did not stop within 15 s of SIGTERM", name)
			_ = p.Process.Kill()
			<-done
		}
	}
	if c.t.Failed() {
		c.mu.Lock()
		for name, b := range c.logs {
			c.t.Logf("---- %s ----\n%s", name, lastLines(b.String(), 40))
		}
		c.mu.Unlock()
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cli runs the grid command against the cluster with token.
func (c *cluster) cli(token string, args ...string) (string, error) {
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), "GRID_ADDR="+c.addr, "GRID_TOKEN="+token, "GRID_CA="+c.ca)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("grid %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// remote is an SDK client of the cluster with token, trusting its CA.
func (c *cluster) remote(token string) *sdk.Remote {
	c.t.Helper()
	r, err := sdk.NewRemote(sdk.RemoteConfig{Addr: c.addr, Token: token, CAFile: c.ca})
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

// readEnv reads a client file's exported variables.
func readEnv(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimPrefix(strings.TrimSpace(line), "export ")
		if k, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "GRID_") {
			env[k] = strings.Trim(v, "'")
		}
	}
	return env, nil
}

func (c *cluster) agents() []api.AgentInfo {
	out, err := c.cli(c.admin, "agents", "-o", "json")
	if err != nil {
		c.t.Fatal(err)
	}
	var res struct{ Agents []api.AgentInfo }
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		c.t.Fatalf("grid agents -o json printed %q: %v", out, err)
	}
	return res.Agents
}

func (c *cluster) countAgents(status string) int {
	n := 0
	for _, a := range c.agents() {
		if a.Status == status {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes; the deadline
// is a bound on a hang, not a measurement.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("waited %s for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func parseCounts(t testing.TB, out string) map[string]int64 {
	t.Helper()
	counts := map[string]int64{}
	for line := range strings.Lines(out) {
		word, n, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
		if !ok {
			t.Fatalf("line %q is not word<TAB>count", line)
		}
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		counts[word] += v
	}
	return counts
}

func sameCounts(t testing.TB, got, want map[string]int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d distinct words, want %d", len(got), len(want))
	}
	bad := 0
	for w, n := range want {
		if got[w] != n && bad < 5 {
			t.Errorf("count of %q = %d, want %d", w, got[w], n)
			bad++
		}
	}
}

// TestClusterWordCount runs a coordinator and three agent processes,
// counts words with the CLI, kills an agent with SIGKILL, sees it
// declared lost, and counts again on the two left.
func TestClusterWordCount(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	c := startCluster(t, 3)
	if got := c.agents(); len(got) != 3 {
		t.Fatalf("grid agents -o json lists %d agents: %+v", len(got), got)
	}
	input := filepath.Join(t.TempDir(), "corpus.txt")
	if err := writeCorpus(input, 4<<20, 7); err != nil {
		t.Fatal(err)
	}
	want := referenceCounts(t, input)
	count := func() {
		t.Helper()
		out, err := c.cli(c.admin, "submit", repoPath("examples/wordcount/job.toml"), "--param", "input="+input, "--wait", "--progress", "none", "--conf", "source.split_size=512KiB")
		if err != nil {
			t.Fatal(err)
		}
		sameCounts(t, parseCounts(t, out), want)
	}
	count()

	c.kill9("agent-2")
	waitFor(t, 60*time.Second, "agent-2 to be declared lost", func() bool {
		for _, a := range c.agents() {
			if a.ID == "agent-2" {
				return a.Status == "lost"
			}
		}
		return false
	})
	if n := c.countAgents("alive"); n != 2 {
		t.Fatalf("%d agents alive after one of three was killed", n)
	}
	count()

	// A wrong token is 401; a tenant cannot see the admin's jobs.
	if _, err := c.cli("not-a-token", "jobs"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("a wrong token: %v, want HTTP 401", err)
	}
}

// busy reports whether a job still has tasks waiting in a stage that can
// run, so that its tenant wants more than it gets.
func busy(j api.JobInfo) bool {
	if j.State != "running" {
		return false
	}
	for _, s := range j.Stages {
		if s.Pending > 0 && (s.Reason == nil || s.Reason.Code != api.ReasonParentStage) {
			return true
		}
	}
	return false
}

// TestClusterWeightedTenants submits the same long job for two tenants of
// weights 1 and 3 at once and reads from the API the task-seconds each
// got while both had work waiting: within 10% of 1:3.
func TestClusterWeightedTenants(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	// 3 agents of 4 CPUs: 12 slots, which DRF splits 9:3.
	c := startClusterWith(t, 3, func(cfg *grid.AgentConfig) { cfg.CPUs = 4 }, "light", "heavy")
	input := filepath.Join(t.TempDir(), "corpus.txt")
	if err := writeCorpus(input, 32<<20, 11); err != nil {
		t.Fatal(err)
	}
	submit := func(tenant string) string {
		out, err := c.cli(c.tokens[tenant], "submit", repoPath("examples/wordcount/job.toml"),
			"--param", "input="+input, "--param", "output="+filepath.Join(t.TempDir(), "out"),
			"--conf", "source.split_size=256KiB", "--conf", "task.memory=128MiB")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	ids := map[string]string{"light": submit("light"), "heavy": submit("heavy")}
	ctx := context.Background()
	clients := map[string]*sdk.Remote{"light": c.remote(c.tokens["light"]), "heavy": c.remote(c.tokens["heavy"]), "admin": c.remote(c.admin)}
	status := func(tn string) api.JobInfo {
		j, err := clients[tn].Job(ctx, ids[tn])
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	tenants := func() map[string]api.TenantInfo {
		ts, err := clients["admin"].Tenants(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]api.TenantInfo{}
		for _, tn := range ts {
			m[tn.Name] = tn
		}
		return m
	}
	var first, last map[string]api.TenantInfo
	samples := 0
	for {
		jl, jh := status("light"), status("heavy")
		if !busy(jl) || !busy(jh) {
			if jl.State == "failed" || jh.State == "failed" {
				t.Fatalf("a job failed: %s %s", jl.Error, jh.Error)
			}
			if first != nil {
				break
			}
			if jl.State != "running" || jh.State != "running" {
				t.Fatalf("a job ended before both were busy: light %s, heavy %s", jl.State, jh.State)
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		// Without preemption, shares converge as tasks end: the window
		// opens once each job has finished a wave of tasks (as many as
		// the cluster's 12 slots), which also puts the guest's compile
		// behind both.
		if jl.Stages[0].Done < 12 || jh.Stages[0].Done < 12 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		snap := tenants()
		if first == nil {
			first = snap
		}
		last = snap
		samples++
		time.Sleep(100 * time.Millisecond)
	}
	light := last["light"].TaskSeconds - first["light"].TaskSeconds
	heavy := last["heavy"].TaskSeconds - first["heavy"].TaskSeconds
	t.Logf("while both were busy (%d samples): light %.1f task-seconds, heavy %.1f: ratio 1:%.2f", samples, light, heavy, heavy/light)
	if light <= 0 || heavy/light < 3*0.9 || heavy/light > 3*1.1 {
		t.Errorf("task-seconds light %.1f, heavy %.1f: ratio 1:%.2f, want 1:3 within 10%%", light, heavy, heavy/light)
	}
	// Wait for both, so that the cluster stops idle.
	for _, tn := range []string{"light", "heavy"} {
		waitFor(t, 5*time.Minute, tn+"'s job to end", func() bool { return status(tn).State != "running" })
	}
}

// BenchmarkClusterTinyTasks measures tiny tasks through a coordinator and
// three agent processes on loopback: tasks per second over a job of many
// one-line splits, and the time from a task's launch to its report at the
// coordinator (p50, p99). The same job on an embedded grid, measured in
// the same run, is the baseline.
func BenchmarkClusterTinyTasks(b *testing.B) {
	const files = 300
	dir := b.TempDir()
	for i := range files {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d.txt", i)), []byte("the quick brown fox\n"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	job, err := sdk.LoadJob(context.Background(), repoPath("examples/wordcount/job.toml"),
		map[string]string{"input": filepath.Join(dir, "*.txt"), "guest": "c"}, map[string]string{"partitions": "3"})
	if err != nil {
		b.Fatal(err)
	}
	tasks := files + 3
	run := func(b *testing.B, runJob func() *api.Summary) {
		var p50, p99 time.Duration
		var elapsed time.Duration
		for b.Loop() {
			s := runJob()
			p50, p99, elapsed = s.RoundTripP50, s.RoundTripP99, elapsed+s.Duration
		}
		b.ReportMetric(float64(tasks*b.N)/elapsed.Seconds(), "tasks/s")
		b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	}
	b.Run("cluster", func(b *testing.B) {
		c := startCluster(b, 3)
		r := c.remote(c.admin)
		run(b, func() *api.Summary {
			info, err := r.Run(context.Background(), job, io.Discard)
			if err != nil || info.Summary == nil {
				b.Fatal(err)
			}
			return info.Summary
		})
	})
	b.Run("embedded", func(b *testing.B) {
		l, err := local.Start(local.Config{Agents: 3, Slots: 6})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		run(b, func() *api.Summary {
			s, err := l.Run(context.Background(), job, io.Discard)
			if err != nil {
				b.Fatal(err)
			}
			return s
		})
	})
}

// TestGridUp starts `grid up`, points the CLI at it through grid.env,
// and stops the whole cluster with one SIGINT.
func TestGridUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	bin := buildGrid(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "up", "--agents", "2", "--state-dir", dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &lockedWriter{mu: &sync.Mutex{}, w: &out}, io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
	}()
	var env map[string]string
	waitFor(t, 30*time.Second, "grid.env", func() bool {
		var err error
		env, err = readEnv(filepath.Join(dir, "grid.env"))
		return err == nil && env["GRID_ADDR"] != "" && env["GRID_TOKEN"] != "" && env["GRID_CA"] != ""
	})
	if !strings.HasPrefix(env["GRID_ADDR"], "https://") {
		t.Errorf("grid.env's GRID_ADDR is %s, want an https:// URL", env["GRID_ADDR"])
	}
	if fi, err := os.Stat(filepath.Join(dir, "grid.env")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("grid.env: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	c := &cluster{t: t, bin: bin, addr: env["GRID_ADDR"], admin: env["GRID_TOKEN"], ca: env["GRID_CA"]}
	waitFor(t, 30*time.Second, "two alive agents", func() bool { return c.countAgents("alive") == 2 })
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		// Stopped by SIGINT, as a shell reports it: status 130.
		if code := cmd.ProcessState.ExitCode(); code != 130 {
			t.Errorf("grid up after SIGINT: %v, want exit status 130", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("grid up did not stop within 30 s of SIGINT")
	}
	if _, err := c.cli(c.admin, "agents"); err == nil {
		t.Error("the coordinator still answers after grid up stopped")
	}
	if !strings.Contains(out.String(), "GRID_ADDR="+env["GRID_ADDR"]) {
		t.Errorf("grid up did not print the API address:\n%s", out.String())
	}
}
