package shuffle

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/wasmgrid/wasmgrid/internal/batch"
)

// defaultFanIn is the most runs merged at once. Commit merges more runs than
// that in passes, so a merge holds at most this many chunks.
const defaultFanIn = 64

// runLimits are the limits of a reader of the writer's own run files: any
// record the writer accepted must be read back.
var runLimits = Limits{MaxBlockRaw: math.MaxInt64, MaxRecord: math.MaxInt64}

// run is a spilled sorted run: a temporary file in the block format, one
// block per non-empty partition, tagged with the writer's ID (docs/shuffle.md,
// "Spilling"). It is written in one go and then only read, by ReadAt.
type run struct {
	f     *os.File
	parts []PartitionInfo
}

// newRun writes one run in the spill directory, filling it with fill, which
// is called for each partition in turn and writes that partition's records
// in key order through emit. The run is removed if anything fails.
func (w *Writer) newRun(fill func(p int, emit func(rec []byte) error) error) (_ *run, err error) {
	if err := os.MkdirAll(w.spillDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(w.spillDir, ".tmp-spill-"+DataFileName(w.cfg.ID)+"-*")
	if err != nil {
		return nil, err
	}
	r := &run{f: f, parts: make([]PartitionInfo, w.cfg.Partitions)}
	defer func() {
		if err != nil {
			_ = r.remove() // best effort: the write error is what matters
		}
	}()
	bw := &blockWriter{w: f, enc: w.enc, codec: w.codec, chunkSize: w.cfg.ChunkSize}
	for p := range w.cfg.Partitions {
		bw.begin(w.cfg.ID, p)
		if err := fill(p, bw.writeRecord); err != nil {
			return nil, err
		}
		if r.parts[p], err = bw.end(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *run) remove() error {
	return errors.Join(r.f.Close(), os.Remove(r.f.Name()))
}

// reader returns a reader of the run's block of partition p, or nil if the
// partition is empty.
func (r *run) reader(id MapOutputID, p int) *BlockReader {
	info := r.parts[p]
	if info.Length == 0 {
		return nil
	}
	br := NewBlockDecoder(io.NewSectionReader(r.f, info.Offset, info.Length), id, p, runLimits)
	br.expect = &r.parts[p]
	return br
}

// removeRuns removes the run files.
func (w *Writer) removeRuns() error {
	var errs []error
	for _, r := range w.runs {
		errs = append(errs, r.remove())
	}
	w.runs = nil
	return errors.Join(errs...)
}

// spill sorts the buffer, writes it as a run (combined, if a CombineFunc is
// set) and empties the buffer, keeping its capacity.
func (w *Writer) spill() error {
	w.sort()
	ranges := w.ranges()
	r, err := w.newRun(func(p int, emit func([]byte) error) error {
		ents := w.entries[ranges[p]:ranges[p+1]]
		if w.cfg.Combine != nil {
			return w.combine(p, ents, emit)
		}
		for _, e := range ents {
			if err := emit(w.record(e)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("shuffle: spill: %w", err)
	}
	w.runs = append(w.runs, r)
	w.spills++
	w.arena, w.entries = w.arena[:0], w.entries[:0]
	return nil
}

// ranges returns the start of each partition's entries in the sorted
// entries, and their end as a last element.
func (w *Writer) ranges() []int {
	starts := make([]int, w.cfg.Partitions+1)
	i := 0
	for p := range w.cfg.Partitions {
		starts[p] = i
		for i < len(w.entries) && w.entries[i].part == uint32(p) {
			i++
		}
	}
	starts[w.cfg.Partitions] = i
	return starts
}

// reduceRuns merges runs, fanIn at a time and each group into one run, until
// at most fanIn are left. Groups are consecutive runs and the merge is
// stable, so records with equal keys stay in the order of Add.
func (w *Writer) reduceRuns() error {
	for len(w.runs) > w.fanIn {
		var next []*run
		for len(w.runs) > 0 {
			group := w.runs[:min(w.fanIn, len(w.runs))]
			if len(group) == 1 {
				next = append(next, group[0])
				w.runs = w.runs[1:]
				continue
			}
			r, err := w.newRun(func(p int, emit func([]byte) error) error {
				return w.mergePartition(p, group, nil, emit)
			})
			if err != nil {
				w.runs = append(next, w.runs...) // removed by fail
				return fmt.Errorf("merge runs: %w", err)
			}
			w.merges++
			next = append(next, r)
			w.runs = w.runs[len(group):]
			var errs []error
			for _, g := range group {
				errs = append(errs, g.remove())
			}
			if err := errors.Join(errs...); err != nil {
				w.runs = append(next, w.runs...)
				return fmt.Errorf("merge runs: %w", err)
			}
		}
		w.runs = next
	}
	return nil
}

// mergePartition merges the blocks of partition p of runs with the sorted
// buffered entries ents of p (which come last: they were added last),
// combines the merged records if a CombineFunc is set, and emits them in key
// order. Equal keys of different runs fold into one record, as the combiner
// carries the last record of each piece.
func (w *Writer) mergePartition(p int, runs []*run, ents []entry, emit func(rec []byte) error) error {
	its := make([]Iterator, 0, len(runs)+1)
	var readers []*BlockReader
	defer func() {
		for _, r := range readers {
			_ = r.Close() // a section of a run file: nothing to close
		}
	}()
	for _, r := range runs {
		if br := r.reader(w.cfg.ID, p); br != nil {
			readers = append(readers, br)
			its = append(its, br)
		}
	}
	if len(ents) > 0 {
		its = append(its, &entryIter{w: w, ents: ents})
	}
	out := emit
	if w.cfg.Combine != nil {
		w.comb.reset(w.cfg.Combine, p, w.pieceSize, emit)
		out = w.comb.add
	}
	m := NewMerger(its)
	for m.Next() {
		w.scratch = batch.AppendRecord(w.scratch[:0], m.Key(), m.Value())
		if err := out(w.scratch); err != nil {
			return err
		}
	}
	if err := m.Err(); err != nil {
		return fmt.Errorf("read run: %w", err)
	}
	if w.cfg.Combine != nil {
		return w.comb.finish()
	}
	return nil
}

// entryIter iterates sorted buffered entries.
type entryIter struct {
	w    *Writer
	ents []entry
	i    int
}

func (it *entryIter) Next() bool { it.i++; return it.i <= len(it.ents) }
func (it *entryIter) Key() []byte {
	return it.w.key(it.ents[it.i-1])
}

func (it *entryIter) Value() []byte {
	rec := it.w.record(it.ents[it.i-1])
	return rec[recHdrSize+it.ents[it.i-1].klen:]
}
func (it *entryIter) Err() error { return nil }
