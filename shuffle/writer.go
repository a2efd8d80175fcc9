package shuffle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/wasmgrid/wasmgrid/internal/batch"
	"unsafe"

	"github.com/klauspost/compress/zstd"
)

// CombineFunc is a map-side combiner. It receives a batch (docs/abi.md
// encoding) of records of one partition, sorted by key, and returns a batch of
// records sorted by key in which each run of equal keys has been folded to one
// record. It must not change keys. The returned bytes may alias the input; the
// writer copies what it keeps before the next call.
type CombineFunc func(batch []byte) ([]byte, error)

// WriterConfig configures a Writer. A zero field means its default.
type WriterConfig struct {
	Dir        string                      // directory for the final files (created if missing)
	ID         MapOutputID                 // tags the files and every block
	Partitions int                         // number of reduce partitions, 1 to 1<<20
	Partition  func(key []byte, n int) int // nil means HashPartition
	// Level is the zstd level as a zstd.EncoderLevel value, 1 (SpeedFastest)
	// to 4 (SpeedBestCompression); 0 means SpeedFastest, chosen by
	// measurement (docs/shuffle.md).
	Level   int
	Combine CombineFunc // optional map-side combiner
	// Memory is the budget of the writer's buffer: buffered record bytes
	// plus 24 bytes of index per record, including the output of a
	// compaction while it runs, never pass it (a single record larger than
	// the budget is buffered alone). When the buffer is full the writer
	// compacts it with Combine, if set, and otherwise sorts it and spills
	// it to a sorted run file in SpillDir (docs/shuffle.md, "Spilling").
	// 0 means 64 MiB.
	Memory int64
	// ChunkSize is the number of raw bytes per compressed chunk, at most
	// 16 MiB; 0 means 1 MiB.
	ChunkSize int
	// SpillDir is the directory of the temporary run files of spills
	// (created if missing); "" means Dir. Run files are removed by Commit
	// and Abort.
	SpillDir string
}

const (
	defaultMemory    = 64 << 20
	defaultChunkSize = 1 << 20
	defaultPiece     = 1 << 20 // input bytes per Combine call
)

var errWriterDone = errors.New("shuffle: writer already committed or aborted")

// entry locates one buffered record in the arena. Sorting compares part, then
// prefix (the first 8 key bytes, big-endian, zero-padded), and reads the key
// bytes only when both are equal.
type entry struct {
	prefix uint64
	off    int64 // of the encoded record in the arena
	part   uint32
	klen   uint32
}

const entrySize = int64(unsafe.Sizeof(entry{}))

// Writer writes the output of one map task. It buffers records in memory
// (one arena of encoded records plus a compact index), and on Commit sorts
// them by (partition, key), combines them if a CombineFunc is set, and writes
// one data file and one index file. When the buffer reaches
// WriterConfig.Memory, the writer compacts it with the CombineFunc, if any;
// if that does not free enough, or without a CombineFunc, it sorts the buffer
// and spills it to a temporary run file, and Commit merges the runs.
//
// A Writer is not safe for concurrent use.
type Writer struct {
	cfg       WriterConfig
	codec     uint8
	pieceSize int // input bytes per Combine call
	enc       *zstd.Encoder

	arena   []byte  // records, docs/abi.md encoding, back to back
	entries []entry // one per record in arena
	comb    combiner
	done    bool

	spillDir string
	runs     []*run // spilled sorted runs, oldest first
	fanIn    int    // most runs merged at once
	skip     int    // full buffers to spill without trying to compact
	backoff  int    // next value of skip when a compaction fails
	scratch  []byte // one record, re-encoded during a merge

	// For tests.
	compactions int   // compactions tried
	spills      int   // runs written by spills
	merges      int   // runs written by merging runs before Commit's merge
	peak        int64 // most bytes accounted against Memory at once
}

// NewWriter validates cfg and returns a writer. It copies cfg and never
// modifies the caller's value.
func NewWriter(cfg WriterConfig) (*Writer, error) {
	if err := validate(&cfg); err != nil {
		return nil, fmt.Errorf("shuffle: new writer: %w", err)
	}
	if cfg.Partition == nil {
		cfg.Partition = HashPartition
	}
	if cfg.Level == 0 {
		cfg.Level = int(zstd.SpeedFastest)
	}
	if cfg.Memory == 0 {
		cfg.Memory = defaultMemory
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = defaultChunkSize
	}
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.EncoderLevel(cfg.Level)),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false),   // each chunk carries a crc32c
		zstd.WithSingleSegment(true)) // always declare the content size
	if err != nil {
		return nil, fmt.Errorf("shuffle: new writer: %w", err)
	}
	spillDir := cfg.SpillDir
	if spillDir == "" {
		spillDir = cfg.Dir
	}
	return &Writer{cfg: cfg, codec: codecZstd, pieceSize: defaultPiece, enc: enc, spillDir: spillDir, fanIn: defaultFanIn}, nil
}

func validate(cfg *WriterConfig) error {
	switch {
	case cfg.Dir == "":
		return errors.New("no directory")
	case cfg.Partitions < 1 || cfg.Partitions > maxPartitions:
		return fmt.Errorf("%d partitions, want 1 to %d", cfg.Partitions, maxPartitions)
	case cfg.Level < 0 || cfg.Level > int(zstd.SpeedBestCompression):
		return fmt.Errorf("zstd level %d, want 0 to %d", cfg.Level, int(zstd.SpeedBestCompression))
	case cfg.Memory < 0:
		return fmt.Errorf("negative memory %d", cfg.Memory)
	case cfg.ChunkSize < 0 || cfg.ChunkSize > maxChunkRaw:
		return fmt.Errorf("chunk size %d, want 0 to %d", cfg.ChunkSize, maxChunkRaw)
	}
	return nil
}

// Add buffers one record. It copies key and value.
func (w *Writer) Add(key, value []byte) error {
	if w.done {
		return errWriterDone
	}
	if err := batch.CheckRecord(key, value); err != nil {
		return fmt.Errorf("shuffle: add: %w", err)
	}
	p := w.cfg.Partition(key, w.cfg.Partitions)
	if p < 0 || p >= w.cfg.Partitions {
		return fmt.Errorf("shuffle: add: partition function returned %d for %d partitions", p, w.cfg.Partitions)
	}
	need := recHdrSize + int64(len(key)) + int64(len(value)) + entrySize
	if len(w.entries) > 0 && w.size()+need > w.trigger() {
		if err := w.full(need); err != nil {
			w.fail()
			return err
		}
	}
	w.entries = append(w.entries, entry{prefix: keyPrefix(key), off: int64(len(w.arena)), part: uint32(p), klen: uint32(len(key))})
	w.arena = batch.AppendRecord(w.arena, key, value)
	w.account(0)
	return nil
}

// AddBatch buffers the records of a batch (docs/abi.md encoding). It checks
// that the batch is well-formed (its count and lengths match its bytes
// exactly) before adding any record, and copies the records.
func (w *Writer) AddBatch(b []byte) error {
	if w.done {
		return errWriterDone
	}
	it, err := batch.Open(b)
	if err != nil {
		return fmt.Errorf("shuffle: add batch: %w", err)
	}
	for it.Next() {
		if err := w.Add(it.Key(), it.Value()); err != nil {
			return err
		}
	}
	return nil
}

// Abort discards the buffered records and removes the run files of spills.
// Commit's own temporary files exist only inside Commit, which removes them
// itself when it fails. Abort after Commit does nothing and leaves the
// committed files.
func (w *Writer) Abort() error {
	if err := w.removeRuns(); err != nil {
		w.fail()
		return fmt.Errorf("shuffle: abort %v: %w", w.cfg.ID, err)
	}
	w.fail()
	return nil
}

// fail ends the writer, dropping its buffer and removing its run files.
func (w *Writer) fail() {
	_ = w.removeRuns() // best effort: the caller reports the error that matters
	w.done = true
	w.arena, w.entries, w.comb, w.scratch = nil, nil, combiner{}, nil
}

func (w *Writer) size() int64 { return int64(len(w.arena)) + entrySize*int64(len(w.entries)) }

// account records that extra bytes are held on top of the buffer.
func (w *Writer) account(extra int64) { w.peak = max(w.peak, w.size()+extra) }

// trigger returns the size past which the buffer is full. A compaction needs
// room for its output next to the buffer, so with a CombineFunc whose
// compactions pay, the buffer fills to 2/3 of Memory and a compaction may
// leave at most half of that (1/3 of Memory); otherwise it fills to Memory.
func (w *Writer) trigger() int64 {
	if w.cfg.Combine != nil && w.skip == 0 {
		return w.cfg.Memory / 3 * 2
	}
	return w.cfg.Memory
}

// full makes room for need more bytes in a full buffer: it compacts it if a
// CombineFunc is set and compactions have been paying, and spills it
// otherwise, or if the compaction left more than half of it, or too little
// room. After a compaction that did not pay,
// the next 1, 2, 4, ... full buffers are spilled without trying, so a
// combiner that barely shrinks the data does not make every fill compact;
// one that pays resets the backoff.
func (w *Writer) full(need int64) error {
	// A buffer past the trigger holds one record bigger than the budget:
	// compacting it would only copy it.
	if w.cfg.Combine != nil && w.size() <= w.trigger() {
		if w.skip > 0 {
			w.skip--
		} else {
			ok, err := w.compact(w.trigger() / 2)
			if err != nil {
				return err
			}
			if ok {
				w.backoff = 0
				if w.size()+need <= w.trigger() {
					return nil
				}
			} else {
				w.backoff = max(1, 2*w.backoff)
				w.skip = w.backoff
			}
		}
	}
	return w.spill()
}

// keyPrefix returns the first 8 bytes of key, big-endian, zero-padded.
func keyPrefix(key []byte) uint64 {
	if len(key) >= 8 {
		return binary.BigEndian.Uint64(key)
	}
	var b [8]byte
	copy(b[:], key)
	return binary.BigEndian.Uint64(b[:])
}

func (w *Writer) key(e entry) []byte {
	return w.arena[e.off+recHdrSize : e.off+recHdrSize+int64(e.klen)]
}

func (w *Writer) record(e entry) []byte {
	vlen := int64(binary.LittleEndian.Uint32(w.arena[e.off+4:]))
	return w.arena[e.off : e.off+recHdrSize+int64(e.klen)+vlen]
}

// partitionRanges calls fn with the sorted entries of each partition in turn,
// including the empty ones.
func (w *Writer) partitionRanges(fn func(p int, ents []entry) error) error {
	i := 0
	for p := range w.cfg.Partitions {
		j := i
		for j < len(w.entries) && w.entries[j].part == uint32(p) {
			j++
		}
		if err := fn(p, w.entries[i:j]); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// errCompactFull stops a compaction whose output passes its limit.
var errCompactFull = errors.New("compaction output past its limit")

// compact sorts and combines the buffer into a new arena, and reports whether
// the output stayed within limit bytes (records plus index). If it did not,
// the compaction stops, and the buffer is left sorted and unchanged.
func (w *Writer) compact(limit int64) (bool, error) {
	w.compactions++
	w.sort()
	arena := make([]byte, 0, min(int64(len(w.arena)/4), limit))
	entries := make([]entry, 0, min(int64(len(w.entries)/4), limit/entrySize))
	err := w.partitionRanges(func(p int, ents []entry) error {
		return w.combine(p, ents, func(rec []byte) error {
			used := int64(len(arena)+len(rec)) + entrySize*int64(len(entries)+1)
			if used > limit {
				return errCompactFull
			}
			klen := binary.LittleEndian.Uint32(rec)
			key := rec[recHdrSize : recHdrSize+klen]
			entries = append(entries, entry{prefix: keyPrefix(key), off: int64(len(arena)), part: uint32(p), klen: klen})
			arena = append(arena, rec...)
			w.account(used)
			return nil
		})
	})
	if errors.Is(err, errCompactFull) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	w.arena, w.entries = arena, entries
	return true, nil
}

// combine runs the combiner over the sorted entries of partition p and emits
// the combined records in key order.
func (w *Writer) combine(p int, ents []entry, emit func(rec []byte) error) error {
	c := &w.comb
	c.reset(w.cfg.Combine, p, w.pieceSize, emit)
	for _, e := range ents {
		if err := c.add(w.record(e)); err != nil {
			return err
		}
	}
	return c.finish()
}
