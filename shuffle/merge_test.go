package shuffle

import (
	"errors"
	"fmt"
	"testing"
)

// sliceIter iterates records, then fails with err if it is set.
type sliceIter struct {
	recs []kv
	i    int
	err  error
}

func (s *sliceIter) Next() bool {
	if s.i >= len(s.recs) {
		return false
	}
	s.i++
	return true
}
func (s *sliceIter) Key() []byte   { return []byte(s.recs[s.i-1].key) }
func (s *sliceIter) Value() []byte { return []byte(s.recs[s.i-1].value) }
func (s *sliceIter) Err() error {
	if s.i >= len(s.recs) {
		return s.err
	}
	return nil
}

// mergeRef is the reference merge: a stable sort of the inputs in order.
func mergeRef(inputs [][]kv) []kv {
	var all []kv
	for _, in := range inputs {
		all = append(all, in...)
	}
	return sortStable(all)
}

func iters(inputs [][]kv) []Iterator {
	its := make([]Iterator, len(inputs))
	for i, in := range inputs {
		its[i] = &sliceIter{recs: in}
	}
	return its
}

func TestMerger(t *testing.T) {
	tests := []struct {
		name   string
		inputs [][]kv
	}{
		{"no inputs", nil},
		{"one empty input", [][]kv{nil}},
		{"empty inputs", [][]kv{nil, nil, nil}},
		{"one input", [][]kv{{{"a", "1"}, {"b", "2"}}}},
		{"ties keep input order", [][]kv{{{"a", "0"}, {"a", "1"}}, {{"a", "2"}}, {{"a", "3"}, {"b", "4"}}}},
		{"empty keys", [][]kv{{{"", "0"}, {"x", "1"}}, {{"", "2"}}, {{"", "3"}}}},
		{"zero bytes", [][]kv{{{"a\x00", "0"}}, {{"a", "1"}, {"a\x00\x00", "2"}}}},
		{"interleaved", [][]kv{{{"a", ""}, {"c", ""}, {"e", ""}}, {{"b", ""}, {"d", ""}}, nil, {{"f", ""}}, {{"a", "x"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			equalRecords(t, "merge", readAll(t, NewMerger(iters(tt.inputs))), mergeRef(tt.inputs))
		})
	}
}

func TestMergerError(t *testing.T) {
	errA, errB := errors.New("a failed"), errors.New("b failed")
	its := []Iterator{
		&sliceIter{recs: []kv{{"a", ""}, {"b", ""}, {"c", ""}}},
		&sliceIter{recs: []kv{{"a", ""}}, err: errA},
		&sliceIter{recs: []kv{{"z", ""}}, err: errB},
	}
	m := NewMerger(its)
	n := 0
	for m.Next() {
		n++
	}
	if !errors.Is(m.Err(), errA) || n != 2 {
		t.Fatalf("merged %d records, err %v; want 2 records and %v", n, m.Err(), errA)
	}
	if m.Next() {
		t.Fatal("Next after an error")
	}
	// An input that fails before its first record stops the merge at once.
	m = NewMerger([]Iterator{&sliceIter{recs: []kv{{"a", ""}}}, &sliceIter{err: errB}})
	if m.Next() || !errors.Is(m.Err(), errB) {
		t.Fatalf("err %v, want %v", m.Err(), errB)
	}
}

func TestMergerSizes(t *testing.T) {
	// Every count of inputs up to 17, so every shape of the tree is played.
	for k := range 18 {
		inputs := make([][]kv, k)
		for i := range inputs {
			for j := range (i*7)%5 + 1 {
				inputs[i] = append(inputs[i], kv{fmt.Sprintf("k%02d", (i*3+j*5)%11), fmt.Sprint(i, j)})
			}
			inputs[i] = sortStable(inputs[i])
		}
		equalRecords(t, fmt.Sprint(k, " inputs"), readAll(t, NewMerger(iters(inputs))), mergeRef(inputs))
	}
}
