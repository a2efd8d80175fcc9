package tests

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/grid"
	"github.com/wasmgrid/wasmgrid/sdk"
)

// TestClusterCancelStopsTasks cancels a job whose tasks loop for ever on
// an agent process: the CLI's cancel kills them on the agent (their
// executor stops spending CPU), frees their resources and ends the job as
// canceled, with its attempts in the logs as killed.
func TestClusterCancelStopsTasks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	dir := t.TempDir()
	spin := watModule(t, filepath.Join("neighbours", "spin.wat"), dir)
	input := filepath.Join(dir, "lines.txt")
	os.WriteFile(input, []byte("one\ntwo\nthree\nfour\n"), 0o644)
	c := startCluster(t, 1, "a")
	agent := c.procs["agent-1"].Process.Pid
	job := moduleJob(t, dir, "spin", spin, input, "", map[string]string{"task.timeout": "10m", "source.split_size": "4"})
	r := c.remote(c.tokens["a"])
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	id, err := r.Submit(ctx, job, "")
	if err != nil {
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
	if out, err := c.cli(c.tokens["a"], "cancel", id); err != nil {
		t.Fatalf("grid cancel: %v\n%s", err, out)
	}
	canceled := time.Now()
	info, err := r.Watch(ctx, id, nil)
	if err == nil || info.State != "canceled" || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("the job ended %s (%v), want canceled", info.State, err)
	}
	// The executor stays (it is the tenant's, for its next tasks), but
	// its guests stop: its CPU time stops growing.
	waitFor(t, 30*time.Second, "the executor to stop spinning", func() bool {
		var before time.Duration
		for _, pid := range pids {
			before += processCPU(pid)
		}
		time.Sleep(300 * time.Millisecond)
		var after time.Duration
		for _, pid := range pids {
			after += processCPU(pid)
		}
		return after-before < 50*time.Millisecond
	})
	t.Logf("the canceled job's tasks stopped spending CPU %s after grid cancel", time.Since(canceled).Round(time.Millisecond))
	for _, ag := range c.agents() {
		if ag.FreeCPU != ag.CPUMillis {
			t.Errorf("agent %s has %d of %d millicores free after the cancel", ag.ID, ag.FreeCPU, ag.CPUMillis)
		}
	}
	out, err := c.cli(c.tokens["a"], "logs", id)
	if err != nil || !strings.Contains(out, "killed") {
		t.Errorf("grid logs does not show the killed attempts (%v):\n%s", err, out)
	}
	if out, err := c.cli(c.tokens["a"], "status", id); err != nil || !strings.Contains(out, "canceled") {
		t.Errorf("grid status of the canceled job (%v):\n%s", err, out)
	}
}

// freeAddr is a loopback address with a port that was free a moment ago:
// a process restarted on it is found where it was.
func freeAddr(t *testing.T, network string) string {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().String()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestClusterCoordinatorRestart kills the only coordinator with SIGKILL
// while a word count runs and starts it again from its state directory:
// the job goes on to the exact result, the finished job is still listed
// with its stages and summary, and job ids go on from where they were.
func TestClusterCoordinatorRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	c := startClusterCfg(t, 2, func(cfg *grid.CoordinatorConfig) {
		// Fixed addresses: the restarted coordinator is found where the
		// agents and clients left it.
		cfg.APIAddr, cfg.ControlAddr, cfg.GossipAddr = freeAddr(t, "tcp"), freeAddr(t, "udp"), freeAddr(t, "tcp")
		cfg.RaftAddr = freeAddr(t, "udp")
	}, nil)
	dir := t.TempDir()
	small := filepath.Join(dir, "small.txt")
	if err := writeCorpus(small, 256<<10, 3); err != nil {
		t.Fatal(err)
	}
	out, err := c.cli(c.admin, "submit", repoPath("examples/wordcount/job.toml"), "--param", "input="+small, "--wait", "--progress", "none")
	if err != nil {
		t.Fatal(err)
	}
	sameCounts(t, parseCounts(t, out), referenceCounts(t, small))

	input := filepath.Join(dir, "corpus.txt")
	if err := writeCorpus(input, 24<<20, 7); err != nil {
		t.Fatal(err)
	}
	want := referenceCounts(t, input)
	output := filepath.Join(dir, "counts")
	r := c.remote(c.admin)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err = c.cli(c.admin, "submit", repoPath("examples/wordcount/job.toml"), "--param", "input="+input, "--param", "output="+output, "--conf", "source.split_size=256KiB")
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(out[strings.LastIndex(out, "job-"):])
	var before api.JobInfo
	waitFor(t, 2*time.Minute, "some map tasks of "+id+" to finish", func() bool {
		before, err = r.Job(ctx, id)
		return err == nil && len(before.Stages) > 0 && before.Stages[0].Done >= 8
	})
	c.kill9("coordinator")
	killed := time.Now()
	c.start("coordinator", "coordinator", "--config", filepath.Join(c.dir, "coordinator.toml"))
	waitFor(t, time.Minute, "the restarted coordinator to see both agents", func() bool {
		// Until the new process listens, the CLI's connection is refused.
		ags, err := r.Agents(ctx)
		return err == nil && len(ags) == 2 && ags[0].Status == "alive" && ags[1].Status == "alive"
	})
	t.Logf("both agents registered again %s after the coordinator's SIGKILL", time.Since(killed).Round(time.Millisecond))
	info, err := r.Watch(ctx, id, nil)
	if err != nil {
		t.Fatalf("the job did not survive the restart: %v", err)
	}
	sameCounts(t, readCounts(t, output), want)
	t.Logf("%s: %d of %d map tasks were done at the kill; %d tasks, %d attempts in all", id, before.Stages[0].Done, before.Stages[0].Tasks, info.Summary.Tasks, info.Summary.Attempts)

	jobs, err := r.Jobs(ctx)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("grid jobs after the restart: %v %+v", err, jobs)
	}
	first, err := r.Job(ctx, jobs[0].ID)
	if err != nil || first.State != api.StateSucceeded || first.Summary == nil || len(first.Stages) != 2 {
		t.Fatalf("the first job after the restart: %v %+v", err, first)
	}
	if out, err := c.cli(c.admin, "submit", repoPath("examples/wordcount/job.toml"), "--param", "input="+small, "--wait", "--progress", "none"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	jobs, _ = r.Jobs(ctx)
	if last := jobs[len(jobs)-1].ID; last != "job-3" {
		t.Fatalf("the job after job-2 is %s", last)
	}
}

// TestClusterLeaderFailover runs grid up with three coordinator servers
// and three agents, as a user would, and kills the leading server with
// SIGKILL while a word count runs: another server leads within the
// election timeout, the job goes on to the exact result, the earlier job
// is still listed, and grid up starts the killed server again (--restart).
func TestClusterLeaderFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	bin := buildGrid(t)
	dir := t.TempDir()
	env := startGridUp(t, bin, filepath.Join(dir, "grid"), "--coordinators", "3", "--agents", "3", "--restart")
	r, err := sdk.NewRemote(sdk.RemoteConfig{Addr: env["GRID_ADDR"], Token: env["GRID_TOKEN"], CAFile: env["GRID_CA"]})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	waitFor(t, time.Minute, "three alive agents", func() bool {
		ags, err := r.Agents(ctx)
		return err == nil && len(ags) == 3 && ags[0].Status == "alive" && ags[1].Status == "alive" && ags[2].Status == "alive"
	})
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "GRID_ADDR="+env["GRID_ADDR"], "GRID_TOKEN="+env["GRID_TOKEN"], "GRID_CA="+env["GRID_CA"])
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("grid %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	small := filepath.Join(dir, "small.txt")
	if err := writeCorpus(small, 256<<10, 3); err != nil {
		t.Fatal(err)
	}
	sameCounts(t, parseCounts(t, cli("submit", repoPath("examples/wordcount/job.toml"), "--param", "input="+small, "--wait", "--progress", "none")), referenceCounts(t, small))

	input := filepath.Join(dir, "corpus.txt")
	if err := writeCorpus(input, 24<<20, 7); err != nil {
		t.Fatal(err)
	}
	want := referenceCounts(t, input)
	output := filepath.Join(dir, "counts")
	out := cli("submit", repoPath("examples/wordcount/job.toml"), "--param", "input="+input, "--param", "output="+output, "--conf", "source.split_size=256KiB")
	id := strings.TrimSpace(out[strings.LastIndex(out, "job-"):])
	done := func() int {
		info, err := r.Job(ctx, id)
		if err != nil || len(info.Stages) == 0 {
			return -1
		}
		n := 0
		for _, s := range info.Stages {
			n += s.Done
		}
		return n
	}
	var atKill int
	waitFor(t, 2*time.Minute, "some map tasks of "+id, func() bool { atKill = done(); return atKill >= 8 })
	var leader api.ServerInfo
	for _, s := range r.Servers(ctx) {
		if s.Leader {
			leader = s
		}
	}
	if leader.PID == 0 {
		t.Fatalf("no server leads: %+v", r.Servers(ctx))
	}
	if err := syscall.Kill(leader.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var newLeader string
	waitFor(t, time.Minute, "another server to lead", func() bool {
		for _, s := range r.Servers(ctx) {
			if s.Leader && s.Name != leader.Name {
				newLeader = s.Name
				return true
			}
		}
		return false
	})
	elected := time.Since(killed)
	waitFor(t, 2*time.Minute, "the job's next finished task", func() bool { return done() > atKill })
	nextTask := time.Since(killed)
	info, err := r.Watch(ctx, id, nil)
	if err != nil {
		t.Fatalf("the job did not survive the leader's death: %v", err)
	}
	sameCounts(t, readCounts(t, output), want)
	t.Logf("%s (pid %d) killed with %d tasks of %s done; %s leads %s later; the next task finished %s after the kill; %d tasks, %d attempts in all",
		leader.Name, leader.PID, atKill, id, newLeader, elected.Round(time.Millisecond), nextTask.Round(time.Millisecond), info.Summary.Tasks, info.Summary.Attempts)
	jobs, err := r.Jobs(ctx)
	if err != nil || len(jobs) != 2 || jobs[0].State != api.StateSucceeded {
		t.Fatalf("jobs after the failover: %v %+v", err, jobs)
	}
	// The first job printed its result, written under the old leader:
	// the new one reads it from the servers' shared results volume.
	var first bytes.Buffer
	if err := r.Result(ctx, jobs[0].ID, &first); err != nil {
		t.Fatalf("the result of %s after the failover: %v", jobs[0].ID, err)
	}
	sameCounts(t, parseCounts(t, first.String()), referenceCounts(t, small))
	waitFor(t, time.Minute, "grid up to start the killed server again, as a follower", func() bool {
		for _, s := range r.Servers(ctx) {
			if s.Name == leader.Name {
				return s.Error == "" && s.PID != leader.PID
			}
		}
		return false
	})
	servers := cli("servers")
	if strings.Count(servers, "true") != 1 {
		t.Errorf("grid servers does not show one leader:\n%s", servers)
	}
	t.Logf("grid servers after the restart:\n%s", servers)
}

// startGridUp runs grid up with args and its state in stateDir until the
// test ends (then SIGTERM; its output is logged if the test failed), and
// returns its grid.env once it is written.
func startGridUp(t *testing.T, bin, stateDir string, args ...string) map[string]string {
	t.Helper()
	up := exec.Command(bin, append(append([]string{"up"}, args...), "--state-dir", stateDir, "--log-level", "warn")...)
	var log bytes.Buffer
	var mu sync.Mutex
	up.Stdout, up.Stderr = &lockedWriter{mu: &mu, w: &log}, &lockedWriter{mu: &mu, w: &log}
	up.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = up.Process.Signal(syscall.SIGTERM)
		_ = up.Wait()
		if t.Failed() {
			mu.Lock()
			t.Logf("grid up:\n%s", lastLines(log.String(), 80))
			mu.Unlock()
		}
	})
	var env map[string]string
	waitFor(t, time.Minute, "grid up's grid.env", func() bool {
		var err error
		env, err = readEnv(filepath.Join(stateDir, "grid.env"))
		return err == nil && env["GRID_ADDR"] != ""
	})
	return env
}
