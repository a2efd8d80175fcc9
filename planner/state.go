package planner

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// SchedulerState is a Scheduler's state as plain data: what a replicated
// coordinator writes into its snapshots and gives back to RestoreScheduler
// with the same plan. Restoring it gives a Scheduler that behaves exactly
// as the one it was taken from.
type SchedulerState struct {
	Tasks   [][]TaskState           `json:"tasks"` // [stage][partition]
	Outputs map[int][]*MapOutputLoc `json:"outputs,omitempty"`
	Losses  map[int]map[int]int     `json:"losses,omitempty"` // shuffle ID -> map index -> fetch failures
	Err     string                  `json:"err,omitempty"`
	Samples map[string][][]byte     `json:"samples,omitempty"` // by TaskKey.String()
	Bounds  map[int][][]byte        `json:"bounds,omitempty"`
}

// TaskState is one task's state in a SchedulerState.
type TaskState struct {
	State    int    `json:"state"` // 0 pending, 1 running, 2 done
	Attempt  int    `json:"attempt"`
	Failures int    `json:"failures,omitempty"`
	Agent    string `json:"agent,omitempty"`
	Avoid    string `json:"avoid,omitempty"`
}

// State returns the scheduler's state; it shares nothing with s.
func (s *Scheduler) State() SchedulerState {
	st := SchedulerState{Losses: map[int]map[int]int{}, Outputs: map[int][]*MapOutputLoc{}, Samples: map[string][][]byte{}, Bounds: map[int][][]byte{}}
	if s.err != nil {
		st.Err = s.err.Error()
	}
	for _, ts := range s.tasks {
		row := make([]TaskState, len(ts))
		for i, t := range ts {
			row[i] = TaskState{State: int(t.state), Attempt: t.attempt, Failures: t.failures, Agent: t.agent, Avoid: t.avoid}
		}
		st.Tasks = append(st.Tasks, row)
	}
	for id, outs := range s.outputs {
		c := make([]*MapOutputLoc, len(outs))
		for i, o := range outs {
			if o != nil {
				x := *o
				c[i] = &x
			}
		}
		st.Outputs[id] = c
	}
	for id, m := range s.losses {
		st.Losses[id] = maps.Clone(m)
	}
	for k, v := range s.samples {
		st.Samples[k.String()] = cloneKeys(v)
	}
	for id, b := range s.bounds {
		st.Bounds[id] = cloneKeys(b)
	}
	return st
}

func cloneKeys(ks [][]byte) [][]byte {
	out := make([][]byte, len(ks))
	for i, k := range ks {
		out[i] = slices.Clone(k)
	}
	return out
}

// RestoreScheduler rebuilds a Scheduler of plan from a state that State
// returned for the same plan. A state that does not fit the plan is an
// error naming what differs.
func RestoreScheduler(plan *Plan, cfg Config, st SchedulerState) (*Scheduler, error) {
	s := NewScheduler(plan, cfg)
	if len(st.Tasks) != len(s.tasks) {
		return nil, fmt.Errorf("planner: restore: the state has %d stages, the plan %d", len(st.Tasks), len(s.tasks))
	}
	for sid, row := range st.Tasks {
		if len(row) != len(s.tasks[sid]) {
			return nil, fmt.Errorf("planner: restore: stage %d has %d tasks in the state, %d in the plan", sid, len(row), len(s.tasks[sid]))
		}
		for p, t := range row {
			if t.State < int(pending) || t.State > int(done) {
				return nil, fmt.Errorf("planner: restore: task %d.%d has state %d", sid, p, t.State)
			}
			s.tasks[sid][p] = taskState{state: partState(t.State), attempt: t.Attempt, failures: t.Failures, agent: t.Agent, avoid: t.Avoid}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(st.Outputs)) {
		outs, ok := s.outputs[id]
		if !ok || len(outs) != len(st.Outputs[id]) {
			return nil, fmt.Errorf("planner: restore: shuffle %d has %d map outputs in the state, the plan has %d", id, len(st.Outputs[id]), len(outs))
		}
		for i, o := range st.Outputs[id] {
			if o != nil {
				x := *o
				outs[i] = &x
			}
		}
	}
	for k, v := range st.Samples {
		var key TaskKey
		if _, err := fmt.Sscanf(k, "%d.%d", &key.Stage, &key.Partition); err != nil {
			return nil, fmt.Errorf("planner: restore: sample key %q: %w", k, err)
		}
		s.samples[key] = cloneKeys(v)
	}
	for id, b := range st.Bounds {
		s.bounds[id] = cloneKeys(b)
	}
	for id, m := range st.Losses {
		if _, ok := s.outputs[id]; !ok {
			return nil, fmt.Errorf("planner: restore: the state counts losses of shuffle %d, which the plan lacks", id)
		}
		s.losses[id] = maps.Clone(m)
	}
	if st.Err != "" {
		s.err = errors.New(st.Err)
	}
	return s, nil
}
