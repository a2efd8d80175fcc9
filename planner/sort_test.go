package planner

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// sortJob counts words, then sorts the counts by key over partitions.
func sortJob(splits, partitions int) Job {
	job := Job{Datasets: []Dataset{
		{ID: 0, Op: OpSource},
		{ID: 1, Op: OpFlatMap, Parents: []int{0}, Func: FuncRef{"wc", "split"}},
		{ID: 2, Op: OpReduceByKey, Parents: []int{1}, Func: FuncRef{"wc", "sum"}, Partitions: 3},
		{ID: 3, Op: OpMap, Parents: []int{2}, Func: FuncRef{"wc", "by_count"}},
		{ID: 4, Op: OpSortByKey, Parents: []int{3}, Partitions: partitions},
		{ID: 5, Op: OpMap, Parents: []int{4}, Func: FuncRef{"wc", "format"}},
	}}
	for i := range splits {
		job.Splits = append(job.Splits, Split{Path: "in.txt", Offset: int64(i) * 10, Length: 10})
	}
	return job
}

func TestBuildSortSamplesFirst(t *testing.T) {
	p, err := Build(sortJob(40, 4))
	if err != nil {
		t.Fatal(err)
	}
	want := `stage 3 (4 tasks): shuffle 2 → map wc.format → result
└─ stage 2 (3 tasks): shuffle 0 → reduce wc.sum → map wc.by_count → shuffle 2 (4 partitions, by key range)
   ├─ stage 0 (40 tasks): source (40 splits) → flat_map wc.split → shuffle 0 (3 partitions, combine wc.sum)
   └─ stage 1 (3 tasks): shuffle 0 → reduce wc.sum → map wc.by_count → sample 80 keys for the bounds of shuffle 2
      └─ stage 0 (above)
`
	if got := p.String(); got != want {
		t.Fatalf("plan:\n%s\nwant:\n%s", got, want)
	}
	// Sorting a source samples at most maxSampleTasks of its splits.
	job := sortJob(40, 4)
	job.Datasets = []Dataset{{ID: 0, Op: OpSource}, {ID: 1, Op: OpSortByKey, Parents: []int{0}, Partitions: 4}}
	p, err = Build(job)
	if err != nil {
		t.Fatal(err)
	}
	if s := p.Stages[0]; s.Sample == nil || s.Partitions != maxSampleTasks || !reflect.DeepEqual(s.Splits[1], job.Splits[40/maxSampleTasks]) {
		t.Fatalf("sample stage %+v", s)
	}
}

func TestSortSchedulesSampleThenRangeMaps(t *testing.T) {
	p, err := Build(Job{
		Datasets: []Dataset{{ID: 0, Op: OpSource}, {ID: 1, Op: OpSortByKey, Parents: []int{0}, Partitions: 3}},
		Splits:   []Split{{Path: "a"}, {Path: "b"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := NewScheduler(p, Config{})
	var samples []TaskSpec
	for {
		spec, ok := s.Next("a1", true)
		if !ok {
			break
		}
		samples = append(samples, spec)
	}
	if len(samples) != 2 || samples[0].Stage.Sample == nil {
		t.Fatalf("first wave %+v, want the two sample tasks only", samples)
	}
	for i, spec := range samples {
		var keys [][]byte
		for k := range 50 {
			keys = append(keys, fmt.Appendf(nil, "k%03d", i*50+k))
		}
		if !s.RecordSamples(spec.Key, spec.Attempt, keys) || !s.Succeeded(spec.Key, spec.Attempt) {
			t.Fatal("sample task refused")
		}
	}
	m, ok := s.Next("a1", true)
	if !ok || m.Stage.ShuffleOut == nil || !m.Stage.ShuffleOut.Range {
		t.Fatalf("after sampling: %+v", m)
	}
	want := [][]byte{[]byte("k033"), []byte("k066")}
	if len(m.Bounds) != 2 || !bytes.Equal(m.Bounds[0], want[0]) || !bytes.Equal(m.Bounds[1], want[1]) {
		t.Fatalf("bounds %q, want %q", m.Bounds, want)
	}
	if s.RecordSamples(m.Key, m.Attempt, nil) {
		t.Error("a map task recorded samples")
	}
}

func TestRangeBounds(t *testing.T) {
	k := func(ss ...string) [][]byte {
		var out [][]byte
		for _, s := range ss {
			out = append(out, []byte(s))
		}
		return out
	}
	tests := []struct {
		name  string
		keys  [][]byte
		parts int
		want  [][]byte
	}{
		{"even", k("a", "b", "c", "d", "e", "f"), 3, k("c", "e")},
		{"one partition", k("a", "b"), 1, k()},
		{"no samples", nil, 3, k("\x00", "\x00\x00")},
		{"one skewed key", k("x", "x", "x", "x", "y", "z"), 3, k("x", "y")},
		{"skew repeats a bound", k("a", "x", "x", "x", "x", "x"), 3, k("x", "x\x00")},
		{"all equal", k("q", "q", "q"), 4, k("q", "q\x00", "q\x00\x00")},
		{"unsorted binary", k("\xff", "\x00", "\x80", "\x01"), 2, k("\x80")},
	}
	for _, tt := range tests {
		got := RangeBounds(tt.keys, tt.parts)
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
		for i := 1; i < len(got); i++ {
			if bytes.Compare(got[i-1], got[i]) >= 0 {
				t.Errorf("%s: bounds not increasing: %q", tt.name, got)
			}
		}
	}
}

func TestCoalesce(t *testing.T) {
	job := sortJob(4, 8)
	job.Datasets = append(job.Datasets, Dataset{ID: 6, Op: OpCoalesce, Parents: []int{5}, Partitions: 3})
	p, err := Build(job)
	if err != nil {
		t.Fatal(err)
	}
	res := p.Result()
	if res.Partitions != 3 || !strings.Contains(p.String(), "shuffle 2 → coalesce 8 → 3 → map wc.format → result") {
		t.Fatalf("plan:\n%s", p)
	}
	want := [][]int{{0, 1}, {2, 3, 4}, {5, 6, 7}}
	for i, w := range want {
		if got := res.InputPartitions(i); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("task %d reads %v, want %v", i, got, w)
		}
	}
	// More partitions than the shuffle has is no coalesce at all.
	job.Datasets[6].Partitions = 20
	if p, _ := Build(job); p.Result().Partitions != 8 {
		t.Errorf("coalesce to 20 of 8 partitions gave %d", p.Result().Partitions)
	}
	// A source has no shuffle to coalesce.
	_, err = Build(Job{Datasets: []Dataset{{ID: 0, Op: OpSource}, {ID: 1, Op: OpCoalesce, Parents: []int{0}, Partitions: 1}}, Splits: []Split{{Path: "a"}}})
	if err == nil || !strings.Contains(err.Error(), "coalesce follows a shuffle") {
		t.Errorf("coalesce of a source: %v", err)
	}
}

func TestBuildAndScheduleJoin(t *testing.T) {
	job := Job{Datasets: []Dataset{
		{ID: 0, Op: OpSource, Splits: []Split{{Path: "orders", Length: 1}, {Path: "orders", Offset: 1, Length: 1}}},
		{ID: 1, Op: OpMap, Parents: []int{0}, Func: FuncRef{"j", "order"}},
		{ID: 2, Op: OpSource, Splits: []Split{{Path: "customers"}}},
		{ID: 3, Op: OpMap, Parents: []int{2}, Func: FuncRef{"j", "customer"}},
		{ID: 4, Op: OpJoin, Parents: []int{1, 3}, Partitions: 3},
		{ID: 5, Op: OpMap, Parents: []int{4}, Func: FuncRef{"j", "revenue"}},
		{ID: 6, Op: OpReduceByKey, Parents: []int{5}, Func: FuncRef{"j", "sum"}, Partitions: 2},
	}}
	p, err := Build(job)
	if err != nil {
		t.Fatal(err)
	}
	want := `stage 3 (2 tasks): shuffle 2 → reduce j.sum → result
└─ stage 2 (3 tasks): shuffle 0 join shuffle 1 → map j.revenue → shuffle 2 (2 partitions, combine j.sum)
   ├─ stage 0 (2 tasks): source (2 splits) → map j.order → shuffle 0 (3 partitions)
   └─ stage 1 (1 task): source (1 split) → map j.customer → shuffle 1 (3 partitions)
`
	if got := p.String(); got != want {
		t.Fatalf("plan:\n%s\nwant:\n%s", got, want)
	}
	s := NewScheduler(p, Config{})
	var first []TaskSpec
	for {
		spec, ok := s.Next("a1", true)
		if !ok {
			break
		}
		first = append(first, spec)
	}
	if len(first) != 3 {
		t.Fatalf("first wave: %d tasks, want both sides' 3 map tasks", len(first))
	}
	for _, spec := range first[:2] {
		s.Succeeded(spec.Key, spec.Attempt)
	}
	if _, ok := s.Next("a1", true); ok {
		t.Fatal("a join task ran before the right side's map output existed")
	}
	s.Succeeded(first[2].Key, first[2].Attempt)
	j, ok := s.Next("a2", true)
	if !ok || j.Stage.Join == nil || len(j.Inputs) != 2 || len(j.RightInputs) != 1 || j.RightInputs[0].Agent != "a1" {
		t.Fatalf("join task %+v", j)
	}
	// A lost right-side output reruns that map task only.
	s.Failed(j.Key, j.Attempt, Failure{Kind: FetchFailed, ShuffleID: 1, MapIndex: 0, Corrupt: true})
	rerun, ok := s.Next("a2", true)
	if !ok || rerun.Stage.ID != 1 {
		t.Fatalf("after a fetch failure on the right side: %+v", rerun)
	}
}

func TestUnion(t *testing.T) {
	job := Job{Datasets: []Dataset{
		{ID: 0, Op: OpSource, Splits: []Split{{Path: "a"}, {Path: "a", Offset: 1}}},
		{ID: 1, Op: OpSource, Splits: []Split{{Path: "b"}}},
		{ID: 2, Op: OpFlatMap, Parents: []int{1}, Func: FuncRef{"wc", "split_b"}},
		{ID: 3, Op: OpUnion, Parents: []int{0, 2}},
		{ID: 4, Op: OpFlatMap, Parents: []int{3}, Func: FuncRef{"wc", "split"}},
		{ID: 5, Op: OpReduceByKey, Parents: []int{4}, Func: FuncRef{"wc", "sum"}, Partitions: 2},
	}}
	p, err := Build(job)
	if err != nil {
		t.Fatal(err)
	}
	want := `stage 2 (2 tasks): shuffle 0 → reduce wc.sum → result
├─ stage 0 (2 tasks): source (2 splits) → flat_map wc.split → shuffle 0 (2 partitions, combine wc.sum)
└─ stage 1 (1 task): source (1 split) → flat_map wc.split_b → flat_map wc.split → shuffle 0 (2 partitions, combine wc.sum)
`
	if got := p.String(); got != want {
		t.Fatalf("plan:\n%s\nwant:\n%s", got, want)
	}
	if p.Stages[1].MapOffset != 2 || p.Stages[0].ShuffleOut.Maps != 3 {
		t.Fatalf("map offsets %d, maps %d", p.Stages[1].MapOffset, p.Stages[0].ShuffleOut.Maps)
	}
	s := NewScheduler(p, Config{})
	var maps []TaskSpec
	for {
		spec, ok := s.Next("a1", true)
		if !ok {
			break
		}
		maps = append(maps, spec)
	}
	if len(maps) != 3 {
		t.Fatalf("%d map tasks, want 3", len(maps))
	}
	for _, m := range maps {
		s.Succeeded(m.Key, m.Attempt)
	}
	r, ok := s.Next("a2", true)
	if !ok || len(r.Inputs) != 3 || r.Inputs[2].MapIndex != 2 {
		t.Fatalf("reduce task %+v", r)
	}
	// Losing map output 2 reruns the second stage's task 0 only.
	s.Failed(r.Key, r.Attempt, Failure{Kind: FetchFailed, ShuffleID: 0, MapIndex: 2, Corrupt: true})
	rerun, ok := s.Next("a2", true)
	if !ok || rerun.Key != (TaskKey{1, 0}) {
		t.Fatalf("rerun %+v", rerun.Key)
	}
	// A union as the result gets a pass-through shuffle; a sort right after
	// a union is refused with a way out.
	job.Datasets = job.Datasets[:5]
	if p, err = Build(job); err != nil || p.Result().Partitions != 3 || p.Result().ShuffleIn.Builtin != "round_robin" {
		t.Fatalf("union as the result: %v\n%s", err, p)
	}
	job.Datasets = append(job.Datasets[:4], Dataset{ID: 4, Op: OpSortByKey, Parents: []int{3}, Partitions: 2})
	if _, err := Build(job); err == nil || !strings.Contains(err.Error(), "put a partition_by or repartition between them") {
		t.Errorf("sort after union: %v", err)
	}
}
