package core

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/wasmgrid/wasmgrid/planner"
)

// snapshotVersion is the format of Snapshot's bytes; Restore refuses
// another.
const snapshotVersion = 1

type snapshotDoc struct {
	Version int   `json:"version"`
	State   state `json:"state"`
}

// Snapshot returns the whole state as bytes.
func (c *Core) Snapshot() ([]byte, error) {
	for _, j := range c.st.Jobs {
		j.Sched = j.sched.State()
	}
	b, err := json.Marshal(snapshotDoc{Version: snapshotVersion, State: c.st})
	for _, j := range c.st.Jobs {
		j.Sched = planner.SchedulerState{}
	}
	if err != nil {
		return nil, fmt.Errorf("core: snapshot: %w", err)
	}
	return b, nil
}

// Restore returns a Core in the state a Snapshot holds. cfg must be the
// configuration of the core that took it.
func Restore(cfg Config, snapshot []byte) (*Core, error) {
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	var doc snapshotDoc
	if err := json.Unmarshal(snapshot, &doc); err != nil {
		return nil, fmt.Errorf("core: restore: the snapshot does not decode: %w", err)
	}
	if doc.Version != snapshotVersion {
		return nil, fmt.Errorf("core: restore: snapshot format %d, this build reads %d: run the release that wrote it", doc.Version, snapshotVersion)
	}
	st := doc.State
	if st.Agents == nil {
		st.Agents = map[string]*Agent{}
	}
	if st.Jobs == nil {
		st.Jobs = map[string]*Job{}
	}
	if st.Usage == nil {
		st.Usage = map[string]*Usage{}
	}
	for _, id := range slices.Sorted(maps.Keys(st.Jobs)) {
		j := st.Jobs[id]
		if j.plan, err = buildPlan(j.Logical); err != nil {
			return nil, fmt.Errorf("core: restore: job %s: its plan does not build: %w", id, err)
		}
		if j.sched, err = planner.RestoreScheduler(j.plan, planner.Config{MaxAttempts: j.MaxAttempts}, j.Sched); err != nil {
			return nil, fmt.Errorf("core: restore: job %s: %w", id, err)
		}
		j.Sched = planner.SchedulerState{}
		if j.Running == nil {
			j.Running = map[string]*Launched{}
		}
	}
	c.st = st
	return c, nil
}
