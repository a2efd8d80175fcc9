package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/grid"
	"github.com/wasmgrid/wasmgrid/internal/storage"
	"github.com/wasmgrid/wasmgrid/sdk"
)

// startServers starts n coordinator servers (grid init --coordinators n)
// and agents, each a process, as an operator would on one host; edit, if
// set, changes every server's config before it starts. c.addr lists
// every server's API, as GRID_ADDR does.
func startServers(t testing.TB, n, agents int, edit func(*grid.CoordinatorConfig)) *cluster {
	t.Helper()
	c := &cluster{t: t, bin: buildGrid(t), dir: t.TempDir(), procs: map[string]*exec.Cmd{}, logs: map[string]*bytes.Buffer{}, tokens: map[string]string{}}
	out, err := exec.Command(c.bin, "init", c.dir, "--coordinators", strconv.Itoa(n), "--agents", strconv.Itoa(agents),
		"--api-addr", "127.0.0.1:0", "--control-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0").CombinedOutput()
	if err != nil {
		t.Fatalf("grid init: %v\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		if tok, ok := strings.CutPrefix(strings.TrimSpace(line), "admin token: "); ok {
			c.admin = tok
		}
	}
	tmp, err := filepath.EvalSymlinks(os.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var apis []string
	t.Cleanup(c.stop)
	for i := range n {
		name := fmt.Sprintf("coordinator-%d", i+1)
		path := filepath.Join(c.dir, name+".toml")
		cfg, err := grid.LoadCoordinatorConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg.AgentGrace = 2e9
		cfg.Volumes = append(cfg.Volumes, storage.Volume{Name: "tmp", URL: "file://" + tmp})
		cfg.Tenants = append(cfg.Tenants, grid.TenantConfig{Name: "default", Weight: 1, Grants: map[string]string{"tmp": "read-write"}})
		if edit != nil {
			edit(cfg)
		}
		if err := grid.WriteConfig(path, cfg); err != nil {
			t.Fatal(err)
		}
		apis = append(apis, "https://"+cfg.APIAddr)
		if i == 0 {
			c.gossip = cfg.GossipAddr
		}
		c.start(name, "coordinator", "--config", path)
	}
	c.addr, c.ca = strings.Join(apis, ","), filepath.Join(c.dir, "ca.pem")
	r := c.remote(c.admin)
	waitFor(t, time.Minute, "a leader", func() bool { return leaderOf(r) != nil })
	for i := range agents {
		c.startAgent(fmt.Sprintf("agent-%d", i+1))
	}
	waitFor(t, time.Minute, fmt.Sprintf("%d alive agents", agents), func() bool {
		return c.countAgents("alive") == agents
	})
	return c
}

// leaderOf is the server that leads, or nil.
func leaderOf(r *sdk.Remote) *api.ServerInfo {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range r.Servers(ctx) {
		if s.Leader {
			return &s
		}
	}
	return nil
}

// server describes the server at one API URL.
func (c *cluster) server(addr string) (api.ServerInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.remote(c.admin).Server(ctx, addr)
}

// api is the API URL of server name (coordinator-N).
func (c *cluster) api(name string) string {
	cfg, err := grid.LoadCoordinatorConfig(filepath.Join(c.dir, name+".toml"))
	if err != nil {
		c.t.Fatal(err)
	}
	return "https://" + cfg.APIAddr
}

// piJob is a small job that ends in a moment.
func piJob(t testing.TB) *sdk.Job {
	t.Helper()
	job, err := sdk.LoadJob(context.Background(), repoPath("examples/pi/job.toml"), map[string]string{"throws": "1000"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// TestClusterServersReplace replaces a dead server of three as
// docs/operations.md says: the leader refuses to remove itself and to add
// a server while a dead one counts, removes the dead one, adds a new one
// whose files grid servers add --from writes; the new server takes the
// state from the leader and counts toward the quorum: with the old leader
// killed, the two others elect a leader that lists the earlier job.
func TestClusterServersReplace(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	c := startServers(t, 3, 1, nil)
	r := c.remote(c.admin)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := r.Run(ctx, piJob(t), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	leader := leaderOf(r)
	var dead string
	for _, name := range []string{"coordinator-1", "coordinator-2", "coordinator-3"} {
		if name != leader.Name {
			dead = name
		}
	}
	c.kill9(dead)
	if out, err := c.cli(c.admin, "servers", "remove", leader.Name); err == nil || !strings.Contains(err.Error(), "leads: stop it first") {
		t.Errorf("grid servers remove of the leader: %v\n%s", err, out)
	}
	addArgs := []string{"servers", "add", "coordinator-4", "--id", "4", "--raft-addr", freeAddr(t, "udp"),
		"--api-addr", freeAddr(t, "tcp"), "--gossip-addr", freeAddr(t, "tcp"), "--control-addr", freeAddr(t, "udp"),
		"--from", filepath.Join(c.dir, leader.Name+".toml")}
	// The leader counts a server dead once it has not heard from it for
	// an election timeout.
	waitFor(t, 30*time.Second, "the leader to miss "+dead, func() bool {
		s, err := c.server(leader.APIAddr)
		return err == nil && slices.Contains(s.Unreachable, dead)
	})
	if out, err := c.cli(c.admin, addArgs...); err == nil || !strings.Contains(err.Error(), "remove the dead server first") || !strings.Contains(err.Error(), dead) {
		t.Fatalf("grid servers add while %s is dead: %v\n%s", dead, err, out)
	}
	if _, err := os.Stat(filepath.Join(c.dir, "coordinator-4.toml")); err == nil {
		t.Error("a refused addition wrote the new server's config")
	}
	out, err := c.cli(c.admin, "servers", "remove", dead)
	if _, members, _ := strings.Cut(out, "members: "); err != nil || members == "" || strings.Contains(members, dead) {
		t.Fatalf("grid servers remove %s: %v\n%s", dead, err, out)
	}
	out, err = c.cli(c.admin, addArgs...)
	if err != nil || !strings.Contains(out, "coordinator-4 (id 4)") {
		t.Fatalf("grid servers add: %v\n%s", err, out)
	}
	c.start("coordinator-4", "coordinator", "--config", filepath.Join(c.dir, "coordinator-4.toml"))
	api4 := c.api("coordinator-4")
	added := leaderOf(r)
	waitFor(t, time.Minute, "coordinator-4 to catch up", func() bool {
		s, err := c.server(api4)
		return err == nil && s.AppliedIndex >= added.AppliedIndex && len(s.Members) == 3 && s.LeaderName != ""
	})
	// coordinator-4 counts: with the leader gone, it and the third
	// server elect one.
	c.kill9(leader.Name)
	c.addr += "," + api4
	r = c.remote(c.admin)
	waitFor(t, time.Minute, "a new leader", func() bool {
		l := leaderOf(r)
		return l != nil && l.Name != leader.Name
	})
	jobs, err := r.Jobs(ctx)
	if err != nil || len(jobs) != 1 || jobs[0].State != api.StateSucceeded {
		t.Fatalf("jobs after the replacement: %v %+v", err, jobs)
	}
	out, _ = c.cli(c.admin, "servers")
	t.Logf("grid servers after the replacement and the old leader's death:\n%s", out)
}

// TestClusterQuorumLost kills two of three servers: a request to the
// survivor waits a bounded time, then gets 503 with Retry-After and a
// message that says the quorum is lost and names the two; nothing is
// half-applied: once they are back, the job list is what it was.
func TestClusterQuorumLost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	c := startServers(t, 3, 1, nil)
	r := c.remote(c.admin)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := r.Run(ctx, piJob(t), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	survivor := "coordinator-1"
	dead := []string{"coordinator-2", "coordinator-3"}
	for _, name := range dead {
		c.kill9(name)
	}
	s, err := sdk.NewRemote(sdk.RemoteConfig{Addr: c.api(survivor), Token: c.admin, CAFile: c.ca})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, survivor+" to know no leader", func() bool {
		info, err := c.server(c.api(survivor))
		return err == nil && info.LeaderName == ""
	})
	start := time.Now()
	_, err = s.SubmitRequest(ctx, api.SubmitRequest{Spec: "name = \"refused\"\n"})
	waited := time.Since(start)
	var ae *sdk.APIError
	if !errors.As(err, &ae) || ae.Status != 503 || ae.RetryAfter == 0 {
		t.Fatalf("a submission to the survivor: %v, want 503 with Retry-After", err)
	}
	for _, w := range append([]string{"lost their quorum", "1 of 3 servers answer"}, dead...) {
		if !strings.Contains(ae.Msg, w) {
			t.Errorf("the 503 does not say %q: %s", w, ae.Msg)
		}
	}
	t.Logf("the survivor answered after %s: %v", waited.Round(time.Millisecond), err)
	out, err := c.cli(c.admin, "jobs")
	if err == nil || !strings.Contains(err.Error(), "quorum") {
		t.Errorf("grid jobs with the quorum lost: %v\n%s", err, out)
	}
	for _, name := range dead {
		c.start(name, "coordinator", "--config", filepath.Join(c.dir, name+".toml"))
	}
	waitFor(t, time.Minute, "a leader again", func() bool { return leaderOf(r) != nil })
	jobs, err := r.Jobs(ctx)
	if err != nil || len(jobs) != 1 || jobs[0].Name != "pi" {
		t.Fatalf("jobs after the quorum came back: %v %+v", err, jobs)
	}
}

// runCoordinator runs grid coordinator --config path, which must exit
// non-zero within a bounded time, and returns what it printed.
func runCoordinator(t *testing.T, bin, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "coordinator", "--config", path).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() <= 0 {
		t.Fatalf("grid coordinator on a bad state: %v, want a non-zero exit\n%s", err, out)
	}
	return string(out)
}

func mustSay(t *testing.T, what, out string, words ...string) {
	t.Helper()
	for _, w := range words {
		if !strings.Contains(out, w) {
			t.Errorf("%s: the error does not say %q:\n%s", what, w, out)
		}
	}
}

// TestClusterBadState starts a coordinator on states it must refuse (a
// truncated or overwritten raft.db, another cluster's state dir, a
// [[servers]] list that disagrees with the log): each exits non-zero
// naming the file or the member and what to do. A backup taken with grid
// backup while it ran then restores the jobs.
func TestClusterBadState(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	c := startClusterCfg(t, 1, func(cfg *grid.CoordinatorConfig) {
		cfg.APIAddr, cfg.ControlAddr, cfg.GossipAddr = freeAddr(t, "tcp"), freeAddr(t, "udp"), freeAddr(t, "tcp")
		cfg.RaftAddr = freeAddr(t, "udp")
	}, nil)
	r := c.remote(c.admin)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := r.Run(ctx, piJob(t), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "raft-backup.db")
	if out, err := c.cli(c.admin, "backup", backup); err != nil || !strings.Contains(out, "bytes, the log of coordinator") {
		t.Fatalf("grid backup: %v\n%s", err, out)
	}
	p := c.procs["coordinator"]
	_ = p.Process.Signal(os.Interrupt)
	_ = p.Wait()
	delete(c.procs, "coordinator")
	config := filepath.Join(c.dir, "coordinator.toml")
	db := filepath.Join(c.dir, "coordinator-state", "raft", "raft.db")
	good, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}

	if err := os.WriteFile(db, good[:len(good)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	mustSay(t, "a truncated raft.db", runCoordinator(t, c.bin, config), db, "corrupt or truncated", "Restore the file from a backup", "grid servers remove coordinator")

	bad := bytes.Clone(good)
	copy(bad[:8192], make([]byte, 8192))
	if err := os.WriteFile(db, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	mustSay(t, "an overwritten raft.db", runCoordinator(t, c.bin, config), db, "Restore the file from a backup")

	// The backup taken while it ran restores the job state.
	b, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, b, 0o600); err != nil {
		t.Fatal(err)
	}

	// Another cluster's config (another authority) on this state dir.
	other := t.TempDir()
	if out, err := exec.Command(c.bin, "init", other).CombinedOutput(); err != nil {
		t.Fatalf("grid init: %v\n%s", err, out)
	}
	ocfg, err := grid.LoadCoordinatorConfig(filepath.Join(other, "coordinator.toml"))
	if err != nil {
		t.Fatal(err)
	}
	ocfg.StateDir, ocfg.APIAddr, ocfg.ControlAddr, ocfg.GossipAddr = filepath.Join(c.dir, "coordinator-state"), "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	if err := grid.WriteConfig(filepath.Join(other, "coordinator.toml"), ocfg); err != nil {
		t.Fatal(err)
	}
	mustSay(t, "another cluster's state dir", runCoordinator(t, c.bin, filepath.Join(other, "coordinator.toml")),
		"belongs to another cluster", filepath.Join(c.dir, "coordinator-state"), "Point state_dir at this server's own state directory")

	// A [[servers]] list that names a member the log does not have.
	cfg, err := grid.LoadCoordinatorConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	saved := *cfg
	cfg.ServerID = 1
	cfg.Servers = []grid.ServerConfig{
		{ID: 1, Name: "coordinator", RaftAddr: cfg.RaftAddr, APIAddr: cfg.APIAddr},
		{ID: 2, Name: "coordinator-b", RaftAddr: freeAddr(t, "udp")},
	}
	if err := grid.WriteConfig(config, cfg); err != nil {
		t.Fatal(err)
	}
	mustSay(t, "a [[servers]] list that disagrees", runCoordinator(t, c.bin, config),
		"2 (coordinator-b) is in the config but not a member", "[[servers]]", "grid servers add")
	if err := grid.WriteConfig(config, &saved); err != nil {
		t.Fatal(err)
	}

	c.start("coordinator", "coordinator", "--config", config)
	waitFor(t, time.Minute, "the restored coordinator", func() bool {
		jobs, err := r.Jobs(ctx)
		return err == nil && len(jobs) == 1 && jobs[0].State == api.StateSucceeded
	})
}
