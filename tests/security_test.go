package tests

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/grid"
	"github.com/wasmgrid/wasmgrid/internal/jobspec"
	"github.com/wasmgrid/wasmgrid/sdk"
)

// procMem reads a process's resident memory now (VmRSS) and at its peak
// (VmHWM), in bytes.
func procMem(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, err
		}
		if k == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
	}
	return rss, hwm, nil
}

// children lists the child processes of pid.
func children(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// memWatch samples a process's resident memory and its children's until
// stopped.
type memWatch struct {
	stop, done chan struct{}
	// Written by the sampler, read after done is closed.
	peakRSS, peakChildren int64 // bytes
	maxChildren, samples  int
}

func watchMemory(pid int, every time.Duration) *memWatch {
	m := &memWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if rss, _, err := procMem(pid); err == nil {
				m.peakRSS = max(m.peakRSS, rss)
			}
			kids := children(pid)
			var sum int64
			for _, k := range kids {
				if rss, _, err := procMem(k); err == nil {
					sum += rss
				}
			}
			m.peakChildren, m.maxChildren = max(m.peakChildren, sum), max(m.maxChildren, len(kids))
			m.samples++
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

// Stop ends the sampling and waits for it.
func (m *memWatch) Stop() {
	close(m.stop)
	<-m.done
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func (c *cluster) coordinatorPID() int { return c.procs["coordinator"].Process.Pid }

// tlsConfig trusts the cluster's authority alone.
func (c *cluster) tlsConfig() *tls.Config {
	c.t.Helper()
	b, err := os.ReadFile(c.ca)
	if err != nil {
		c.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
}

// TestClusterAPIDefenses runs a cluster of processes with the default
// limits and shows, as a client would see them: plain HTTP refused, a
// revoked token refused at its next request, one token's flood refused
// with 429 while another token is served, and a wrong-token flood
// throttled.
func TestClusterAPIDefenses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	c := startCluster(t, 1, "flood", "calm")
	ctx := context.Background()

	// Plain HTTP to the API.
	plainURL := "http://" + strings.TrimPrefix(c.addr, "https://")
	resp, err := http.Get(plainURL + "/v1/jobs")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTPS") {
		t.Errorf("plain HTTP: HTTP %d %q, want 400", resp.StatusCode, body)
	}
	cmd := exec.Command(c.bin, "jobs")
	cmd.Env = append(os.Environ(), "GRID_ADDR="+plainURL, "GRID_TOKEN="+c.admin)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "use an https:// address") {
		t.Errorf("the CLI over plain HTTP: %v\n%s", err, out)
	}
	// Without the cluster's CA, the certificate is not trusted.
	cmd = exec.Command(c.bin, "jobs")
	cmd.Env = append(os.Environ(), "GRID_ADDR="+c.addr, "GRID_TOKEN="+c.admin, "GRID_CA=")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "GRID_CA") {
		t.Errorf("the CLI without GRID_CA: %v\n%s", err, out)
	}

	// Tokens created, used and revoked with the CLI; the SDK times the
	// refusal.
	out, err := c.cli(c.admin, "token", "create", "--tenant", "calm", "--role", "read-only", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var ro api.NewToken
	if err := json.Unmarshal([]byte(out), &ro); err != nil || ro.Token == "" {
		t.Fatalf("grid token create printed %q: %v", out, err)
	}
	if _, err := c.cli(ro.Token, "jobs"); err != nil {
		t.Errorf("a new read-only token: %v", err)
	}
	if _, err := c.cli(ro.Token, "cancel", "job-1"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("a read-only token cancels: %v, want 403", err)
	}
	if _, err := c.cli(c.admin, "token", "revoke", ro.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.cli(ro.Token, "jobs"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("a token revoked with the CLI: %v, want 401", err)
	}
	admin := c.remote(c.admin)
	victim, err := admin.CreateToken(ctx, "calm", api.RoleSubmit)
	if err != nil {
		t.Fatal(err)
	}
	vr := c.remote(victim.Token)
	if _, err := vr.Jobs(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := admin.RevokeToken(ctx, victim.ID); err != nil {
		t.Fatal(err)
	}
	_, err = vr.Jobs(ctx)
	refusedIn := time.Since(start)
	var ae *sdk.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Errorf("the revoked token's next request: %v, want 401", err)
	}
	t.Logf("a revoked token was refused %s after the revocation was sent (the next request)", refusedIn.Round(time.Microsecond))
	if refusedIn > time.Second {
		t.Errorf("a revoked token was refused only after %s", refusedIn)
	}

	// One token floods; another asks at 10 requests a second.
	flood, calm := c.remote(c.tokens["flood"]), c.remote(c.tokens["calm"])
	var ok, limited, other atomic.Int64
	var retryAfter atomic.Value
	fctx, stopFlood := context.WithTimeout(ctx, 3*time.Second)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for fctx.Err() == nil {
				_, err := flood.Jobs(fctx)
				var ae *sdk.APIError
				switch {
				case err == nil:
					ok.Add(1)
				case errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests:
					limited.Add(1)
					retryAfter.Store(ae.RetryAfter)
				case fctx.Err() == nil:
					other.Add(1)
				}
			}
		})
	}
	calmOK, calmRefused := 0, 0
	for tick := time.NewTicker(100 * time.Millisecond); fctx.Err() == nil; <-tick.C {
		if _, err := calm.Jobs(ctx); err != nil {
			calmRefused++
			t.Logf("the calm token: %v", err)
		} else {
			calmOK++
		}
	}
	wg.Wait()
	stopFlood()
	t.Logf("in 3 s the flooding token got %d answers and %d 429s (Retry-After %v); the calm token %d answers and %d refusals", ok.Load(), limited.Load(), retryAfter.Load(), calmOK, calmRefused)
	if limited.Load() == 0 || retryAfter.Load() == nil || retryAfter.Load().(time.Duration) < time.Second {
		t.Error("the flood got no 429 with Retry-After")
	}
	// 40 at once, then 20 a second: 3 s of flood cannot get much more.
	if n := ok.Load(); n > 40+20*4 {
		t.Errorf("the flooding token was answered %d times in 3 s", n)
	}
	if calmRefused > 0 || calmOK < 20 || other.Load() > 0 {
		t.Errorf("the calm token: %d answers, %d refusals; other errors %d", calmOK, calmRefused, other.Load())
	}

	// A wrong-token flood from one address: 3,000 requests.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: c.tlsConfig(), MaxIdleConnsPerHost: 16}}
	defer hc.CloseIdleConnections()
	var unauthorized, throttled atomic.Int64
	start = time.Now()
	var wg2 sync.WaitGroup
	jobs := make(chan int)
	for range 16 {
		wg2.Go(func() {
			for i := range jobs {
				req, _ := http.NewRequest(http.MethodGet, c.addr+"/v1/jobs", nil)
				req.Header.Set("Authorization", fmt.Sprintf("Bearer guess-%d", i))
				resp, err := hc.Do(req)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusUnauthorized:
					unauthorized.Add(1)
				case http.StatusTooManyRequests:
					if resp.Header.Get("Retry-After") != "" {
						throttled.Add(1)
					}
				}
			}
		})
	}
	for i := range 3000 {
		jobs <- i
	}
	close(jobs)
	wg2.Wait()
	t.Logf("3,000 wrong tokens in %s: %d answered 401 (tried), %d throttled with 429", time.Since(start).Round(time.Millisecond), unauthorized.Load(), throttled.Load())
	if unauthorized.Load() > 12 || throttled.Load() < 2900 {
		t.Errorf("a wrong-token flood: %d tried, %d throttled; want at most the burst (10, and a refill) tried", unauthorized.Load(), throttled.Load())
	}
	// The audit log recorded the refusals.
	b, err := os.ReadFile(filepath.Join(c.dir, "coordinator-state", "coordinator", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte(`"status":429`)); n < 2900 {
		t.Errorf("the audit log holds %d refusals with 429", n)
	}
	if bytes.Contains(b, []byte(c.admin)) || bytes.Contains(b, []byte(victim.Token)) {
		t.Error("the audit log holds a token")
	}
}

// floodBytes is the size of each upload of TestClusterUploadFlood:
// WASMGRID_FLOOD_BYTES, or 2 GB.
func floodBytes(t *testing.T) int64 {
	if s := os.Getenv("WASMGRID_FLOOD_BYTES"); s != "" {
		var n jobspec.Size
		if err := n.UnmarshalText([]byte(s)); err != nil {
			t.Fatalf("WASMGRID_FLOOD_BYTES: %v", err)
		}
		return int64(n)
	}
	return 2 << 30
}

// generator reads as a module: a wasm header, then n-8 bytes of a pattern
// that differs with seed, made as they are read (nothing is held).
type generator struct {
	n, off int64
	seed   byte
	block  []byte // block[i] = byte(i) ^ seed: the pattern, copied from
}

func (g *generator) Read(p []byte) (int, error) {
	if g.off >= g.n {
		return 0, io.EOF
	}
	if g.block == nil {
		g.block = make([]byte, 64<<10+256)
		for i := range g.block {
			g.block[i] = byte(i) ^ g.seed
		}
	}
	p = p[:min(int64(len(p)), g.n-g.off)]
	for n := 0; n < len(p); {
		o := g.off + int64(n)
		if o < 8 {
			p[n] = "\x00asm\x01\x00\x00\x00"[o]
			n++
			continue
		}
		n += copy(p[n:], g.block[o%256:])
	}
	g.off += int64(len(p))
	return len(p), nil
}

// TestClusterUploadFlood uploads six modules of 2 GB at once, streamed
// from generators (neither side holds them), to a coordinator whose
// limits admit them, and reads its resident memory from /proc throughout:
// the uploads pass through it to disk.
func TestClusterUploadFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 12 GB")
	}
	size := floodBytes(t)
	c := startClusterCfg(t, 1, func(cfg *grid.CoordinatorConfig) {
		cfg.Limits.ModuleSize = jobspec.Size(size + 1)
		cfg.Limits.ModuleBytesPerTenant = jobspec.Size(7 * size)
		cfg.Limits.UploadsPerTenant = 6
	}, nil, "big")
	pid := c.coordinatorPID()
	_, before, _ := procMem(pid)
	w := watchMemory(pid, 20*time.Millisecond)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 6)
	infos := make([]api.ModuleInfo, 6)
	for i := range 6 {
		wg.Go(func() {
			// A client each: six connections, as six users would upload.
			infos[i], errs[i] = c.remote(c.tokens["big"]).PushModuleFrom(context.Background(), &generator{n: size, seed: byte(i)})
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	w.Stop()
	_, after, _ := procMem(pid)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("upload %d: %v", i, err)
		}
		fi, err := os.Stat(filepath.Join(c.dir, "coordinator-state", "coordinator", "modules", infos[i].Hash+".wasm"))
		if err != nil || fi.Size() != size {
			t.Errorf("upload %d (%+v) is not on disk whole: %v", i, infos[i], err)
		}
	}
	t.Logf("6 uploads of %.0f MiB in %s (%.0f MB/s): coordinator VmHWM %.1f MiB before, %.1f MiB after; peak VmRSS sampled %.1f MiB (%d samples)",
		mib(size), elapsed.Round(time.Millisecond), float64(6*size)/elapsed.Seconds()/1e6, mib(before), mib(after), mib(w.peakRSS), w.samples)
	// The bound documented in docs/api.md: the process's own memory,
	// whatever the uploads' size.
	if after > 256<<20 {
		t.Errorf("the coordinator's peak resident memory reached %.0f MiB", mib(after))
	}
}

// initBombWAT's _initialize grows the memory 1 MiB at a time until
// memory.grow fails, then traps (tests/hostile/init-grow-slow.wat, with
// a data segment that makes each copy's hash its own).
func initBombWAT(i int) string {
	return fmt.Sprintf(`(module
  (memory (export "memory") 8)
  (data (i32.const 16) "map f\n")
  (data (i32.const 64) "bomb %d")
  (func (export "_initialize")
    (loop $more (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    (unreachable))
  (func (export "wasmgrid_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgrid_describe") (result i64) (i64.const 0x1000000006))
  (func (export "wasmgrid_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "wasmgrid_run") (param i32 i32) (result i32) (i32.const 0))
  (func (export "wasmgrid_output") (result i64) (i64.const 0)))`, i)
}

// TestClusterInitBombFlood submits thirty jobs at once, from three
// tenants, each with its own module whose initialization allocates
// without end, with task.memory = 4GiB: the coordinator reads their
// manifests two at a time, within 256 MiB each, and tells the others to
// come back (503, Retry-After); every job is refused naming the cap. The
// coordinator's and its inspector processes' memory is read from /proc.
func TestClusterInitBombFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("wat2wasm (wabt) is not on PATH, and CI is set: %v", err)
		}
		t.Skip("wat2wasm (wabt) is not on PATH: install wabt")
	}
	tenants := []string{"a", "b", "c"}
	c := startCluster(t, 1, tenants...)
	dir := t.TempDir()
	jobs := make([]*sdk.Job, 30)
	for i := range jobs {
		d := filepath.Join(dir, strconv.Itoa(i))
		os.MkdirAll(d, 0o755)
		src := filepath.Join(d, "bomb.wat")
		os.WriteFile(src, []byte(initBombWAT(i)), 0o644)
		if out, err := exec.Command(wat2wasm, src, "-o", filepath.Join(d, "bomb.wasm")).CombinedOutput(); err != nil {
			t.Fatalf("wat2wasm: %v\n%s", err, out)
		}
		spec := "name = \"bomb\"\n[modules.b]\npath = \"bomb.wasm\"\n[source]\ngenerate = 10\n[[steps]]\nmap = \"b.f\"\n[sink]\ntext = \"" + filepath.Join(d, "out") + "\"\n"
		os.WriteFile(filepath.Join(d, "job.toml"), []byte(spec), 0o644)
		job, err := sdk.LoadJob(context.Background(), filepath.Join(d, "job.toml"), nil, map[string]string{"task.memory": "4GiB"})
		if err != nil {
			t.Fatal(err)
		}
		jobs[i] = job
	}
	pid := c.coordinatorPID()
	_, before, _ := procMem(pid)
	w := watchMemory(pid, 10*time.Millisecond)
	start := time.Now()
	type outcome struct {
		err   error
		tries int
	}
	outcomes := make([]outcome, len(jobs))
	var busy atomic.Int64
	var wg sync.WaitGroup
	for i, job := range jobs {
		r := c.remote(c.tokens[tenants[i%len(tenants)]])
		wg.Go(func() {
			deadline := time.Now().Add(3 * time.Minute)
			for {
				outcomes[i].tries++
				_, err := r.Submit(context.Background(), job, "")
				var ae *sdk.APIError
				if errors.As(err, &ae) && (ae.Status == http.StatusServiceUnavailable || ae.Status == http.StatusTooManyRequests) && time.Now().Before(deadline) {
					busy.Add(1)
					time.Sleep(ae.RetryAfter) // as a client does: not a synchronisation
					continue
				}
				outcomes[i].err = err
				return
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	w.Stop()
	_, after, _ := procMem(pid)
	capped := 0
	for i, o := range outcomes {
		var ae *sdk.APIError
		switch {
		case errors.As(o.err, &ae) && ae.Status == http.StatusBadRequest && strings.Contains(ae.Msg, "limits.inspector_memory"):
			capped++
		case errors.As(o.err, &ae) && ae.Status == http.StatusBadRequest && strings.Contains(ae.Msg, "function start function or _initialize"):
			// Out of time before out of memory, on a loaded machine.
		default:
			t.Errorf("submission %d (%d tries): %v, want a 400 about its initialization", i, o.tries, o.err)
		}
	}
	t.Logf("30 init bombs (task.memory 4GiB) refused in %s, %d naming the inspector's memory cap, after %d answers to come back later; coordinator VmHWM %.1f MiB before, %.1f MiB after; inspector processes: at most %d at once, %.0f MiB together at the peak sampled (%d samples)",
		elapsed.Round(time.Millisecond), capped, busy.Load(), mib(before), mib(after), w.maxChildren, mib(w.peakChildren), w.samples)
	if w.maxChildren > grid.DefaultLimits().Inspectors {
		t.Errorf("%d inspector processes ran at once; limits.inspectors is %d", w.maxChildren, grid.DefaultLimits().Inspectors)
	}
	// Two inspectors, each within 2 x 256 MiB of guest memory (a grown
	// memory is copied) and its runtime.
	if w.peakChildren > 2*(2*256+128)<<20 {
		t.Errorf("the inspector processes held %.0f MiB together", mib(w.peakChildren))
	}
	if after > 256<<20 {
		t.Errorf("the coordinator's peak resident memory reached %.0f MiB", mib(after))
	}
	// The refusals are in the audit log, with the tenants that made them.
	f, err := os.Open(filepath.Join(c.dir, "coordinator-state", "coordinator", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	refused := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct{ Action, Tenant, Outcome string }
		json.Unmarshal(sc.Bytes(), &r)
		if r.Action == "job.submit" && r.Outcome == "refused" {
			refused[r.Tenant]++
		}
	}
	for _, tn := range tenants {
		if refused[tn] < 10 {
			t.Errorf("the audit log holds %d refused submissions of tenant %s, want at least 10", refused[tn], tn)
		}
	}
}
