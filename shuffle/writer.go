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
	// Memory is the number of buffered bytes (records plus 24 bytes of
	// index per record) past which the writer compacts its buffer with
	// Combine; 0 means 64 MiB. Without Combine the writer keeps buffering:
	// spilling to disk is not part of version 1.
	Memory int64
	// ChunkSize is the number of raw bytes per compressed chunk, at most
	// 16 MiB; 0 means 1 MiB.
	ChunkSize int
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
// one data file and one index file. With a CombineFunc the buffer is compacted
// (sorted and combined) whenever it passes WriterConfig.Memory; without one
// it grows without bound, as version 1 does not spill to disk.
//
// A Writer is not safe for concurrent use.
type Writer struct {
	cfg       WriterConfig
	codec     uint8
	pieceSize int // input bytes per Combine call
	enc       *zstd.Encoder

	arena   []byte  // records, docs/abi.md encoding, back to back
	entries []entry // one per record in arena
	limit   int64   // compact when size() passes limit
	comb    combiner
	done    bool

	compactions int // for tests
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
	return &Writer{cfg: cfg, codec: codecZstd, pieceSize: defaultPiece, enc: enc, limit: cfg.Memory}, nil
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
	w.entries = append(w.entries, entry{prefix: keyPrefix(key), off: int64(len(w.arena)), part: uint32(p), klen: uint32(len(key))})
	w.arena = batch.AppendRecord(w.arena, key, value)
	if w.cfg.Combine != nil && w.size() > w.limit {
		if err := w.compact(); err != nil {
			w.fail()
			return err
		}
	}
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

// Abort discards the buffered records. Temporary files exist only inside
// Commit, which removes them itself when it fails, so Abort has none to
// remove. Abort after Commit does nothing and leaves the committed files.
func (w *Writer) Abort() error {
	w.fail()
	return nil
}

func (w *Writer) fail() {
	w.done = true
	w.arena, w.entries, w.comb = nil, nil, combiner{}
}

func (w *Writer) size() int64 { return int64(len(w.arena)) + entrySize*int64(len(w.entries)) }

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

// compact sorts and combines the buffer into a new arena. The limit for the
// next compaction is twice what is left, so a combiner that barely shrinks
// the data does not make every Add compact.
func (w *Writer) compact() error {
	w.sort()
	arena := make([]byte, 0, len(w.arena)/4)
	entries := make([]entry, 0, len(w.entries)/4)
	err := w.partitionRanges(func(p int, ents []entry) error {
		return w.combine(p, ents, func(rec []byte) error {
			klen := binary.LittleEndian.Uint32(rec)
			key := rec[recHdrSize : recHdrSize+klen]
			entries = append(entries, entry{prefix: keyPrefix(key), off: int64(len(arena)), part: uint32(p), klen: klen})
			arena = append(arena, rec...)
			return nil
		})
	})
	if err != nil {
		return err
	}
	w.arena, w.entries = arena, entries
	w.compactions++
	w.limit = max(w.cfg.Memory, 2*w.size())
	return nil
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
