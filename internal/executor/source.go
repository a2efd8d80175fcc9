package executor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/wasmgrid/wasmgrid/internal/storage"
	"github.com/wasmgrid/wasmgrid/planner"
)

// readSplit calls fn with every line of a split. A split owns the lines that
// start inside it (Hadoop's rule): it skips the partial line at its start,
// which belongs to the split before, and reads past its end to finish its
// last line. Line terminators ("\n" or "\r\n") are dropped.
func readSplit(ctx context.Context, st storage.Store, sp planner.Split, maxRecord int, fn func(line []byte) error) (bytesRead int64, err error) {
	start, end := sp.Offset, sp.Offset+sp.Length
	pos := start
	if start > 0 {
		// Start one byte early: if that byte ends a line, the line at start
		// is ours.
		pos = start - 1
	}
	f, err := openInput(ctx, st, sp, pos)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var long []byte
	readLine := func() ([]byte, error) {
		long = long[:0]
		for {
			chunk, err := r.ReadSlice('\n')
			if errors.Is(err, bufio.ErrBufferFull) {
				long = append(long, chunk...)
				if len(long) > maxRecord {
					return nil, &inputError{fmt.Errorf("%s: the line at byte %d is longer than source.max_record (%d bytes): raise it with --conf source.max_record=SIZE", sp.Path, pos, maxRecord)}
				}
				continue
			}
			if len(long) > 0 {
				long = append(long, chunk...)
				chunk = long
			}
			return chunk, err
		}
	}
	if start > 0 || sp.SkipFirstLine {
		// The line before the split's start belongs to the split before;
		// at a file's start, a skipped line is a CSV header.
		skipped, err := readLine()
		pos += int64(len(skipped))
		if err == io.EOF {
			return 0, nil
		}
		if err != nil {
			return 0, &inputError{fmt.Errorf("read %s: %w", sp.Path, err)}
		}
	}
	// The bytes of the lines this split owns, which the splits of a file
	// add up to its size.
	first := pos
	defer func() { bytesRead = pos - first }()
	for pos < end {
		line, err := readLine()
		if len(line) > 0 {
			pos += int64(len(line))
			if len(line) > maxRecord+2 {
				return 0, &inputError{fmt.Errorf("%s: the line at byte %d is longer than source.max_record (%d bytes): raise it with --conf source.max_record=SIZE", sp.Path, pos-int64(len(line)), maxRecord)}
			}
			line = trimEOL(line)
			if ferr := fn(line); ferr != nil {
				return 0, ferr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, &inputError{fmt.Errorf("read %s: %w", sp.Path, err)}
		}
	}
	return 0, nil
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// openInput opens a split's file at offset in its volume. A file that is
// gone, or that the volume refuses (a symbolic link swapped in after the
// job was planned), fails the task with the reason; no retry reads it.
func openInput(ctx context.Context, st storage.Store, sp planner.Split, offset int64) (io.ReadCloser, error) {
	f, err := st.Open(ctx, sp.Path, offset)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &inputError{fmt.Errorf("open input %s:%s: %w: the file was there when the job was planned; it was removed since", sp.Volume, sp.Path, err)}
		}
		return nil, &inputError{fmt.Errorf("open input: %w", err)}
	}
	return f, nil
}

// inputError is a problem with the job's input that no retry will fix.
type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

// readRecords reads a split of fixed-length binary records and calls fn
// with each record's key (its first KeySize bytes) and value (the rest).
// The slices are valid only during the call.
func readRecords(ctx context.Context, st storage.Store, sp planner.Split, fn func(key, value []byte) error) (bytesRead int64, err error) {
	size := int64(sp.RecordSize)
	if sp.Offset%size != 0 || sp.Length%size != 0 {
		return 0, &inputError{fmt.Errorf("%s: split at %d of %d bytes does not hold whole %d-byte records", sp.Path, sp.Offset, sp.Length, size)}
	}
	f, err := openInput(ctx, st, sp, sp.Offset)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(io.LimitReader(f, sp.Length), 1<<20)
	rec := make([]byte, size)
	for bytesRead < sp.Length {
		if _, err := io.ReadFull(r, rec); err != nil {
			return bytesRead, &inputError{fmt.Errorf("%s: the record at byte %d: %w (the file changed after the job was planned?)", sp.Path, sp.Offset+bytesRead, err)}
		}
		bytesRead += size
		if err := fn(rec[:sp.KeySize], rec[sp.KeySize:]); err != nil {
			return bytesRead, err
		}
	}
	return bytesRead, nil
}
