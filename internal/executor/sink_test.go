package executor

import (
	"bytes"
	"strings"
	"testing"

	"github.com/wasmgrid/wasmgrid/internal/storage"
)

// memWriter is a storage.Writer in memory.
type memWriter struct {
	bytes.Buffer
	committed, aborted bool
}

func (w *memWriter) Commit() error { w.committed = true; return nil }
func (w *memWriter) Abort()        { w.aborted = true }

// TestPartWriterKeepsSmallPartsInline: a part of at most InlineOutput
// bytes stays in memory and no file is created; a larger one goes whole,
// in order, to the file, whatever the sizes of the writes.
func TestPartWriterKeepsSmallPartsInline(t *testing.T) {
	tests := []struct {
		name   string
		inline int
		writes []string
		file   bool
	}{
		{"empty", 16, nil, false},
		{"fits", 16, []string{"w0\t1\n", "w1\t1\n"}, false},
		{"exactly", 10, []string{"w0\t1\n", "w1\t1\n"}, false},
		{"passes in the second write", 6, []string{"w0\t1\n", "w1\t1\n"}, true},
		{"one large write", 4, []string{strings.Repeat("x", 100)}, true},
		{"not inline", 0, []string{"a"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f *memWriter
			p := &partWriter{inline: tt.inline, create: func() (storage.Writer, error) {
				f = &memWriter{}
				return f, nil
			}}
			if p.inline <= 0 {
				if err := p.open(); err != nil {
					t.Fatal(err)
				}
			}
			for _, w := range tt.writes {
				if n, err := p.Write([]byte(w)); err != nil || n != len(w) {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			want := strings.Join(tt.writes, "")
			switch {
			case tt.file && f == nil:
				t.Fatal("no file for a part larger than its inline bound")
			case tt.file && f.String() != want:
				t.Errorf("file holds %q, want %q", f.String(), want)
			case tt.file && p.buf != nil:
				t.Errorf("%d bytes kept in memory beside the file", len(p.buf))
			case !tt.file && f != nil:
				t.Error("a file was created for an inline part")
			case !tt.file && string(p.buf) != want:
				t.Errorf("inline part %q, want %q", p.buf, want)
			}
		})
	}
}
