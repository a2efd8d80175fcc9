package shuffle

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// bigRecords returns about size bytes of records: keys repeated from a small
// set or random, values of 0 to 400 bytes, and every 25,000th value bigger
// than a chunk (1.5 MiB). With counts, values are decimal counts instead and
// the big records have big keys.
func bigRecords(rng *rand.Rand, size int, counts bool) []kv {
	var recs []kv
	for n := 0; n < size; {
		var key string
		switch rng.IntN(4) {
		case 0:
			key = fmt.Sprintf("r%016x", rng.Uint64())
		default:
			key = "k" + strconv.Itoa(rng.IntN(5000))
		}
		var value string
		switch {
		case counts:
			value = strconv.Itoa(1 + rng.IntN(9))
		default:
			value = strings.Repeat(string(rune('a'+rng.IntN(26))), rng.IntN(400))
		}
		if len(recs)%25000 == 12345 {
			big := strings.Repeat("x", 3<<19) + strconv.Itoa(len(recs))
			if counts {
				key = big
			} else {
				value = big
			}
		}
		recs = append(recs, kv{key, value})
		n += recHdrSize + len(key) + len(value)
	}
	return recs
}

// writeSpilled writes recs with cfg and fanIn, and checks against the
// writer's accounting that its buffer never passed cfg.Memory but for a
// single bigger record. It returns the output and the writer, committed.
func writeSpilled(t testing.TB, cfg WriterConfig, fanIn int, recs []kv) (*MapOutput, *Writer) {
	t.Helper()
	w, err := NewWriter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if fanIn > 0 {
		w.fanIn = fanIn
	}
	budget := w.cfg.Memory
	for _, r := range recs {
		budget = max(budget, recHdrSize+int64(len(r.key)+len(r.value))+entrySize)
		if err := w.Add([]byte(r.key), []byte(r.value)); err != nil {
			t.Fatal(err)
		}
		if w.peak > budget {
			t.Fatalf("writer accounted %d bytes, budget %d", w.peak, budget)
		}
	}
	out, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if w.peak > budget {
		t.Fatalf("writer accounted %d bytes, budget %d", w.peak, budget)
	}
	return out, w
}

// checkSorted checks that each partition holds its records, as partition
// assigns them, in stable key order.
func checkSorted(t testing.TB, out *MapOutput, recs []kv, partition func([]byte, int) int) {
	t.Helper()
	n := len(out.Partitions)
	want := make([][]kv, n)
	for _, r := range recs {
		p := partition([]byte(r.key), n)
		want[p] = append(want[p], r)
	}
	for p := range n {
		equalRecords(t, fmt.Sprint("partition ", p), readAll(t, openBlock(t, out, p)), sortStable(want[p]))
	}
}

// Sorting 20 times the budget spills about 20 runs and merges them exactly.
func TestSpillTwentyTimesBudget(t *testing.T) {
	const memory = 1 << 20
	tests := []struct {
		name    string
		combine CombineFunc
	}{
		{"sort", nil},
		{"combine", sumCombine},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs := bigRecords(rand.New(rand.NewPCG(uint64(i), 20)), 21<<20, tt.combine != nil)
			raw := 0
			for _, r := range recs {
				raw += recHdrSize + len(r.key) + len(r.value)
			}
			cfg := WriterConfig{Dir: t.TempDir(), Partitions: 4, Memory: memory, Combine: tt.combine}
			if tt.combine == nil {
				cfg.Partition = RangePartitioner([][]byte{[]byte("k3"), []byte("k7"), []byte("r8")})
			}
			var heap heapPeak
			heap.sample()
			out, w := writeSpilled(t, cfg, 0, recs)
			heap.sample()
			if w.spills < 16 {
				t.Fatalf("%d spills of %d bytes with a budget of %d", w.spills, raw, memory)
			}
			if tt.combine == nil {
				checkSorted(t, out, recs, cfg.Partition)
				// Range partitions, read in order, hold all the records in order.
				var all []kv
				for p := range out.Partitions {
					all = append(all, readAll(t, openBlock(t, out, p))...)
				}
				equalRecords(t, "all partitions", all, sortStable(recs))
			} else {
				checkSums(t, out, recs)
			}
			t.Logf("%d records, %.1f MiB, budget %d KiB: %d runs, %d compactions, accounted peak %d bytes, heap in use peak %.1f MiB (sampled)",
				len(recs), float64(raw)/(1<<20), memory>>10, w.spills, w.compactions, w.peak, float64(heap.max)/(1<<20))
		})
	}
}

// heapPeak samples the process's heap in use.
type heapPeak struct{ max uint64 }

func (h *heapPeak) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h.max = max(h.max, ms.HeapInuse)
}

// The heap sampled while writing 20 times the budget; logged, not asserted,
// as the runtime and the test's own records are in it.
func TestSpillHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	recs := bigRecords(rand.New(rand.NewPCG(7, 7)), 21<<20, false)
	w, err := NewWriter(WriterConfig{Dir: t.TempDir(), Partitions: 4, Memory: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	// A low GC target, so the heap in use is mostly what is live.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	var heap heapPeak
	heap.sample()
	base := heap.max
	for i, r := range recs {
		if err := w.Add([]byte(r.key), []byte(r.value)); err != nil {
			t.Fatal(err)
		}
		if i%2000 == 0 {
			heap.sample()
		}
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	heap.sample()
	t.Logf("heap in use: %.1f MiB before writing (test records included), peak %.1f MiB (+%.1f MiB), %d runs, accounted peak %d bytes",
		float64(base)/(1<<20), float64(heap.max)/(1<<20), float64(heap.max-base)/(1<<20), w.spills, w.peak)
}

// A tiny budget makes more runs than the fan-in, merged in several passes.
func TestSpillMultiPass(t *testing.T) {
	tests := []struct {
		name    string
		combine CombineFunc
		fanIn   int
	}{
		{"sort fan-in 2", nil, 2},
		{"sort fan-in 5", nil, 5},
		{"combine fan-in 3", sumCombine, 3},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 3))
			var recs []kv
			if tt.combine != nil {
				recs = wordCounts(rng, 20000, 2000)
			} else {
				recs = randRecords(rng, 20000)
			}
			cfg := WriterConfig{Dir: t.TempDir(), Partitions: 3, Memory: 8 << 10, ChunkSize: 512, Combine: tt.combine}
			out, w := writeSpilled(t, cfg, tt.fanIn, recs)
			if w.spills <= tt.fanIn*tt.fanIn || w.merges == 0 {
				t.Fatalf("%d spills, %d merged runs: want more than one merge pass", w.spills, w.merges)
			}
			if tt.combine != nil {
				checkSums(t, out, recs)
			} else {
				checkSorted(t, out, recs, HashPartition)
			}
		})
	}
}

// Run files are removed by Commit, Abort, a failed Add and a failed Commit,
// in Dir and in a SpillDir of their own.
func TestSpillFilesRemoved(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name     string
		spillDir bool
		end      string // "commit", "abort", "fail commit", "fail add"
	}{
		{"commit", false, "commit"},
		{"commit spill dir", true, "commit"},
		{"abort", false, "abort"},
		{"abort spill dir", true, "abort"},
		{"failed commit", false, "fail commit"},
		{"failed commit spill dir", true, "fail commit"},
		{"failed add", false, "fail add"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, spillDir := t.TempDir(), ""
			if tt.spillDir {
				spillDir = t.TempDir()
			}
			// failAt is the call on which the combiner fails; 0 means never.
			calls, failAt := 0, 0
			combine := func(b []byte) ([]byte, error) {
				calls++
				if calls == failAt {
					return nil, errBoom
				}
				return sumCombine(b)
			}
			if tt.end == "fail add" {
				failAt = 2
			}
			w, err := NewWriter(WriterConfig{Dir: dir, SpillDir: spillDir, Partitions: 2, Memory: 4 << 10, Combine: combine})
			if err != nil {
				t.Fatal(err)
			}
			var addErr error
			for _, r := range wordCounts(rand.New(rand.NewPCG(uint64(i), 4)), 5000, 1000) {
				if addErr = w.Add([]byte(r.key), []byte(r.value)); addErr != nil {
					break
				}
			}
			if tt.end != "fail add" && (addErr != nil || w.spills == 0) {
				t.Fatalf("Add: %v, %d spills", addErr, w.spills)
			}
			var wantFiles []string
			switch tt.end {
			case "commit":
				out, err := w.Commit()
				if err != nil {
					t.Fatal(err)
				}
				wantFiles = []string{DataFileName(out.ID), IndexFileName(out.ID)}
			case "abort":
				if err := w.Abort(); err != nil {
					t.Fatal(err)
				}
			case "fail commit":
				failAt = calls + 2 // the second call of Commit
				if _, err := w.Commit(); !errors.Is(err, errBoom) {
					t.Fatalf("Commit error %v, want boom", err)
				}
			case "fail add":
				if !errors.Is(addErr, errBoom) {
					t.Fatalf("Add error %v, want boom", addErr)
				}
			}
			names, err := osReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if tt.spillDir {
				spilled, err := osReadDir(spillDir)
				if err != nil {
					t.Fatal(err)
				}
				names = append(names, spilled...)
			}
			slices.Sort(names)
			slices.Sort(wantFiles)
			if !slices.Equal(names, wantFiles) {
				t.Fatalf("files left %v, want %v", names, wantFiles)
			}
		})
	}
}

// spillCase is one random input for the differential test.
type spillCase struct {
	memory     int64
	partitions int
	fanIn      int
	chunk      int
	combine    bool
	records    int
}

func randSpillCase(rng *rand.Rand) spillCase {
	return spillCase{
		memory:     int64(256 + rng.IntN(32<<10)),
		partitions: 1 + rng.IntN(5),
		fanIn:      2 + rng.IntN(7),
		chunk:      16 + rng.IntN(4096),
		combine:    rng.IntN(2) == 0,
		records:    rng.IntN(3000),
	}
}

// checkSpillCase writes random records under c and compares the output with
// the reference: a stable sort, or sums per key.
func checkSpillCase(t *testing.T, seed uint64, c spillCase) {
	rng := rand.New(rand.NewPCG(seed, 9))
	cfg := WriterConfig{Dir: t.TempDir(), Partitions: c.partitions, Memory: c.memory, ChunkSize: c.chunk}
	var recs []kv
	if c.combine {
		cfg.Combine = sumCombine
		recs = wordCounts(rng, c.records, 1+rng.IntN(500))
	} else {
		recs = randRecords(rng, c.records)
	}
	out, _ := writeSpilled(t, cfg, c.fanIn, recs)
	if c.combine {
		checkSums(t, out, recs)
		return
	}
	checkSorted(t, out, recs, HashPartition)
}

// Differential test: random inputs and small budgets against the reference.
func TestSpillDifferential(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	for i := range 40 {
		c := randSpillCase(rng)
		t.Run(fmt.Sprintf("%d/%+v", i, c), func(t *testing.T) {
			checkSpillCase(t, uint64(i), c)
		})
	}
}

func FuzzSpill(f *testing.F) {
	f.Add(uint64(1), uint16(300), uint8(2), uint16(64), false, uint16(500))
	f.Add(uint64(2), uint16(2000), uint8(3), uint16(1000), true, uint16(2000))
	f.Fuzz(func(t *testing.T, seed uint64, memory uint16, fanIn uint8, chunk uint16, combine bool, records uint16) {
		c := spillCase{
			memory:     int64(memory) + 1,
			partitions: 1 + int(seed%4),
			fanIn:      2 + int(fanIn%8),
			chunk:      1 + int(chunk),
			combine:    combine,
			records:    int(records % 4000),
		}
		checkSpillCase(t, seed, c)
	})
}

func TestRangePartitioner(t *testing.T) {
	bounds := [][]byte{[]byte("b"), []byte("d"), []byte("d\x00")}
	part := RangePartitioner(bounds)
	bounds[0][0] = 'z' // copied: no effect
	tests := []struct {
		key  string
		want int
	}{
		{"", 0},
		{"a", 0},
		{"azzz", 0},
		{"b", 1},
		{"b\x00", 1},
		{"c", 1},
		{"d", 2},
		{"d\x00", 3},
		{"d\x00\x00", 3},
		{"e", 3},
		{"\xff", 3},
	}
	for _, tt := range tests {
		if got := part([]byte(tt.key), 4); got != tt.want {
			t.Errorf("partition of %q is %d, want %d", tt.key, got, tt.want)
		}
	}
	if got := RangePartitioner(nil)([]byte("x"), 1); got != 0 {
		t.Errorf("no bounds: partition %d, want 0", got)
	}
	panics := []struct {
		name string
		fn   func()
		want string
	}{
		{"unsorted bounds", func() { RangePartitioner([][]byte{[]byte("b"), []byte("a")}) }, "not above"},
		{"equal bounds", func() { RangePartitioner([][]byte{[]byte("a"), []byte("a")}) }, "not above"},
		{"too few partitions", func() { part([]byte("a"), 3) }, "want 4"},
		{"too many partitions", func() { part([]byte("a"), 5) }, "want 4"},
	}
	for _, tt := range panics {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if msg := fmt.Sprint(r); r == nil || !strings.Contains(msg, tt.want) {
					t.Fatalf("panic %v, want one mentioning %q", r, tt.want)
				}
			}()
			tt.fn()
		})
	}
}

// A writer with a range partitioner writes a totally ordered output.
func TestRangePartitionerWriter(t *testing.T) {
	recs := randRecords(rand.New(rand.NewPCG(3, 3)), 5000)
	cfg := WriterConfig{Dir: t.TempDir(), Partitions: 3, Memory: 2 << 10,
		Partition: RangePartitioner([][]byte{[]byte("sharedpf"), []byte("w2")})}
	out, _ := writeSpilled(t, cfg, 0, recs)
	var all []kv
	for p := range 3 {
		all = append(all, readAll(t, openBlock(t, out, p))...)
	}
	equalRecords(t, "range partitioned", all, sortStable(recs))
}
