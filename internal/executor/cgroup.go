package executor

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroupRoot is where cgroup v2 is mounted.
const cgroupRoot = "/sys/fs/cgroup"

// LimitMemory caps an executor process's memory with a cgroup v2 of its
// own (memory.max, with swap off), below the cgroup of this process, where
// the machine allows it: a hard limit that the kernel enforces by killing the
// executor, never the agent. It returns how the limit is enforced and a
// function that removes the cgroup once the process has exited. Where cgroup
// v2 with the memory controller is not delegated to this process, it
// returns an error, and the executor relies on the Go runtime's memory
// limit that its Config sets.
func LimitMemory(pid int, bytes int64) (cleanup func(), err error) {
	return limitMemory(cgroupRoot, "/proc/self/cgroup", pid, bytes)
}

func limitMemory(root, selfCgroup string, pid int, bytes int64) (func(), error) {
	controllers, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("no cgroup v2 at %s: %w", root, err)
	}
	if !hasWord(string(controllers), "memory") {
		return nil, errors.New("cgroup v2 has no memory controller")
	}
	parent, err := ownCgroup(selfCgroup)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, parent)
	sub, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return nil, err
	}
	if !hasWord(string(sub), "memory") {
		// Enabling it fails where this cgroup has processes of its own
		// (cgroup v2's no-internal-processes rule): then it is not ours to
		// delegate.
		if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory"), 0o644); err != nil {
			return nil, fmt.Errorf("enable the memory controller in %s: %w", dir, err)
		}
	}
	cg := filepath.Join(dir, fmt.Sprintf("wasmgrid-executor-%d", pid))
	if err := os.Mkdir(cg, 0o755); err != nil {
		return nil, err
	}
	cleanup := func() { os.Remove(cg) }
	for _, f := range []struct{ name, value string }{
		{"memory.max", strconv.FormatInt(bytes, 10)},
		{"memory.swap.max", "0"},
		{"cgroup.procs", strconv.Itoa(pid)},
	} {
		err := os.WriteFile(filepath.Join(cg, f.name), []byte(f.value), 0o644)
		if err != nil && f.name != "memory.swap.max" { // no swap accounting is fine
			cleanup()
			return nil, fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	return cleanup, nil
}

// ownCgroup reads this process's cgroup v2 path from /proc/self/cgroup.
func ownCgroup(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			return rest, nil
		}
	}
	return "", errors.New("this process is in no cgroup v2")
}

func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}
