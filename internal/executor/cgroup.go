package executor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Cgroups give each executor a memory limit that the kernel enforces (its
// OOM killer ends the executor, never the agent) and a CPU weight and
// quota. An executor's cgroups are children of the agent's own, named
// wasmgrid-executor-PID, so that the machine's accounting of the agent
// includes them. Both hierarchies are supported: cgroup v2 where its
// memory and cpu controllers are delegated to the agent's cgroup, cgroup
// v1 where the memory and cpu hierarchies are mounted and writable (as
// root, typically). Where neither is, executors run without cgroups, and
// the agent's RSS watchdog (Pool) is the only memory limit.

// cgroupMount is where cgroups are mounted: the v2 hierarchy itself, or a
// directory of v1 hierarchies named by controller.
const cgroupMount = "/sys/fs/cgroup"

// cgroupPrefix names the cgroups of executors: wasmgrid-executor-PID.
const cgroupPrefix = "wasmgrid-executor-"

// cgroupSetup is where an agent may make its executors' cgroups.
type cgroupSetup struct {
	v2        bool
	memParent string // the directory to make memory cgroups in; "" if none
	cpuParent string // the same for cpu; equal to memParent on v2
	// missing says why a controller is unavailable, for the agent's log.
	missing []string
}

// findCgroups looks for writable memory and cpu cgroups above this process:
// mount is where cgroups are mounted, self is /proc/self/cgroup.
func findCgroups(mount, self string) cgroupSetup {
	lines, err := readCgroupFile(self)
	if err != nil {
		return cgroupSetup{missing: []string{fmt.Sprintf("cannot read %s: %v", self, err)}}
	}
	if _, err := os.Stat(filepath.Join(mount, "cgroup.controllers")); err == nil {
		return findCgroupsV2(mount, lines)
	}
	var s cgroupSetup
	for _, c := range []struct {
		controller, file string
		parent           *string
	}{{"memory", "memory.limit_in_bytes", &s.memParent}, {"cpu", "cpu.shares", &s.cpuParent}} {
		dir, err := v1Dir(mount, lines, c.controller)
		if err == nil {
			_, err = os.Stat(filepath.Join(dir, c.file))
		}
		if err != nil {
			s.missing = append(s.missing, fmt.Sprintf("no cgroup v1 %s controller: %v", c.controller, err))
			continue
		}
		*c.parent = dir
	}
	return s
}

// findCgroupsV2 enables the memory and cpu controllers for the children of
// this process's cgroup, where that is allowed.
func findCgroupsV2(mount string, lines []cgroupLine) cgroupSetup {
	s := cgroupSetup{v2: true}
	var own string
	for _, l := range lines {
		if l.id == "0" {
			own = l.path
		}
	}
	if own == "" {
		s.missing = []string{"this process is in no cgroup v2"}
		return s
	}
	dir := filepath.Join(mount, own)
	controllers, err := os.ReadFile(filepath.Join(mount, "cgroup.controllers"))
	if err != nil {
		s.missing = []string{err.Error()}
		return s
	}
	sub, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		s.missing = []string{err.Error()}
		return s
	}
	ok := map[string]bool{}
	for _, c := range []string{"memory", "cpu"} {
		switch {
		case !hasWord(string(controllers), c):
			s.missing = append(s.missing, fmt.Sprintf("cgroup v2 has no %s controller", c))
		case hasWord(string(sub), c):
			ok[c] = true
		default:
			// Enabling it fails where this cgroup has processes of its
			// own (cgroup v2's no-internal-processes rule): then it is
			// not ours to delegate.
			if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+c), 0o644); err != nil {
				s.missing = append(s.missing, fmt.Sprintf("enable the %s controller in %s: %v", c, dir, err))
				continue
			}
			ok[c] = true
		}
	}
	if ok["memory"] {
		s.memParent = dir
	}
	if ok["cpu"] {
		s.cpuParent = dir
	}
	return s
}

type cgroupLine struct{ id, controllers, path string }

// readCgroupFile parses /proc/PID/cgroup: "id:controllers:path" lines.
func readCgroupFile(path string) ([]cgroupLine, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []cgroupLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), ":", 3)
		if len(f) == 3 {
			out = append(out, cgroupLine{f[0], f[1], f[2]})
		}
	}
	return out, sc.Err()
}

// v1Dir is this process's cgroup directory in the v1 hierarchy that has
// controller, which may be mounted with others (cpu,cpuacct).
func v1Dir(mount string, lines []cgroupLine, controller string) (string, error) {
	for _, l := range lines {
		cs := strings.Split(l.controllers, ",")
		for _, c := range cs {
			if c != controller {
				continue
			}
			for _, m := range []string{controller, l.controllers} {
				dir := filepath.Join(mount, m, l.path)
				if _, err := os.Stat(dir); err == nil {
					return dir, nil
				}
			}
			return "", fmt.Errorf("the %s hierarchy is not mounted under %s", l.controllers, mount)
		}
	}
	return "", fmt.Errorf("this process is in no %s cgroup", controller)
}

// usable reports whether executors can have any cgroup at all.
func (s cgroupSetup) usable() bool { return s.memParent != "" || s.cpuParent != "" }

// sweep removes the cgroups of executors that no longer exist: those of an
// agent that was killed before it could remove them. A cgroup that still
// has processes cannot be removed, so another agent's are safe.
func (s cgroupSetup) sweep() {
	for _, parent := range []string{s.memParent, s.cpuParent} {
		if parent == "" {
			continue
		}
		entries, _ := os.ReadDir(parent)
		for _, e := range entries {
			pid, ok := strings.CutPrefix(e.Name(), cgroupPrefix)
			if !ok || !e.IsDir() {
				continue
			}
			if _, err := os.Stat("/proc/" + pid); errors.Is(err, fs.ErrNotExist) {
				os.Remove(filepath.Join(parent, e.Name()))
			}
		}
	}
}

// cgroup is one executor's cgroups. Its setters write only what changed;
// they are not safe for concurrent use.
type cgroup struct {
	v2     bool
	memDir string // "" without a memory cgroup
	cpuDir string // "" without a cpu cgroup; equal to memDir on v2

	memory, quota int64 // what was last set; -1 before
}

// create makes the cgroups of executor pid and moves it into them. It
// returns what it could make, and why the rest failed.
func (s cgroupSetup) create(pid int) (*cgroup, error) {
	c := &cgroup{v2: s.v2, memory: -1, quota: -1}
	name := cgroupPrefix + strconv.Itoa(pid)
	var errs []error
	mk := func(parent string) string {
		if parent == "" {
			return ""
		}
		dir := filepath.Join(parent, name)
		err := os.Mkdir(dir, 0o755)
		if errors.Is(err, fs.ErrExist) {
			// A cgroup of an executor that had this process ID before.
			os.Remove(dir)
			err = os.Mkdir(dir, 0o755)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644)
			if err != nil {
				os.Remove(dir)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cgroup %s: %w", dir, err))
			return ""
		}
		return dir
	}
	c.memDir = mk(s.memParent)
	switch {
	case s.v2 && s.cpuParent == s.memParent:
		c.cpuDir = c.memDir
	default:
		c.cpuDir = mk(s.cpuParent)
	}
	return c, errors.Join(errs...)
}

// setMemory sets the hard memory limit, with no swap.
func (c *cgroup) setMemory(limit int64) error {
	if c.memDir == "" || limit == c.memory {
		return nil
	}
	if err := c.writeMemory(limit); err != nil {
		return err
	}
	c.memory = limit
	return nil
}

func (c *cgroup) writeMemory(limit int64) error {
	v := []byte(strconv.FormatInt(limit, 10))
	if c.v2 {
		if err := c.write(c.memDir, "memory.max", v); err != nil {
			return err
		}
		_ = c.write(c.memDir, "memory.swap.max", []byte("0")) // absent without swap accounting
		return nil
	}
	// v1 keeps memory.limit_in_bytes <= memory.memsw.limit_in_bytes: raise
	// the second first, lower it last. memsw is absent without swap
	// accounting.
	cur, _ := c.readInt(c.memDir, "memory.limit_in_bytes")
	if limit > cur {
		_ = c.write(c.memDir, "memory.memsw.limit_in_bytes", v)
		return c.write(c.memDir, "memory.limit_in_bytes", v)
	}
	if err := c.write(c.memDir, "memory.limit_in_bytes", v); err != nil {
		return err // the kernel could not reclaim down to it
	}
	_ = c.write(c.memDir, "memory.memsw.limit_in_bytes", v)
	return nil
}

// cpuPeriod is the CFS period of the quota, in microseconds.
const cpuPeriod = 100000

// setWeight sets the cgroup's CPU weight: 1 is the default (1024 shares on
// v1, weight 100 on v2).
func (c *cgroup) setWeight(weight float64) error {
	if c.cpuDir == "" {
		return nil
	}
	if c.v2 {
		w := min(max(int64(weight*100), 1), 10000)
		return c.write(c.cpuDir, "cpu.weight", []byte(strconv.FormatInt(w, 10)))
	}
	shares := max(int64(weight*1024), 2)
	return errors.Join(
		c.write(c.cpuDir, "cpu.shares", []byte(strconv.FormatInt(shares, 10))),
		c.write(c.cpuDir, "cpu.cfs_period_us", []byte(strconv.Itoa(cpuPeriod))))
}

// setQuota sets the cgroup's CFS quota in millicores (0: none).
func (c *cgroup) setQuota(millis int64) error {
	if c.cpuDir == "" || millis == c.quota {
		return nil
	}
	var err error
	switch {
	case c.v2 && millis > 0:
		err = c.write(c.cpuDir, "cpu.max", []byte(strconv.FormatInt(millis*cpuPeriod/1000, 10)+" "+strconv.Itoa(cpuPeriod)))
	case c.v2:
		err = c.write(c.cpuDir, "cpu.max", []byte("max "+strconv.Itoa(cpuPeriod)))
	case millis > 0:
		err = c.write(c.cpuDir, "cpu.cfs_quota_us", []byte(strconv.FormatInt(millis*cpuPeriod/1000, 10)))
	default:
		err = c.write(c.cpuDir, "cpu.cfs_quota_us", []byte("-1"))
	}
	if err == nil {
		c.quota = millis
	}
	return err
}

// oomKilled reports whether the kernel's OOM killer struck in the cgroup,
// and the most memory it held (0 if unknown).
func (c *cgroup) oomKilled() (killed bool, peak int64) {
	if c.memDir == "" {
		return false, 0
	}
	file, peakFile := "memory.oom_control", "memory.max_usage_in_bytes"
	if c.v2 {
		file, peakFile = "memory.events", "memory.peak"
	}
	b, err := os.ReadFile(filepath.Join(c.memDir, file))
	if err != nil {
		return false, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if n, ok := strings.CutPrefix(line, "oom_kill "); ok {
			if v, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64); err == nil && v > 0 {
				killed = true
			}
		}
	}
	peak, _ = c.readInt(c.memDir, peakFile)
	return killed, peak
}

// remove deletes the cgroups; their process must have exited.
func (c *cgroup) remove() {
	for _, d := range []string{c.memDir, c.cpuDir} {
		if d != "" {
			os.Remove(d)
		}
	}
}

func (c *cgroup) write(dir, file string, v []byte) error {
	if err := os.WriteFile(filepath.Join(dir, file), v, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}

func (c *cgroup) readInt(dir, file string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

// LimitMemory caps a process's memory with a cgroup of its own where the
// machine allows one (v2 delegated, or v1 writable): a hard limit that the
// kernel enforces by killing that process alone. It returns a function
// that removes the cgroup once the process has exited, or an error saying
// why there is none (the process then has only its Go memory limit). The
// coordinator's inspectors use it; an agent's executors get theirs from
// their Pool.
func LimitMemory(pid int, bytes int64) (cleanup func(), err error) {
	s := findCgroups(cgroupMount, "/proc/self/cgroup")
	if s.memParent == "" {
		return nil, fmt.Errorf("no memory cgroup: %s", strings.Join(s.missing, "; "))
	}
	s.cpuParent = "" // memory only
	c, err := s.create(pid)
	if err == nil {
		err = c.setMemory(bytes)
	}
	if err != nil {
		if c != nil {
			c.remove()
		}
		return nil, err
	}
	return c.remove, nil
}
