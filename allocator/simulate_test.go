package allocator

import (
	"math"
	"testing"
)

var (
	cpus = func(n int64) int64 { return n * 1000 }
	gib  = func(n int64) int64 { return n * 1024 }
)

func TestSimulate(t *testing.T) {
	drfAgent := AgentSpec{Count: 1, Total: Resources{CPU: cpus(9), Mem: gib(18)}}
	taskA := Resources{CPU: cpus(1), Mem: gib(4)}
	taskB := Resources{CPU: cpus(3), Mem: gib(1)}
	tests := []struct {
		name  string
		s     Scenario
		tasks map[string]int
		check func(t *testing.T, r Result)
	}{
		{
			name: "drf paper",
			s: Scenario{Agents: []AgentSpec{drfAgent}, Tenants: []TenantSpec{
				{Name: "A", Task: taskA}, {Name: "B", Task: taskB},
			}},
			tasks: map[string]int{"A": 3, "B": 2},
			check: func(t *testing.T, r Result) {
				for _, tr := range r.Tenants {
					if math.Abs(tr.DominantShare-2.0/3) > 1e-9 {
						t.Errorf("%s dominant share %v, want 2/3", tr.Name, tr.DominantShare)
					}
				}
			},
		},
		{
			name: "drf paper, bounded demand",
			s: Scenario{Agents: []AgentSpec{drfAgent}, Tenants: []TenantSpec{
				{Name: "A", Task: taskA, Tasks: 1}, {Name: "B", Task: taskB},
			}},
			tasks: map[string]int{"A": 1, "B": 2},
		},
		{
			name: "weights 3:1",
			s: Scenario{Agents: []AgentSpec{{Count: 10, Total: Resources{CPU: cpus(8), Mem: gib(32)}}}, Tenants: []TenantSpec{
				{Name: "heavy", Weight: 3, Task: Resources{CPU: cpus(1), Mem: gib(1)}},
				{Name: "light", Weight: 1, Task: Resources{CPU: cpus(1), Mem: gib(1)}},
			}},
			tasks: map[string]int{"heavy": 60, "light": 20},
		},
		{
			name: "guarantee first",
			s: Scenario{Agents: []AgentSpec{{Count: 4, Total: Resources{CPU: cpus(4), Mem: gib(8)}}}, Tenants: []TenantSpec{
				{Name: "big", Weight: 10, Task: Resources{CPU: cpus(1), Mem: gib(1)}},
				{Name: "q", Task: Resources{CPU: cpus(1), Mem: gib(1)}, Quota: Quota{Guarantee: Resources{CPU: cpus(6)}}},
			}},
			tasks: map[string]int{"big": 10, "q": 6},
		},
		{
			name: "limit never passed",
			s: Scenario{Agents: []AgentSpec{{Count: 4, Total: Resources{CPU: cpus(4), Mem: gib(8)}}}, Tenants: []TenantSpec{
				{Name: "capped", Weight: 10, Task: Resources{CPU: cpus(1), Mem: gib(1)}, Quota: Quota{Limit: Resources{CPU: cpus(3)}}},
				{Name: "other", Task: Resources{CPU: cpus(1), Mem: gib(1)}},
			}},
			tasks: map[string]int{"capped": 3, "other": 13},
		},
		{
			name: "reservations only for their tenant",
			s: Scenario{Agents: []AgentSpec{
				{Count: 2, Total: Resources{CPU: cpus(4), Mem: gib(4)}, Reservations: map[string]Resources{"r": {CPU: cpus(4), Mem: gib(4)}}},
				{Count: 1, Total: Resources{CPU: cpus(4), Mem: gib(4)}},
			}, Tenants: []TenantSpec{
				{Name: "greedy", Weight: 100, Task: Resources{CPU: cpus(1), Mem: gib(1)}},
				{Name: "r", Task: Resources{CPU: cpus(1), Mem: gib(1)}, Tasks: 3},
			}},
			tasks: map[string]int{"greedy": 4, "r": 3},
		},
		{
			name: "reservation plus fair share",
			s: Scenario{Agents: []AgentSpec{
				{Count: 2, Total: Resources{CPU: cpus(4), Mem: gib(4)}, Reservations: map[string]Resources{"r": {CPU: cpus(2), Mem: gib(2)}}},
			}, Tenants: []TenantSpec{
				{Name: "other", Task: Resources{CPU: cpus(1), Mem: gib(1)}},
				{Name: "r", Task: Resources{CPU: cpus(1), Mem: gib(1)}},
			}},
			// r's 4 reserved cpus count in its share, so other gets
			// all 4 unreserved ones.
			tasks: map[string]int{"other": 4, "r": 4},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.s.Validate(); err != nil {
				t.Fatal(err)
			}
			r := Simulate(tt.s)
			for _, tr := range r.Tenants {
				if tr.Tasks != tt.tasks[tr.Name] {
					t.Errorf("%s placed %d tasks, want %d (result %+v)", tr.Name, tr.Tasks, tt.tasks[tr.Name], r)
				}
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}
