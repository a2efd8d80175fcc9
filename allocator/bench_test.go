package allocator

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkAllocate measures one offer cycle with every agent free: each
// tenant has one framework, and all offers are declined (untimed) between
// cycles.
func BenchmarkAllocate(b *testing.B) {
	for _, agents := range []int{1000, 10000, 50000} {
		for _, tenants := range []int{100, 1000} {
			b.Run(fmt.Sprintf("agents=%d/tenants=%d", agents, tenants), func(b *testing.B) {
				a := New()
				for i := range agents {
					if err := a.AddAgent(AgentID(fmt.Sprintf("a%08d", i)), Resources{CPU: 16000, Mem: 65536, Disk: 1 << 20}); err != nil {
						b.Fatal(err)
					}
				}
				for i := range tenants {
					if err := a.AddFramework(FrameworkID(fmt.Sprintf("f%05d", i)), fmt.Sprintf("t%05d", i)); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportAllocs()
				for b.Loop() {
					offers := a.Allocate()
					if len(offers) != agents {
						b.Fatalf("%d offers", len(offers))
					}
					b.StopTimer()
					declineAll(a, offers)
					b.StartTimer()
				}
			})
		}
	}
}

// BenchmarkSimulate places 1,000,000 tasks of 100 tenants on 50,000
// agents.
func BenchmarkSimulate(b *testing.B) {
	const agents, tenants, tasks = 50000, 100, 1000000
	s := Scenario{Agents: []AgentSpec{{Count: agents, Total: Resources{CPU: 32000, Mem: 131072}}}}
	for i := range tenants {
		s.Tenants = append(s.Tenants, TenantSpec{
			Name:  fmt.Sprintf("t%03d", i),
			Task:  Resources{CPU: 500 + int64(i%4)*250, Mem: 1024 + int64(i%3)*1024},
			Tasks: tasks / tenants,
		})
	}
	b.ReportAllocs()
	for b.Loop() {
		r := Simulate(s)
		placed := 0
		for _, t := range r.Tenants {
			placed += t.Tasks
		}
		if placed != tasks {
			b.Fatalf("placed %d tasks", placed)
		}
	}
	b.ReportMetric(float64(tasks)*float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkEvents measures single events on a cluster of 50,000 agents
// and 1,000 tenants whose agents are all offered out or allocated.
func BenchmarkEvents(b *testing.B) {
	const agents, tenants = 50000, 1000
	setup := func(b *testing.B) (*Allocator, []Offer) {
		a := New()
		for i := range agents {
			if err := a.AddAgent(AgentID(fmt.Sprintf("a%08d", i)), Resources{CPU: 16000, Mem: 65536}); err != nil {
				b.Fatal(err)
			}
		}
		for i := range tenants {
			if err := a.AddFramework(FrameworkID(fmt.Sprintf("f%05d", i)), fmt.Sprintf("t%05d", i)); err != nil {
				b.Fatal(err)
			}
		}
		return a, a.Allocate()
	}
	b.Run("remove+add agent", func(b *testing.B) {
		a, _ := setup(b)
		i := 0
		for b.Loop() {
			id := AgentID(fmt.Sprintf("a%08d", i%agents))
			a.RemoveAgent(id)
			if err := a.AddAgent(id, Resources{CPU: 16000, Mem: 65536}); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("accept+recover", func(b *testing.B) {
		a, offers := setup(b)
		task := Resources{CPU: 1000, Mem: 1024}
		i := 0
		for b.Loop() {
			if i == len(offers) {
				b.StopTimer()
				offers, i = a.Allocate(), 0
				b.StartTimer()
			}
			o := offers[i]
			if err := a.Accept(o.ID, task); err != nil {
				b.Fatal(err)
			}
			a.Recover(o.Agent, o.Framework, task)
			i++
		}
	})
	b.Run("decline with filter", func(b *testing.B) {
		a, offers := setup(b)
		i := 0
		for b.Loop() {
			if i == len(offers) {
				b.StopTimer()
				for _, f := range a.frameworks {
					a.Revive(f.id)
				}
				offers, i = a.Allocate(), 0
				b.StartTimer()
			}
			if err := a.DeclineWithFilter(offers[i].ID, Filter{Duration: time.Second}); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("add tenant+framework", func(b *testing.B) {
		a, _ := setup(b)
		i := 0
		for b.Loop() {
			name := fmt.Sprintf("new%d", i)
			if err := a.AddTenant(name, Tenant{Weight: 2}); err != nil {
				b.Fatal(err)
			}
			if err := a.AddFramework(FrameworkID(name), name); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
