package executor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/wasmgrid/wasmgrid/planner"
)

// readSplit calls fn with every line of a split. A split owns the lines that
// start inside it (Hadoop's rule): it skips the partial line at its start,
// which belongs to the split before, and reads past its end to finish its
// last line. Line terminators ("\n" or "\r\n") are dropped.
func readSplit(sp planner.Split, maxRecord int, fn func(line []byte) error) (bytesRead int64, err error) {
	f, err := os.Open(sp.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			// The coordinator found the file when it planned the job; the
			// agent running the task reads it, and cannot.
			return 0, &inputError{fmt.Errorf("open input: %w: inputs are read by the agents, so every agent must see the same path (one host, or a shared file system)", err)}
		}
		return 0, &inputError{fmt.Errorf("open input: %w", err)}
	}
	defer f.Close()
	start, end := sp.Offset, sp.Offset+sp.Length
	pos := start
	if start > 0 {
		// Start one byte early: if that byte ends a line, the line at start
		// is ours.
		pos = start - 1
	}
	if _, err := f.Seek(pos, io.SeekStart); err != nil {
		return 0, &inputError{fmt.Errorf("seek %s to %d: %w", sp.Path, pos, err)}
	}
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

// inputError is a problem with the job's input that no retry will fix.
type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

// readRecords reads a split of fixed-length binary records and calls fn
// with each record's key (its first KeySize bytes) and value (the rest).
// The slices are valid only during the call.
func readRecords(sp planner.Split, fn func(key, value []byte) error) (bytesRead int64, err error) {
	f, err := os.Open(sp.Path)
	if err != nil {
		return 0, &inputError{fmt.Errorf("open input: %w: inputs are read by the agents, so every agent must see the same path (one host, or a shared file system)", err)}
	}
	defer f.Close()
	size := int64(sp.RecordSize)
	if sp.Offset%size != 0 || sp.Length%size != 0 {
		return 0, &inputError{fmt.Errorf("%s: split at %d of %d bytes does not hold whole %d-byte records", sp.Path, sp.Offset, sp.Length, size)}
	}
	r := bufio.NewReaderSize(io.NewSectionReader(f, sp.Offset, sp.Length), 1<<20)
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
