package tests

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/grid"
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
		return c.countAgents("alive") == 2
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
	out, err = c.cli(c.admin, "submit", repoPath("examples/wordcount/job.toml"), "--param", "input="+small, "--wait", "--progress", "none")
	if err != nil {
		t.Fatal(err)
	}
	jobs, _ = r.Jobs(ctx)
	if last := jobs[len(jobs)-1].ID; last != "job-3" {
		t.Fatalf("the job after job-2 is %s", last)
	}
}
