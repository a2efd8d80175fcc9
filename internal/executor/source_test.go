package executor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wasmgrid/wasmgrid/internal/storage"
	"github.com/wasmgrid/wasmgrid/planner"
	"github.com/wasmgrid/wasmgrid/shuffle"
	"github.com/wasmgrid/wasmgrid/wasmexec"
)

// TestSplitsCoverEveryLineOnce cuts files at every split size and checks
// that the splits together yield each line exactly once, in order.
func TestSplitsCoverEveryLineOnce(t *testing.T) {
	files := map[string]string{
		"empty":            "",
		"one line":         "hello",
		"one line nl":      "hello\n",
		"empty lines":      "\n\n\n",
		"crlf":             "a\r\nbb\r\n\r\nccc",
		"mixed":            "alpha beta\ngamma\n\ndelta epsilon zeta\nx",
		"long line inside": "a\n" + strings.Repeat("y", 300) + "\nb\n",
	}
	dir := t.TempDir()
	for _, header := range []bool{false, true} {
		for name, text := range files {
			checkSplits(t, dir, name, text, header)
		}
	}
}

// checkSplits reads text in splits of every size and checks that every
// line is read once (the first skipped as a header if header).
func checkSplits(t *testing.T, dir, name, text string, header bool) {
	path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var want []string
	if text != "" {
		want = strings.Split(strings.TrimSuffix(text, "\n"), "\n")
		for i := range want {
			want[i] = strings.TrimSuffix(want[i], "\r")
		}
		if header {
			want = want[1:]
		}
	}
	if len(want) == 0 {
		want = nil
	}
	size := int64(len(text))
	st := dirStore(t, dir)
	for splitSize := int64(1); splitSize <= max(size, 1); splitSize++ {
		var got []string
		for off := int64(0); off < max(size, 1); off += splitSize {
			sp := planner.Split{Volume: "in", Path: filepath.Base(path), Offset: off, Length: min(splitSize, size-off), SkipFirstLine: header && off == 0}
			_, err := readSplit(context.Background(), st, sp, 1<<20, func(line []byte) error {
				got = append(got, string(line))
				return nil
			})
			if err != nil {
				t.Fatalf("%s split %+v: %v", name, sp, err)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s (header %v) with splits of %d bytes: got %q, want %q", name, header, splitSize, got, want)
		}
	}
}

func TestLineLongerThanMaxRecord(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in.txt"), []byte("ok\n"+strings.Repeat("z", 3<<20)+"\n"), 0o644)
	_, err := readSplit(context.Background(), dirStore(t, dir), planner.Split{Volume: "in", Path: "in.txt", Length: 4 << 20}, 1<<20, func([]byte) error { return nil })
	var ie *inputError
	if err == nil || !strings.Contains(err.Error(), "longer than source.max_record") || !strings.Contains(err.Error(), "byte 3") {
		t.Fatalf("err = %v", err)
	}
	if !asInputError(err, &ie) {
		t.Fatalf("err %T is not an input error", err)
	}
}

// dirStore is a file volume at dir.
func dirStore(t *testing.T, dir string) storage.Store {
	t.Helper()
	st, err := storage.Open(storage.Volume{Name: "in", URL: "file://" + dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func asInputError(err error, target **inputError) bool {
	e, ok := err.(*inputError)
	*target = e
	return ok
}

func TestClassify(t *testing.T) {
	spec := planner.TaskSpec{Key: planner.TaskKey{Stage: 1, Partition: 2}, Attempt: 1}
	tests := []struct {
		err  error
		kind planner.FailureKind
	}{
		{&shuffle.FetchError{ID: shuffle.MapOutputID{ShuffleID: 0, MapIndex: 5, Attempt: 2}, Err: shuffle.ErrCorrupt}, planner.FetchFailed},
		{&shuffle.FetchError{ID: shuffle.MapOutputID{ShuffleID: 0, MapIndex: 5, Attempt: 2}, Err: fs.ErrNotExist}, planner.FetchFailed},
		{&inputError{errors.New("bad line")}, planner.Fatal},
		{&wasmexec.Error{Kind: wasmexec.KindInvalid}, planner.Fatal},
		{&wasmexec.Error{Kind: wasmexec.KindGuestError}, planner.TaskError},
		{&wasmexec.Error{Kind: wasmexec.KindTimeout}, planner.TaskError},
		{&wasmexec.Error{Kind: wasmexec.KindCanceled}, planner.Lost},
		{fmt.Errorf("wrapped: %w", context.Canceled), planner.Lost},
		{errors.New("disk full"), planner.TaskError},
	}
	for _, tt := range tests {
		var e *Error
		if !errors.As(classify(spec, tt.err), &e) || e.Failure.Kind != tt.kind {
			t.Errorf("classify(%v) = %+v, want kind %v", tt.err, e, tt.kind)
			continue
		}
		if !strings.Contains(e.Error(), "task 1.2 attempt 1") {
			t.Errorf("error %q does not name the attempt", e)
		}
		if tt.kind == planner.FetchFailed {
			if f := e.Failure; f.MapIndex != 5 || f.MapAttempt != 2 || f.Corrupt != errors.Is(tt.err, shuffle.ErrCorrupt) {
				t.Errorf("fetch failure %+v, want map 5 attempt 2, corrupt only for a corrupt block", f)
			}
		}
	}
}
