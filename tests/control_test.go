package tests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
