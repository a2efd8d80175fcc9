package executor

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeCgroupV2 lays out a cgroup v2 hierarchy in a directory.
func fakeCgroupV2(t *testing.T, controllers, subtree string) (mount, self string) {
	mount = t.TempDir()
	os.WriteFile(filepath.Join(mount, "cgroup.controllers"), []byte(controllers), 0o644)
	os.MkdirAll(filepath.Join(mount, "grid.slice"), 0o755)
	os.WriteFile(filepath.Join(mount, "grid.slice", "cgroup.subtree_control"), []byte(subtree), 0o644)
	self = filepath.Join(t.TempDir(), "cgroup")
	os.WriteFile(self, []byte("0::/grid.slice\n"), 0o644)
	return mount, self
}

// fakeCgroupV1 lays out cgroup v1 memory and cpu,cpuacct hierarchies.
func fakeCgroupV1(t *testing.T) (mount, self string) {
	mount = t.TempDir()
	mem := filepath.Join(mount, "memory", "agents", "a1")
	cpu := filepath.Join(mount, "cpu,cpuacct")
	os.MkdirAll(mem, 0o755)
	os.MkdirAll(cpu, 0o755)
	os.WriteFile(filepath.Join(mem, "memory.limit_in_bytes"), []byte("9223372036854771712\n"), 0o644)
	os.WriteFile(filepath.Join(cpu, "cpu.shares"), []byte("1024\n"), 0o644)
	self = filepath.Join(t.TempDir(), "cgroup")
	os.WriteFile(self, []byte("9:name=systemd:/\n4:memory:/agents/a1\n2:cpu,cpuacct:/\n0::/\n"), 0o644)
	return mount, self
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// clearCgroup removes the files the test wrote into a fake cgroup, as the
// kernel's vanish with the cgroup.
func clearCgroup(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.Remove(filepath.Join(dir, e.Name()))
	}
}

func TestCgroupsV2(t *testing.T) {
	mount, self := fakeCgroupV2(t, "cpu memory pids", "memory")
	s := findCgroups(mount, self)
	if !s.v2 || s.memParent == "" || s.cpuParent == "" || len(s.missing) > 0 {
		t.Fatalf("findCgroups = %+v", s)
	}
	parent := filepath.Join(mount, "grid.slice")
	if got := readFile(t, filepath.Join(parent, "cgroup.subtree_control")); got != "+cpu" {
		t.Errorf("subtree_control = %q, want the cpu controller enabled", got)
	}
	cg, err := s.create(4242)
	if err != nil {
		t.Fatal(err)
	}
	if err := cg.setMemory(512 << 20); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(cg.setWeight(1), cg.setQuota(2000)); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "wasmgrid-executor-4242")
	for file, want := range map[string]string{"memory.max": "536870912", "memory.swap.max": "0", "cgroup.procs": "4242", "cpu.weight": "100", "cpu.max": "200000 100000"} {
		if got := readFile(t, filepath.Join(dir, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	os.WriteFile(filepath.Join(dir, "memory.events"), []byte("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "memory.peak"), []byte("600000000\n"), 0o644)
	if killed, peak := cg.oomKilled(); !killed || peak != 600000000 {
		t.Errorf("oomKilled = %v, %d", killed, peak)
	}
	clearCgroup(dir)
	cg.remove()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("cgroup left behind: %v", err)
	}
}

func TestCgroupsV1(t *testing.T) {
	mount, self := fakeCgroupV1(t)
	s := findCgroups(mount, self)
	memParent, cpuParent := filepath.Join(mount, "memory", "agents", "a1"), filepath.Join(mount, "cpu,cpuacct")
	if s.v2 || s.memParent != memParent || s.cpuParent != cpuParent || len(s.missing) > 0 {
		t.Fatalf("findCgroups = %+v", s)
	}
	cg, err := s.create(77)
	if err != nil {
		t.Fatal(err)
	}
	if err := cg.setMemory(300 << 20); err != nil {
		t.Fatal(err)
	}
	if err := cg.setMemory(200 << 20); err != nil { // lowering
		t.Fatal(err)
	}
	if err := errors.Join(cg.setWeight(1), cg.setQuota(0)); err != nil {
		t.Fatal(err)
	}
	mem, cpu := filepath.Join(memParent, "wasmgrid-executor-77"), filepath.Join(cpuParent, "wasmgrid-executor-77")
	for file, want := range map[string]string{
		filepath.Join(mem, "memory.limit_in_bytes"):       "209715200",
		filepath.Join(mem, "memory.memsw.limit_in_bytes"): "209715200",
		filepath.Join(mem, "cgroup.procs"):                "77",
		filepath.Join(cpu, "cgroup.procs"):                "77",
		filepath.Join(cpu, "cpu.shares"):                  "1024",
		filepath.Join(cpu, "cpu.cfs_quota_us"):            "-1",
	} {
		if got := readFile(t, file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	os.WriteFile(filepath.Join(mem, "memory.oom_control"), []byte("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"), 0o644)
	if killed, _ := cg.oomKilled(); killed {
		t.Error("oomKilled without a kill")
	}
	clearCgroup(mem)
	clearCgroup(cpu)
	cg.remove()
	for _, d := range []string{mem, cpu} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("cgroup left behind: %v", err)
		}
	}
}

func TestCgroupsMissing(t *testing.T) {
	mount, self := fakeCgroupV2(t, "pids", "")
	if s := findCgroups(mount, self); s.usable() || !strings.Contains(strings.Join(s.missing, ";"), "no memory controller") {
		t.Errorf("v2 without controllers: %+v", s)
	}
	if s := findCgroups(t.TempDir(), "/nonexistent"); s.usable() || len(s.missing) == 0 {
		t.Errorf("no cgroups: %+v", s)
	}
	// v1 with the hierarchies not mounted.
	_, self = fakeCgroupV1(t)
	if s := findCgroups(t.TempDir(), self); s.usable() || len(s.missing) != 2 {
		t.Errorf("v1 unmounted: %+v", s)
	}
}

// TestCgroupsSweep removes the cgroups of executors that are gone.
func TestCgroupsSweep(t *testing.T) {
	mount, self := fakeCgroupV1(t)
	s := findCgroups(mount, self)
	gone, live := filepath.Join(s.memParent, "wasmgrid-executor-999999999"), filepath.Join(s.memParent, "wasmgrid-executor-"+strconv.Itoa(os.Getpid()))
	os.Mkdir(gone, 0o755)
	os.Mkdir(live, 0o755)
	s.sweep()
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Errorf("the cgroup of a dead executor is left: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the cgroup of a live process is gone: %v", err)
	}
}

// TestCgroupsOfThisMachine makes an executor's cgroups in the machine's
// own hierarchy, where this process may, around a child process.
func TestCgroupsOfThisMachine(t *testing.T) {
	s := findCgroups(cgroupMount, "/proc/self/cgroup")
	if !s.usable() {
		t.Skipf("no cgroups to make here: %s", strings.Join(s.missing, "; "))
	}
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		t.Skip(err)
	}
	defer child.Wait()
	defer child.Process.Kill()
	cg, err := s.create(child.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := cg.setMemory(256 << 20); err != nil {
		t.Error(err)
	}
	if err := cg.setMemory(128 << 20); err != nil {
		t.Error(err)
	}
	if err := errors.Join(cg.setWeight(1), cg.setQuota(1500)); err != nil {
		t.Error(err)
	}
	if cg.memDir != "" {
		file := "memory.limit_in_bytes"
		if cg.v2 {
			file = "memory.max"
		}
		if got := strings.TrimSpace(readFile(t, filepath.Join(cg.memDir, file))); got != "134217728" {
			t.Errorf("%s = %s", file, got)
		}
	}
	if cg.cpuDir != "" && !cg.v2 {
		if got := strings.TrimSpace(readFile(t, filepath.Join(cg.cpuDir, "cpu.cfs_quota_us"))); got != "150000" {
			t.Errorf("cpu.cfs_quota_us = %s", got)
		}
	}
	t.Logf("v2 %v, memory %s, cpu %s", cg.v2, cg.memDir, cg.cpuDir)
	child.Process.Kill()
	child.Wait()
	cg.remove()
	for _, d := range []string{cg.memDir, cg.cpuDir} {
		if d == "" {
			continue
		}
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left behind: %v", d, err)
		}
	}
}
