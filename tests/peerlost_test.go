package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/grid"
	"github.com/wasmgrid/wasmgrid/internal/jobspec"
	"github.com/wasmgrid/wasmgrid/sdk"
)

// TestClusterFrozenAgentPeerLost freezes an agent with SIGSTOP while the
// reducers of a word count wait for its blocks, and checks that they stop
// waiting when the coordinator declares it lost (peer_lost), not at the
// QUIC idle timeout (30 s): a frozen process closes none of its
// connections, so nothing else tells them. The job's result is exact; the
// time from the loss to the job's end is logged.
//
// Reducers fetch all their blocks when they start, which takes
// milliseconds, so freezing an agent "mid-fetch" is a race. Instead the
// agent is frozen before the reducers start, while it holds map outputs
// and runs nothing: the input is small files and one large one, whose map
// task is still running on another agent when the small ones are done.
// When it ends, the reducers start and every one of them asks the frozen
// agent for its blocks (each reducer reads every map output) and waits;
// then the agent is declared lost (gossip, then agent_grace). The grace is
// raised to 10 s so that the large map ends well within it.
func TestClusterFrozenAgentPeerLost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	const grace = 10 * time.Second
	c := startClusterCfg(t, 3, func(cfg *grid.CoordinatorConfig) { cfg.AgentGrace = jobspec.Duration(grace) }, nil)
	dir := t.TempDir()
	inputs := filepath.Join(dir, "in")
	if err := os.Mkdir(inputs, 0o755); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for i := range 8 {
		writeInput(t, filepath.Join(inputs, fmt.Sprintf("small-%d.txt", i)), 64<<10, uint64(i+1), want)
	}
	writeInput(t, filepath.Join(inputs, "large.txt"), 48<<20, 99, want)
	output := filepath.Join(dir, "counts")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	job, err := sdk.LoadJob(ctx, repoPath("examples/wordcount/job.toml"),
		map[string]string{"input": filepath.Join(inputs, "*.txt"), "output": output, "guest": "c"},
		map[string]string{"source.split_size": "64MiB", "partitions": "6"})
	if err != nil {
		t.Fatal(err)
	}
	r := c.remote(c.admin)
	id, err := r.Submit(ctx, job, "")
	if err != nil {
		t.Fatal(err)
	}

	// The agent to freeze: it ran a map task and runs nothing, while the
	// large map still runs elsewhere and no map waits.
	var frozen string
	waitFor(t, time.Minute, "an idle agent that holds map outputs while the large map runs", func() bool {
		j, err := r.Job(ctx, id)
		if err != nil || j.State != api.StateRunning || len(j.Stages) != 2 {
			return false
		}
		if m := j.Stages[0]; m.Pending > 0 || m.Running == 0 {
			return false
		}
		logs, err := r.Logs(ctx, id, "")
		if err != nil {
			return false
		}
		agents, err := r.Agents(ctx)
		if err != nil {
			return false
		}
		for _, a := range agents {
			if a.FreeCPU == a.CPUMillis && ranMap(logs, a.ID) {
				frozen = a.ID
				return true
			}
		}
		return false
	})
	pid := c.procs[frozen].Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	// Whatever happens, the frozen agent must not stay stopped: the
	// cluster's cleanup stops its processes with SIGTERM.
	defer func() {
		if _, ok := c.procs[frozen]; ok {
			c.kill9(frozen)
		}
	}()
	t.Logf("%s (pid %d) frozen with SIGSTOP", frozen, pid)

	// The reducers start, and wait for the frozen agent's blocks, before
	// it is declared lost.
	var lost, reducing time.Time
	waitFor(t, time.Minute, frozen+" to be declared lost", func() bool {
		if reducing.IsZero() {
			if j, err := r.Job(ctx, id); err == nil && len(j.Stages) == 2 && j.Stages[1].Running > 0 {
				reducing = time.Now()
			}
		}
		agents, err := r.Agents(ctx)
		if err != nil {
			return false
		}
		for _, a := range agents {
			if a.ID == frozen && a.Status == "lost" {
				lost = time.Now()
				return true
			}
		}
		return false
	})
	if reducing.IsZero() {
		t.Fatalf("the reducers had not started when %s was declared lost (%s after SIGSTOP): the large map task outlasted the grace", frozen, lost.Sub(stopped).Round(time.Millisecond))
	}
	info, err := r.Watch(ctx, id, nil)
	if err != nil {
		t.Fatalf("the job did not survive the frozen agent: %v", err)
	}
	ended := time.Now()
	sameCounts(t, readCounts(t, output), want)
	c.kill9(frozen)

	logs, err := r.Logs(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	interrupted := 0
	for _, l := range logs {
		if l.Outcome == "fetch_failed" && l.Agent != frozen && strings.Contains(l.Error, "declared lost") {
			interrupted++
		}
	}
	t.Logf("SIGSTOP → reducers waiting %s → declared lost %s → job ended %s: %s from the loss to the job's end (%d reducer attempts interrupted; %d tasks, %d attempts)",
		reducing.Sub(stopped).Round(time.Millisecond), lost.Sub(stopped).Round(time.Millisecond), ended.Sub(stopped).Round(time.Millisecond),
		ended.Sub(lost).Round(time.Millisecond), interrupted, info.Summary.Tasks, info.Summary.Attempts)
	if interrupted == 0 {
		var got []string
		for _, l := range logs {
			if l.Outcome != "succeeded" {
				got = append(got, fmt.Sprintf("%s %s on %s: %s", l.Task, l.Outcome, l.Agent, l.Error))
			}
		}
		t.Fatalf("no reducer's fetch was stopped by the loss; failed attempts:\n%s", strings.Join(got, "\n"))
	}
}

// writeInput writes a corpus of about size bytes to path and adds its word
// counts to counts.
func writeInput(t *testing.T, path string, size int64, seed uint64, counts map[string]int64) {
	t.Helper()
	if err := writeCorpus(path, size, seed); err != nil {
		t.Fatal(err)
	}
	for w, n := range referenceCounts(t, path) {
		counts[w] += n
	}
}

// ranMap reports whether agent ran a map task (stage 0) of the job to its
// end.
func ranMap(logs []api.TaskLog, agent string) bool {
	return slices.ContainsFunc(logs, func(l api.TaskLog) bool {
		return l.Agent == agent && l.Outcome == "succeeded" && strings.HasPrefix(l.Task, "0.")
	})
}
