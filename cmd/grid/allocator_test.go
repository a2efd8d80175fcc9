package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAllocatorSimulateDRFPaper runs the DRF paper's example through the
// command, as an operator would.
func TestAllocatorSimulateDRFPaper(t *testing.T) {
	code, stdout, stderr := run(t, "allocator", "simulate", abs(t, "examples/allocator/drf-paper.toml"), "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var out struct {
		Tenants []struct {
			Name          string  `json:"name"`
			Tasks         int     `json:"tasks"`
			CPUs          float64 `json:"cpus"`
			MemMiB        int64   `json:"mem_mib"`
			DominantShare float64 `json:"dominant_share"`
		} `json:"tenants"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	want := map[string]struct {
		tasks int
		cpus  float64
		mem   int64
	}{"A": {3, 3, 12 << 10}, "B": {2, 6, 2 << 10}}
	if len(out.Tenants) != 2 {
		t.Fatalf("tenants %+v", out.Tenants)
	}
	for _, tn := range out.Tenants {
		w := want[tn.Name]
		if tn.Tasks != w.tasks || tn.CPUs != w.cpus || tn.MemMiB != w.mem || math.Abs(tn.DominantShare-2.0/3) > 1e-9 {
			t.Errorf("tenant %+v, want %d tasks, %g cpus, %d MiB, share 2/3", tn, w.tasks, w.cpus, w.mem)
		}
	}
	code, stdout, _ = run(t, "allocator", "simulate", abs(t, "examples/allocator/drf-paper.toml"))
	if code != 0 || !strings.Contains(stdout, "DOMINANT SHARE") || !strings.Contains(stdout, "0.6667") {
		t.Fatalf("table output:\n%s", stdout)
	}
}

func TestAllocatorSimulateBadScenario(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, text, want string
	}{
		{"typo", "[[agents]]\ncpus = 1\nmem = \"1GiB\"\n[[tenants]]\nname = \"A\"\ntask = { cpus = 1 }\nwieght = 2\n", "wieght"},
		{"no tenants", "[[agents]]\ncpus = 1\n", "at least one"},
		{"bad size", "[[agents]]\ncpus = 1\nmem = \"lots\"\n[[tenants]]\nname = \"A\"\ntask = { cpus = 1 }\n", "agents[0]: mem"},
		{"unknown tenant in reservation", "[[agents]]\ncpus = 2\n[[agents.reservations]]\ntenant = \"Z\"\ncpus = 1\n[[tenants]]\nname = \"A\"\ntask = { cpus = 1 }\n", `tenant "Z"`},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".toml")
		os.WriteFile(path, []byte(tt.text), 0o644)
		code, _, stderr := run(t, "allocator", "simulate", path)
		if code == 0 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%s: exit %d, stderr %q, want %q", tt.name, code, stderr, tt.want)
		}
	}
}
