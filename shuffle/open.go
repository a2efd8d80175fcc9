package shuffle

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ReadIndex reads the index file at path and checks its magic, version,
// checksum and tag (which must be want), and that its blocks follow one
// another in partition order without overlapping. Errors about its bytes wrap
// ErrCorrupt; a missing file wraps fs.ErrNotExist. DataPath is the data file
// next to the index.
func ReadIndex(path string, want MapOutputID) (*MapOutput, error) {
	parts, err := readIndex(path, want)
	if err != nil {
		return nil, fmt.Errorf("shuffle: read index %s: %w", path, err)
	}
	return &MapOutput{
		ID:         want,
		DataPath:   filepath.Join(filepath.Dir(path), DataFileName(want)),
		IndexPath:  path,
		Partitions: parts,
	}, nil
}

func readIndex(path string, want MapOutputID) ([]PartitionInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read-only: nothing to lose
	// Read the header first, so a file is never read beyond the size its
	// header allows.
	var hb [indexHdrSize]byte
	if _, err := io.ReadFull(f, hb[:]); err != nil {
		return nil, readErr("index header", err)
	}
	n, err := indexHeader(hb[:])
	if err != nil {
		return nil, err
	}
	size := indexHdrSize + n*indexEntrySize + indexCRCSize
	b := make([]byte, size+1) // one more byte, to notice a longer file
	copy(b, hb[:])
	m, err := io.ReadFull(f, b[indexHdrSize:])
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	return decodeIndex(b[:indexHdrSize+m], want)
}

// BlockRef names one block of one map output.
type BlockRef struct {
	ID        MapOutputID
	Partition int
	DataPath  string // "" means DataFileName(ID) next to IndexPath
	IndexPath string
	Location  string // where the block lives, e.g. an agent name; only for error messages
}

// OpenBlock opens the block of ref.Partition in a map output. It reads and
// checks the index, then checks the block against its index entry as it
// reads it. An empty partition gives a reader with no records. Every error
// about the files is a *FetchError.
func OpenBlock(ref BlockRef, lim Limits) (*BlockReader, error) {
	fe := func(err error) error {
		return &FetchError{ID: ref.ID, Partition: ref.Partition, Location: ref.Location, Err: err}
	}
	out, err := ReadIndex(ref.IndexPath, ref.ID)
	if err != nil {
		return nil, fe(err)
	}
	if ref.Partition < 0 || ref.Partition >= len(out.Partitions) {
		return nil, fmt.Errorf("shuffle: open block: partition %d of a map output with %d partitions", ref.Partition, len(out.Partitions))
	}
	r := NewBlockDecoder(nil, ref.ID, ref.Partition, lim)
	r.fe.Location = ref.Location
	p := out.Partitions[ref.Partition]
	if p.Length == 0 {
		r.release() // an empty partition: no block
		return r, nil
	}
	path := ref.DataPath
	if path == "" {
		path = out.DataPath
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fe(err)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() < p.Offset+p.Length {
		if err == nil {
			err = corruptf("data file %s is %d bytes, block ends at %d", path, fi.Size(), p.Offset+p.Length)
		}
		_ = f.Close() // read-only
		return nil, fe(err)
	}
	r.src = io.NewSectionReader(f, p.Offset, p.Length)
	r.closer = f
	r.expect = &p
	return r, nil
}
