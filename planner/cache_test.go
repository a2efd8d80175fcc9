package planner

import (
	"slices"
	"testing"
)

// linksJob is PageRank's shape: links grouped by key into parts
// partitions (cached if cache), the ranks computed from them, and iters
// joins of the ranks with the links.
func linksJob(cache bool, parts, joinParts, iters int) Job {
	ds := []Dataset{
		{ID: 0, Op: OpSource, Splits: []Split{{Path: "a"}, {Path: "b"}, {Path: "c"}}},
		{ID: 1, Op: OpMap, Parents: []int{0}, Func: FuncRef{"pr", "edge"}},
		{ID: 2, Op: OpGroupByKey, Parents: []int{1}, Partitions: parts, Cache: cache},
		{ID: 3, Op: OpMapValues, Parents: []int{2}, Func: FuncRef{"pr", "first"}},
	}
	ranks := 3
	for range iters {
		n := len(ds)
		ds = append(ds,
			Dataset{ID: n, Op: OpJoin, Parents: []int{ranks, 2}, Partitions: joinParts},
			Dataset{ID: n + 1, Op: OpFlatMap, Parents: []int{n}, Func: FuncRef{"pr", "contribs"}},
			Dataset{ID: n + 2, Op: OpReduceByKey, Parents: []int{n + 1}, Func: FuncRef{"pr", "sum"}, Partitions: joinParts},
		)
		ranks = n + 2
	}
	return Job{Datasets: ds}
}

func TestBuildCache(t *testing.T) {
	p, err := Build(linksJob(true, 4, 4, 2))
	if err != nil {
		t.Fatal(err)
	}
	// One shuffle per iteration, as Spark's PageRank: the ranks are
	// partitioned by page as the cached links are, so each join is a step
	// of the stage that computes the ranks.
	want := `stage 4 (4 tasks): shuffle 3 → reduce pr.sum → result
└─ stage 3 (4 tasks): shuffle 2 → reduce pr.sum → join cache 1 → flat_map pr.contribs → shuffle 3 (4 partitions, combine pr.sum)
   ├─ stage 2 (4 tasks): cache 1 → map_values pr.first → join cache 1 → flat_map pr.contribs → shuffle 2 (4 partitions, combine pr.sum)
   │  └─ stage 1 (4 tasks): shuffle 0 → group values → cache 1 (4 partitions, by key)
   │     └─ stage 0 (3 tasks): source (3 splits) → map pr.edge → shuffle 0 (4 partitions)
   └─ stage 1 (above)
`
	if got := p.String(); got != want {
		t.Fatalf("plan:\n%s\nwant:\n%s", got, want)
	}
	cache := p.Stages[1].ShuffleOut
	if !cache.Identity() || !cache.KeyPartitioned {
		t.Fatalf("links shuffle %+v: want a cache partitioned by key", cache)
	}
	// A join with other partitions cannot read the cache as it is: the
	// links are shuffled for it, but still computed once.
	p, err = Build(linksJob(true, 4, 3, 1))
	if err != nil {
		t.Fatal(err)
	}
	want = `stage 5 (3 tasks): shuffle 4 → reduce pr.sum → result
└─ stage 4 (3 tasks): shuffle 2 join shuffle 3 → flat_map pr.contribs → shuffle 4 (3 partitions, combine pr.sum)
   ├─ stage 2 (4 tasks): cache 1 → map_values pr.first → shuffle 2 (3 partitions)
   │  └─ stage 1 (4 tasks): shuffle 0 → group values → cache 1 (4 partitions, by key)
   │     └─ stage 0 (3 tasks): source (3 splits) → map pr.edge → shuffle 0 (4 partitions)
   └─ stage 3 (4 tasks): cache 1 → shuffle 3 (3 partitions)
      └─ stage 1 (above)
`
	if got := p.String(); got != want {
		t.Fatalf("plan:\n%s\nwant:\n%s", got, want)
	}
}

func TestBuildCacheRules(t *testing.T) {
	// Without the cache, the links feed two datasets: refused (the spec
	// layer computes an uncached dataset once per reader instead).
	if _, err := Build(linksJob(false, 4, 4, 1)); err == nil {
		t.Fatal("a dataset read twice without a cache was planned")
	}
	// A cache nobody reads is an unused dataset.
	job := Job{Datasets: []Dataset{
		{ID: 0, Op: OpSource, Splits: []Split{{}}},
		{ID: 1, Op: OpMap, Parents: []int{0}, Cache: true},
		{ID: 2, Op: OpSource, Splits: []Split{{}}},
	}}
	if _, err := Build(job); err == nil {
		t.Fatal("an unread cache was planned")
	}
	// A cached source read by a map and as the result of a union.
	job = Job{Datasets: []Dataset{
		{ID: 0, Op: OpSource, Splits: []Split{{}, {}}, Cache: true},
		{ID: 1, Op: OpMap, Parents: []int{0}, Func: FuncRef{"m", "f"}},
		{ID: 2, Op: OpUnion, Parents: []int{1, 0}},
	}}
	p, err := Build(job)
	if err != nil {
		t.Fatal(err)
	}
	if c := p.Stages[0].ShuffleOut; !c.Identity() || c.KeyPartitioned || c.Partitions != 2 {
		t.Fatalf("cache of a source: %+v", c)
	}
	// Which datasets keep hash partitioning by key.
	for _, tt := range []struct {
		st   *Stage
		want bool
	}{
		{&Stage{ShuffleIn: &ShuffleDep{Partitions: 4}, Partitions: 4}, true},
		{&Stage{ShuffleIn: &ShuffleDep{Partitions: 4}, Partitions: 2}, false}, // coalesced
		{&Stage{ShuffleIn: &ShuffleDep{Partitions: 4, Range: true}, Partitions: 4}, false},
		{&Stage{ShuffleIn: &ShuffleDep{Partitions: 4, Builtin: "round_robin"}, Partitions: 4}, false},
		{&Stage{ShuffleIn: &ShuffleDep{Partitions: 4, Builtin: "distinct"}, Partitions: 4}, false},
		{&Stage{ShuffleIn: &ShuffleDep{Partitions: 4}, Partitions: 4, Steps: []Step{{Op: OpFilter}, {Op: OpMapValues}}}, true},
		{&Stage{ShuffleIn: &ShuffleDep{Partitions: 4}, Partitions: 4, Steps: []Step{{Op: OpMap}}}, false},
		{&Stage{ShuffleIn: &ShuffleDep{Partitions: 4, Builtin: "cache"}, Partitions: 4}, false},
		{&Stage{ShuffleIn: &ShuffleDep{Partitions: 4, Builtin: "cache", KeyPartitioned: true}, Partitions: 4}, true},
		{&Stage{Splits: []Split{{}}, Partitions: 1}, false},
	} {
		if got := keyPartitioned(tt.st); got != tt.want {
			t.Errorf("keyPartitioned(%+v in %+v) = %v, want %v", tt.st, tt.st.ShuffleIn, got, tt.want)
		}
	}
}

// TestSchedulerCache: a reader's task i reads map output i of the cache
// alone, preferably where it lives; a lost cache partition is computed
// again from its lineage before its readers go on.
func TestSchedulerCache(t *testing.T) {
	p, err := Build(linksJob(true, 4, 4, 1))
	if err != nil {
		t.Fatal(err)
	}
	s := NewScheduler(p, Config{})
	run := func(stage int, agents ...string) {
		t.Helper()
		for i := 0; !s.StageDone(stage); i++ {
			agent := agents[i%len(agents)]
			spec, ok := s.Next(agent, true)
			if !ok {
				t.Fatalf("stage %d is not done and nothing runs", stage)
			}
			if spec.Key.Stage != stage {
				t.Fatalf("task %s runs before stage %d is done", spec.Key, stage)
			}
			s.Succeeded(spec.Key, spec.Attempt)
		}
	}
	run(0, "a")
	run(1, "a", "b") // cache partitions 0 and 2 on a, 1 and 3 on b
	// The first reader (stage 2) on agent b gets a partition b holds.
	spec, ok := s.Next("b", true)
	if !ok || spec.Key.Stage != 2 {
		t.Fatalf("Next = %v %v, want a task of stage 2", spec.Key, ok)
	}
	if spec.Key.Partition%2 != 1 {
		t.Errorf("agent b got partition %d, whose cache lives on a", spec.Key.Partition)
	}
	// It reads the cache twice, both times map output i alone: as its
	// input, and as the right side of the join that is one of its steps.
	if len(spec.Inputs) != 1 || spec.Inputs[0].MapIndex != spec.Key.Partition || spec.Inputs[0].Agent != "b" {
		t.Errorf("inputs %+v: want map output %d alone, on b", spec.Inputs, spec.Key.Partition)
	}
	if len(spec.BroadcastInputs) != 1 || len(spec.BroadcastInputs[0]) != 1 || spec.BroadcastInputs[0][0].MapIndex != spec.Key.Partition {
		t.Errorf("join inputs %+v: want map output %d alone", spec.BroadcastInputs, spec.Key.Partition)
	}
	// Agent b is lost while the task runs: its cache partitions are
	// computed again before the readers go on.
	s.AgentLost("b")
	s.Failed(spec.Key, spec.Attempt, Failure{Kind: Lost})
	var again []int
	for {
		spec, ok := s.Next("a", true)
		if !ok {
			break
		}
		if spec.Key.Stage != 1 {
			if spec.Key.Stage == 2 && len(again) < 2 {
				t.Fatalf("reader task %s runs while cache partitions are lost", spec.Key)
			}
		} else {
			again = append(again, spec.Key.Partition)
		}
		s.Succeeded(spec.Key, spec.Attempt)
	}
	slices.Sort(again)
	if !slices.Equal(again, []int{1, 3}) {
		t.Errorf("cache partitions computed again: %v, want [1 3]", again)
	}
	if !s.Done() {
		t.Error("the job did not finish after the cache was computed again")
	}
}
