package executor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeCgroup lays out a cgroup v2 hierarchy in a directory.
func fakeCgroup(t *testing.T, controllers, subtree string) (root, self string) {
	root = t.TempDir()
	os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte(controllers), 0o644)
	os.MkdirAll(filepath.Join(root, "grid.slice"), 0o755)
	os.WriteFile(filepath.Join(root, "grid.slice", "cgroup.subtree_control"), []byte(subtree), 0o644)
	self = filepath.Join(t.TempDir(), "cgroup")
	os.WriteFile(self, []byte("0::/grid.slice\n"), 0o644)
	return root, self
}

func TestLimitMemoryWritesACgroup(t *testing.T) {
	root, self := fakeCgroup(t, "cpu memory pids", "memory")
	cleanup, err := limitMemory(root, self, 4242, 512<<20)
	if err != nil {
		t.Fatal(err)
	}
	cg := filepath.Join(root, "grid.slice", "wasmgrid-executor-4242")
	for file, want := range map[string]string{"memory.max": "536870912", "memory.swap.max": "0", "cgroup.procs": "4242"} {
		b, err := os.ReadFile(filepath.Join(cg, file))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", file, b, err, want)
		}
	}
	for _, f := range []string{"memory.max", "memory.swap.max", "cgroup.procs"} {
		os.Remove(filepath.Join(cg, f)) // the kernel's files vanish with the cgroup
	}
	cleanup()
	if _, err := os.Stat(cg); !os.IsNotExist(err) {
		t.Fatalf("cgroup left behind: %v", err)
	}
}

func TestLimitMemoryFallsBack(t *testing.T) {
	tests := []struct {
		name, controllers, want string
	}{
		{"no memory controller", "cpu pids", "no memory controller"},
	}
	for _, tt := range tests {
		root, self := fakeCgroup(t, tt.controllers, "")
		if _, err := limitMemory(root, self, 1, 1); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := limitMemory(t.TempDir(), "/nonexistent", 1, 1); err == nil || !strings.Contains(err.Error(), "no cgroup v2") {
		t.Errorf("without cgroup v2: %v", err)
	}
}
