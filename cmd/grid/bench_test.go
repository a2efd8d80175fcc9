package main

import (
	"encoding/json"
	"testing"
)

// TestBenchTasks runs a small bench tasks and checks that what it reports
// was measured: every figure comes from tasks that ran.
func TestBenchTasks(t *testing.T) {
	code, stdout, stderr := run(t, "bench", "tasks", "--tasks", "20", "--jobs", "3", "--slots", "2",
		"--module-dir", abs(t, "examples/wordcount/guest/c"), "-o", "json", "--log-level", "warn")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if rep.Tasks != 20 || rep.Jobs != 3 || rep.TasksPerSecond <= 0 || rep.JobsPerSecond <= 0 {
		t.Errorf("report %+v", rep)
	}
	for name, q := range map[string]benchQuantiles{"launch_to_start": rep.LaunchToStart, "launch_to_report": rep.LaunchToReport,
		"submit_to_start": rep.SubmitToStart, "submit_to_result": rep.SubmitToResult} {
		if q.P50 <= 0 || q.P99 < q.P50 {
			t.Errorf("%s: %+v, want 0 < p50 <= p99", name, q)
		}
	}
	if rep.SubmitToStart.P50 > rep.SubmitToResult.P50 {
		t.Errorf("a task started after its result came back: %+v", rep)
	}
}

func TestBenchTasksUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "tasks", "--tasks", "0"},
		{"bench", "tasks", "--guest", "cobol", "--jobs", "1"},
	} {
		if code, _, stderr := run(t, args...); code == 0 || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}
