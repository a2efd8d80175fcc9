package allocator

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// genScenario makes a cluster of one to three groups of identical agents
// and two to five tenants of weight 1 with random tasks and demands.
func genScenario(r *rand.Rand, pooled bool) Scenario {
	var s Scenario
	groups := 1 + r.IntN(3)
	if pooled {
		groups = 1
	}
	for range groups {
		count := 1 + r.IntN(20)
		if pooled {
			count = 1
		}
		s.Agents = append(s.Agents, AgentSpec{
			Count: count,
			Total: Resources{CPU: cpus(int64(4 + r.IntN(29))), Mem: gib(int64(8 + r.IntN(121)))},
		})
	}
	for i := range 2 + r.IntN(4) {
		tasks := 0
		if r.IntN(3) > 0 {
			tasks = 1 + r.IntN(200)
		}
		s.Tenants = append(s.Tenants, TenantSpec{
			Name:  fmt.Sprintf("t%d", i),
			Task:  Resources{CPU: int64(100 * (1 + r.IntN(20))), Mem: int64(256 * (1 + r.IntN(16)))},
			Tasks: tasks,
		})
	}
	return s
}

// fits is how many tasks of size task fit in r, pooled.
func fits(r, task Resources) int {
	n := math.MaxInt
	for _, p := range [][2]int64{{r.CPU, task.CPU}, {r.Mem, task.Mem}, {r.Disk, task.Disk}} {
		if p[1] > 0 {
			n = min(n, int(p[0]/p[1]))
		}
	}
	return n
}

func demand(t TenantSpec) int {
	if t.Tasks == 0 {
		return math.MaxInt
	}
	return t.Tasks
}

// TestPropertiesDRF checks DRF's properties on generated clusters. On one
// agent it asserts sharing incentive (within the one-task margins of
// indivisible tasks) and envy-freeness up to one task (EF1), as DRF
// promises. On many agents, placement breaks both (a tenant whose big
// task no longer fits on any one agent stops while smaller tasks keep
// filling holes; no allocator can avoid it), so the test logs how often
// and by how much, and asserts Pareto efficiency and conservation on
// every cluster; TestPropertyOffersFollowDRF asserts the rule itself
// offer by offer.
func TestPropertiesDRF(t *testing.T) {
	t.Run("one agent", func(t *testing.T) { checkDRFProperties(t, true) })
	t.Run("many agents", func(t *testing.T) { checkDRFProperties(t, false) })
}

func checkDRFProperties(t *testing.T, pooled bool) {
	// Misses by more than one task that the discrete margins allow.
	var soft, worst, envy, worstEnvy int
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 42))
		s := genScenario(r, pooled)
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		where := make([]map[AgentID]int, len(s.Tenants))
		for i := range where {
			where[i] = map[AgentID]int{}
		}
		al, res := simulate(s, func(i int, ag AgentID) { where[i][ag]++ })
		checkConservation(t, al)
		n := len(s.Tenants)
		for i, tr := range res.Tenants {
			spec := s.Tenants[i]
			if tr.Alloc != (Resources{CPU: spec.Task.CPU * int64(tr.Tasks), Mem: spec.Task.Mem * int64(tr.Tasks)}) || tr.Tasks > demand(spec) {
				t.Fatalf("seed %d: %s placed %d tasks holding %v", seed, tr.Name, tr.Tasks, tr.Alloc)
			}
			// Pareto efficiency: a tenant that wants more fits nowhere.
			if tr.Tasks < demand(spec) {
				for _, ag := range al.agents {
					if ag.free().Contains(spec.Task) {
						t.Fatalf("seed %d: %s wants more and its task %v fits in %s (free %v)", seed, tr.Name, spec.Task, ag.id, ag.free())
					}
				}
			}
			// Sharing incentive: at least a 1/n split of every agent,
			// within one task. Discrete DRF stops a tenant when its task
			// no longer fits while the last tenant served may be one of
			// its own tasks ahead, so the margin is this tenant's task
			// plus the largest task, in dominant-share terms.
			split := 0
			for _, g := range s.Agents {
				part := Resources{CPU: g.Total.CPU / int64(n), Mem: g.Total.Mem / int64(n)}
				split += g.Count * fits(part, spec.Task)
			}
			if want := min(demand(spec), split); tr.Tasks < want-1 {
				own := spec.Task.DominantShare(al.Total())
				wantShare := float64(want) * own
				if pooled && tr.DominantShare < wantShare-own-maxTask(s, al.Total())-1e-9 {
					t.Errorf("seed %d: %s placed %d tasks (share %.3f), a 1/%d split gives %d (share %.3f)", seed, tr.Name, tr.Tasks, tr.DominantShare, n, want, wantShare)
				} else {
					soft++
					worst = max(worst, want-tr.Tasks)
				}
			}
			// Envy-freeness up to one task (EF1, the discrete form of
			// DRF's envy-freeness): no other tenant's allocation less one
			// of its tasks would run more of this tenant's tasks than it
			// has. Tasks are indivisible, so a tenant whose last task
			// jumped past this one's share is envied by up to one task.
			for j, other := range res.Tenants {
				if j == i || tr.Tasks >= demand(spec) || other.Tasks == 0 {
					continue
				}
				less := other.Alloc.Sub(s.Tenants[j].Task)
				if pooled {
					if min(fits(less, spec.Task), demand(spec)) > tr.Tasks {
						t.Errorf("seed %d: %s (task %v) holds %v in %d tasks; %s's %v less one task %v runs %d of them",
							seed, tr.Name, spec.Task, tr.Alloc, tr.Tasks, other.Name, other.Alloc, s.Tenants[j].Task, fits(less, spec.Task))
					}
					continue
				}
				// On many agents a task must fit on one agent, and each
				// agent fills task by task: count what j's tasks on each
				// agent, less one, would make room for.
				run := 0
				for _, n := range where[j] {
					on := Resources{CPU: s.Tenants[j].Task.CPU * int64(n-1), Mem: s.Tenants[j].Task.Mem * int64(n-1)}
					run += fits(on, spec.Task)
				}
				if run := min(run, demand(spec)); run > tr.Tasks {
					envy++
					worstEnvy = max(worstEnvy, run-tr.Tasks)
				}
			}
		}
	}
	t.Logf("sharing incentive missed by more than one task %d times, by up to %d tasks", soft, worst)
	t.Logf("envy up to one task (another's bundle less one of its tasks runs more of mine) %d times, by up to %d tasks", envy, worstEnvy)
}

// TestPropertyStrategyProof checks that a tenant that asks for bigger
// tasks than it needs places no more real tasks than it does by telling
// the truth.
func TestPropertyStrategyProof(t *testing.T) {
	var pooledGain, worst int
	defer func() {
		t.Logf("inflated allocation, pooled, holds more than one more real task than the truth places: %d of 200 times, by up to %d", pooledGain, worst)
	}()
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 7))
		s := genScenario(r, seed%2 == 0)
		truth := Simulate(s)
		liar := r.IntN(len(s.Tenants))
		task := s.Tenants[liar].Task
		lie := s
		lie.Tenants = append([]TenantSpec(nil), s.Tenants...)
		lie.Tenants[liar].Task = Resources{
			CPU: task.CPU + int64(r.IntN(3))*task.CPU/2,
			Mem: task.Mem + int64(1+r.IntN(3))*task.Mem/2,
		}
		lied := Simulate(lie)
		want := truth.Tenants[liar].Tasks
		if got := lied.Tenants[liar].Tasks; got > want {
			t.Errorf("seed %d: %s places %d inflated tasks, %d when truthful", seed, s.Tenants[liar].Name, got, want)
		}
		// With its inflated allocation it could pack this many real
		// tasks, up to what it wants.
		if got := min(fits(lied.Tenants[liar].Alloc, task), demand(s.Tenants[liar])); got > want+1 {
			pooledGain++
			worst = max(worst, got-want)
		}
	}
}

// maxTask is the largest dominant share of one task of any tenant.
func maxTask(s Scenario, total Resources) float64 {
	m := 0.0
	for _, t := range s.Tenants {
		m = max(m, t.Task.DominantShare(total))
	}
	return m
}
