package shuffle

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// MapOutput describes the committed output of one map task.
type MapOutput struct {
	ID         MapOutputID
	DataPath   string
	IndexPath  string
	Partitions []PartitionInfo // one per reduce partition
}

// PartitionInfo describes the block of one reduce partition.
type PartitionInfo struct {
	Offset   int64 // of the block in the data file
	Length   int64 // bytes of the block in the data file; 0 = empty partition, no block written
	Records  int64 // records in the block
	RawBytes int64 // bytes of the uncompressed record stream
}

// Commit sorts the buffered records by (partition, key), stable for equal
// keys, combines them if a CombineFunc is set, and writes the data and index
// files: under temporary names (".tmp-" prefix), fsynced, renamed, and the
// directory fsynced, so a crash leaves a whole output or none. The index is
// renamed last. If the writer spilled, Commit merges the runs with the
// buffer. Commit removes the run files, and if it fails, its temporary
// files. The writer cannot be used after Commit.
func (w *Writer) Commit() (*MapOutput, error) {
	if w.done {
		return nil, errWriterDone
	}
	defer w.fail()
	out, err := w.commit()
	if err != nil {
		return nil, fmt.Errorf("shuffle: commit %v: %w", w.cfg.ID, err)
	}
	return out, nil
}

func (w *Writer) commit() (_ *MapOutput, err error) {
	dir, id := w.cfg.Dir, w.cfg.ID
	out := &MapOutput{
		ID:        id,
		DataPath:  filepath.Join(dir, DataFileName(id)),
		IndexPath: filepath.Join(dir, IndexFileName(id)),
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var created []*os.File // temporary files
	var renamed []string   // final names already in place
	defer func() {
		if err == nil {
			return
		}
		// Best effort: the commit error is what matters.
		for _, f := range created {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
		for _, name := range renamed {
			_ = os.Remove(name)
		}
	}()
	data, err := os.CreateTemp(dir, ".tmp-"+DataFileName(id)+"-*")
	if err != nil {
		return nil, err
	}
	created = append(created, data)
	index, err := os.CreateTemp(dir, ".tmp-"+IndexFileName(id)+"-*")
	if err != nil {
		return nil, err
	}
	created = append(created, index)
	w.sort()
	if out.Partitions, err = w.writeBlocks(data); err != nil {
		return nil, err
	}
	if _, err := index.Write(encodeIndex(id, out.Partitions)); err != nil {
		return nil, err
	}
	// The data file first: an index in place means its data is too.
	for i, name := range []string{out.DataPath, out.IndexPath} {
		if err := syncRename(created[i], name); err != nil {
			return nil, err
		}
		renamed = append(renamed, name)
	}
	return out, syncDir(dir)
}

// syncRename fsyncs, closes and renames a temporary file.
func syncRename(f *os.File, name string) error {
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// writeBlocks writes one block per non-empty partition of the sorted
// entries, merged with the runs of spills if there are any.
func (w *Writer) writeBlocks(f io.WriterAt) ([]PartitionInfo, error) {
	if err := w.reduceRuns(); err != nil {
		return nil, err
	}
	bw := &blockWriter{w: f, enc: w.enc, codec: w.codec, chunkSize: w.cfg.ChunkSize}
	parts := make([]PartitionInfo, w.cfg.Partitions)
	err := w.partitionRanges(func(p int, ents []entry) error {
		bw.begin(w.cfg.ID, p)
		var err error
		switch {
		case len(w.runs) > 0:
			err = w.mergePartition(p, w.runs, ents, bw.writeRecord)
		case w.cfg.Combine != nil:
			err = w.combine(p, ents, bw.writeRecord)
		default:
			for _, e := range ents {
				if err = bw.writeRecord(w.record(e)); err != nil {
					break
				}
			}
		}
		if err != nil {
			return err
		}
		parts[p], err = bw.end()
		return err
	})
	return parts, err
}
