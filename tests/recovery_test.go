package tests

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/api"
)

// TestClusterShuffleFilesDeleted deletes an agent's committed shuffle files
// three times while a word count runs on three agent processes, as an
// operator's cleanup script or a failing disk would: at the first finished
// map tasks, when the reducers start and after some of them finished. The
// reducers that miss a file fail their fetch, every output of the job on
// that agent is forgotten and computed again (host-level invalidation), and
// each output has a loss budget of its own, so the job ends exact however
// many reducers notice the same loss. (Before, the job-wide budget of
// fetch failures ran out in 3 of 5 tries.)
func TestClusterShuffleFilesDeleted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	c := startCluster(t, 3)
	dir := t.TempDir()
	input := filepath.Join(dir, "corpus.txt")
	if err := writeCorpus(input, 16<<20, 11); err != nil {
		t.Fatal(err)
	}
	want := referenceCounts(t, input)
	r := c.remote(c.admin)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for try := range 2 {
		output := filepath.Join(dir, fmt.Sprintf("counts-%d", try))
		out, err := c.cli(c.admin, "submit", repoPath("examples/wordcount/job.toml"), "--param", "input="+input, "--param", "output="+output,
			"--conf", "source.split_size=256KiB")
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		id := strings.TrimSpace(out[strings.LastIndex(out, "job-"):])
		victim := filepath.Join(c.dir, fmt.Sprintf("agent-%d-state", try+1))
		deleted := 0
		for i, ready := range []func(api.JobInfo) bool{
			func(j api.JobInfo) bool { return len(j.Stages) > 1 && j.Stages[0].Done >= 4 },
			func(j api.JobInfo) bool { return len(j.Stages) > 1 && j.Stages[1].Running+j.Stages[1].Done > 0 },
		} {
			var info api.JobInfo
			waitFor(t, 3*time.Minute, fmt.Sprintf("%s to reach deletion point %d", id, i+1), func() bool {
				info, err = r.Job(ctx, id)
				return err == nil && (ready(info) || info.State != api.StateRunning)
			})
			if info.State != api.StateRunning {
				t.Logf("%s ended (%s) before deletion point %d", id, info.State, i+1)
				break
			}
			n := deleteShuffleFiles(t, victim)
			deleted += n
			t.Logf("%s: deletion point %d: %d shuffle files of %s deleted (map stage %d/%d done, reduce %d/%d done)",
				id, i+1, n, filepath.Base(victim), info.Stages[0].Done, info.Stages[0].Tasks, info.Stages[1].Done, info.Stages[1].Tasks)
		}
		info, err := r.Watch(ctx, id, nil)
		if err != nil {
			t.Fatalf("%s did not survive its lost shuffle files: %v", id, err)
		}
		sameCounts(t, readCounts(t, output), want)
		logs, err := r.Logs(ctx, id, "")
		if err != nil {
			t.Fatal(err)
		}
		outcomes := map[string]int{}
		for _, l := range logs {
			outcomes[l.Outcome]++
		}
		t.Logf("%s: %d shuffle files deleted; %d tasks, %d attempts; outcomes %v", id, deleted, info.Summary.Tasks, info.Summary.Attempts, outcomes)
	}
}

// deleteShuffleFiles removes the committed shuffle files (data and index)
// under an agent's state directory and returns how many it removed.
func deleteShuffleFiles(t *testing.T, root string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // a job's directory removed under us
			}
			return err
		}
		name := d.Name()
		if !d.IsDir() && strings.HasPrefix(name, "shuffle_") && (strings.HasSuffix(name, ".data") || strings.HasSuffix(name, ".index")) {
			if err := os.Remove(path); err == nil {
				n++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
