package jobspec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/wasmgrid/wasmgrid/internal/storage"
)

// wasmMagic starts every WebAssembly binary module.
const wasmMagic = "\x00asm"

// Check looks at the world from the machine that submits the job (never
// the grid's: a grid resolves the spec's files in the tenant's volumes):
// every source glob matches at least one regular
// file, every module path is a WebAssembly module, every Go module directory
// holds .go files, the sink's parent directory exists, and an existing,
// non-empty output directory is only replaced with sink.overwrite. It
// reports every problem it finds, joined; each is an *Error.
func (s *Spec) Check() error {
	var errs []error
	for _, g := range s.Source.Globs {
		if err := checkGlob(g); err != nil {
			errs = append(errs, s.errorf(s.Source.Line, err, "source.%s: %v", s.Source.Kind, err))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.Datasets)) {
		c := s.Datasets[name]
		for _, g := range c.Source.Globs {
			if err := checkGlob(g); err != nil {
				errs = append(errs, s.errorf(c.Line, err, "datasets.%s.source.%s: %v", quoteKey(name), c.Source.Kind, err))
			}
		}
	}
	for _, m := range s.Modules {
		key := "modules." + quoteKey(m.Name)
		if m.Path != "" {
			if err := checkWasm(m.Path, s.rel(m.Path)); err != nil {
				errs = append(errs, s.errorf(m.Line, err, "%s: %v", key, err))
			}
		}
		if m.GoDir != "" {
			if err := checkGoDir(m.GoDir, s.rel(m.GoDir)); err != nil {
				errs = append(errs, s.errorf(m.Line, err, "%s: %v", key, err))
			}
		}
		if m.Dir != "" {
			if err := checkGuestDir(m.Dir, s.rel(m.Dir)); err != nil {
				errs = append(errs, s.errorf(m.Line, err, "%s: %v", key, err))
			}
		}
	}
	if s.Sink.Path != "" {
		if err := checkSink(s.Sink.Path, s.Conf.SinkOverwrite); err != nil {
			errs = append(errs, s.errorf(s.Sink.Line, err, "sink.%s: %v", s.Sink.Kind, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Spec) errorf(line int, err error, format string, args ...any) *Error {
	file := s.display
	if file == "" {
		file = s.File
	}
	return &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...), Err: err}
}

// rel shows path relative to the spec's directory when it is inside it.
func (s *Spec) rel(path string) string {
	if r, err := filepath.Rel(s.Dir, path); err == nil && r != ".." && !strings.HasPrefix(r, "../") {
		return r
	}
	return path
}

func checkGlob(pattern string) error {
	if storage.IsLocation(pattern) {
		return nil // a volume's files: the grid checks them
	}
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return fmt.Errorf("%q is not a valid glob: %w", pattern, err)
	}
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.Mode().IsRegular() {
			return nil
		}
	}
	return fmt.Errorf("no file matches %q: check the pattern, or pass the right --param", pattern)
}

func checkWasm(path, shown string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot open the module: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot open the module: %w", err)
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory, not a WebAssembly module (for a Go package, write go = instead of path =)", shown)
	}
	magic := make([]byte, len(wasmMagic))
	if _, err := io.ReadFull(f, magic); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("cannot read the module: %w", err)
	}
	if !bytes.Equal(magic, []byte(wasmMagic)) {
		return fmt.Errorf("%s is not a WebAssembly module (it does not start with \\0asm)", shown)
	}
	return nil
}

func checkGoDir(dir, shown string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("cannot read the Go package directory: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".go") {
			return nil
		}
	}
	return fmt.Errorf("%s contains no .go files: go = names the directory of the guest's Go package", shown)
}

// GuestWasm is the prebuilt module that a guest directory without Go
// sources holds.
const GuestWasm = "guest.wasm"

// HasGoSources reports whether dir holds .go files: a guest directory that
// does is built as a Go guest.
func HasGoSources(dir string) bool {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".go") {
			return true
		}
	}
	return false
}

func checkGuestDir(dir, shown string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("cannot read the guest directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory (for a module file, write path = instead of dir =)", shown)
	}
	if HasGoSources(dir) {
		return nil
	}
	wasm := filepath.Join(dir, GuestWasm)
	if _, err := os.Stat(wasm); err != nil {
		return fmt.Errorf("%s has neither Go sources nor a prebuilt %s: build it (make guests) or point dir = at another guest", shown, GuestWasm)
	}
	return checkWasm(wasm, filepath.Join(shown, GuestWasm))
}

func checkSink(dir string, overwrite bool) error {
	if storage.IsLocation(dir) {
		return nil // in a volume: the grid checks it
	}
	parent := filepath.Dir(dir)
	fi, err := os.Stat(parent)
	if err != nil {
		return fmt.Errorf("the output's parent directory does not exist: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("the output's parent %s is not a directory", parent)
	}
	fi, err = os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot inspect the output directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s exists and is not a directory: remove it or choose another output", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("cannot read the output directory: %w", err)
	}
	if len(entries) > 0 && !overwrite {
		return fmt.Errorf("output directory %s is not empty: remove it, or pass --conf sink.overwrite=true to replace it", dir)
	}
	return nil
}
