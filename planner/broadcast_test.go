package planner

import "testing"

// TestBroadcastJoin: a broadcast join keeps the left side in its stage
// (no shuffle), sends the right side's one partition to every left task,
// and waits for it; a cache that the join can read in place is not
// broadcast.
func TestBroadcastJoin(t *testing.T) {
	job := Job{Datasets: []Dataset{
		{ID: 0, Op: OpSource, Splits: []Split{{Path: "orders-1"}, {Path: "orders-2"}, {Path: "orders-3"}}},
		{ID: 1, Op: OpMap, Parents: []int{0}, Func: FuncRef{"j", "by_customer"}},
		{ID: 2, Op: OpSource, Splits: []Split{{Path: "customers-1"}, {Path: "customers-2"}}},
		{ID: 3, Op: OpMap, Parents: []int{2}, Func: FuncRef{"j", "country"}},
		{ID: 4, Op: OpLeftOuterJoin, Parents: []int{1, 3}, Partitions: 4, Broadcast: true},
		{ID: 5, Op: OpMap, Parents: []int{4}, Func: FuncRef{"j", "revenue"}},
		{ID: 6, Op: OpReduceByKey, Parents: []int{5}, Func: FuncRef{"j", "sum"}, Partitions: 2},
	}}
	p, err := Build(job)
	if err != nil {
		t.Fatal(err)
	}
	want := `stage 2 (2 tasks): shuffle 1 → reduce j.sum → result
└─ stage 1 (3 tasks): source (3 splits) → map j.by_customer → left_outer_join broadcast 0 → map j.revenue → shuffle 1 (2 partitions, combine j.sum)
   └─ stage 0 (2 tasks): source (2 splits) → map j.country → broadcast 0 (to every task)
`
	if got := p.String(); got != want {
		t.Fatalf("plan:\n%s\nwant:\n%s", got, want)
	}
	s := NewScheduler(p, Config{})
	if spec, _ := s.Next("a", true); spec.Key.Stage != 0 {
		t.Fatalf("task %s runs before the broadcast side", spec.Key)
	} else {
		s.Succeeded(spec.Key, spec.Attempt)
	}
	if spec, _ := s.Next("a", true); spec.Key.Stage != 0 {
		t.Fatalf("task %s runs before the broadcast side is done", spec.Key)
	} else {
		s.Succeeded(spec.Key, spec.Attempt)
	}
	spec, ok := s.Next("b", true)
	if !ok || spec.Key.Stage != 1 || len(spec.BroadcastInputs) != 1 || len(spec.BroadcastInputs[0]) != 2 || spec.Split == nil {
		t.Fatalf("left task %s: split %v, broadcast inputs %+v", spec.Key, spec.Split, spec.BroadcastInputs)
	}
	// A lost broadcast output is computed again before the left side
	// goes on.
	s.Failed(spec.Key, spec.Attempt, Failure{Kind: FetchFailed, ShuffleID: 0, MapIndex: 1, Corrupt: true})
	if again, _ := s.Next("b", true); again.Key != (TaskKey{0, 1}) {
		t.Fatalf("after a lost broadcast output, Next = %s, want 0.1", again.Key)
	}

	// The links of PageRank are cached and partitioned as the join needs:
	// read in place, not broadcast.
	lj := linksJob(true, 4, 4, 1)
	for i := range lj.Datasets {
		if lj.Datasets[i].Op == OpJoin {
			lj.Datasets[i].Broadcast = true
		}
	}
	p, err = Build(lj)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range p.Stages {
		if st.ShuffleOut != nil && st.ShuffleOut.Builtin == "broadcast" {
			t.Fatalf("a cache joined in place was broadcast:\n%s", p)
		}
	}
}
