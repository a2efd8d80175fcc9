package core

import (
	"fmt"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/allocator"
)

// BenchmarkApplyStatus measures the core's cost of one task's end: the
// status is applied, the allocator is rebuilt from the state and one
// scheduling cycle places the next task. Every replica pays it for every
// status, so it bounds a coordinator's tasks per second before the log
// does.
func BenchmarkApplyStatus(b *testing.B) {
	for _, size := range []struct{ agents, jobs int }{{10, 10}, {100, 10}, {100, 100}, {1000, 100}} {
		b.Run(fmt.Sprintf("agents=%d/jobs=%d", size.agents, size.jobs), func(b *testing.B) {
			c, err := New(Config{})
			if err != nil {
				b.Fatal(err)
			}
			now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
			apply := func(cmd Command) []Decision {
				now = now.Add(time.Millisecond)
				cmd.Time = now
				return c.Apply(cmd)
			}
			var queue []Launch
			collect := func(ds []Decision) {
				for _, d := range ds {
					if l, ok := d.(Launch); ok {
						queue = append(queue, l)
					}
				}
			}
			for i := range size.agents {
				name := fmt.Sprintf("agent-%d", i)
				collect(apply(Command{AgentUp: &AgentUp{Name: name, Resources: allocator.Resources{CPU: 4000, Mem: 16384}, BlockAddr: name + ":1"}}))
			}
			// Enough tasks that every job keeps some waiting.
			tasks := max(4*size.agents*4/size.jobs, 8) + b.N/size.jobs + 1
			submit := func() {
				for i := range size.jobs {
					collect(apply(Command{Submit: &Submit{Request: fmt.Sprint("r", i), Tenant: fmt.Sprintf("t%d", i%10), Name: "bench", Job: mapJob(tasks), Task: task}}))
				}
			}
			submit()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if len(queue) == 0 {
					b.Fatal("no task runs")
				}
				l := queue[0]
				queue = queue[1:]
				collect(apply(Command{Status: &Status{Job: l.Job, Task: l.Spec.Key, Attempt: l.Spec.Attempt, Agent: l.Agent, Elapsed: time.Millisecond}}))
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "statuses/s")
		})
	}
}
