package wordcount_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wasmgrid/wasmgrid/examples/wordcount"
	"github.com/wasmgrid/wasmgrid/internal/guestbuild"
	"github.com/wasmgrid/wasmgrid/wasmexec"
)

// benchText is about 8 MB of text: lines of words from a skewed vocabulary.
func benchText() [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	vocab := make([]string, 50_000)
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	for i := range vocab {
		var b strings.Builder
		for range 1 + rng.IntN(10) {
			b.WriteByte(letters[rng.IntN(len(letters))])
		}
		vocab[i] = b.String()
	}
	zipf := rand.NewZipf(rng, 1.1, 4, uint64(len(vocab)-1))
	var lines [][]byte
	size := 0
	for size < 8<<20 {
		var b bytes.Buffer
		for i := range 1 + rng.IntN(15) {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(vocab[zipf.Uint64()])
		}
		lines = append(lines, b.Bytes())
		size += b.Len() + 1
	}
	return lines
}

func textBytes(lines [][]byte) int64 {
	n := 0
	for _, l := range lines {
		n += len(l) + 1
	}
	return int64(n)
}

// batches encodes lines as ABI batches of about 256 KiB.
func batches(lines [][]byte) [][]byte {
	var out [][]byte
	var b []byte
	count := uint32(0)
	flush := func() {
		binary.LittleEndian.PutUint32(b, count)
		out = append(out, b)
		b, count = nil, 0
	}
	for _, l := range lines {
		if b == nil {
			b = make([]byte, 4, 300<<10)
		}
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(l)))
		b = append(b, l...)
		count++
		if len(b) >= 256<<10 {
			flush()
		}
	}
	if count > 0 {
		flush()
	}
	return out
}

var (
	guestOnce sync.Once
	guestWasm []byte
	guestErr  error
)

// guestModule returns the word-count guest in lang: the Go guest built
// from source, the others' prebuilt guest.wasm (CI checks they match their
// sources).
func guestModule(b *testing.B, lang string) []byte {
	if lang != "go" {
		w, err := os.ReadFile(filepath.Join("guest", lang, "guest.wasm"))
		if err != nil {
			b.Skip(err)
		}
		return w
	}
	guestOnce.Do(func() {
		out := filepath.Join(b.TempDir(), "wc.wasm")
		if guestErr = guestbuild.BuildGo(context.Background(), "guest/go", out); guestErr == nil {
			guestWasm, guestErr = os.ReadFile(out)
		}
	})
	if guestErr != nil {
		b.Fatal(guestErr)
	}
	return guestWasm
}

// BenchmarkSplit compares the split function run natively with the same
// function in each guest language under wazero, batch by batch as tasks run
// it: without termination checks, as executors run guests, and with them
// ("-checks"), as a runtime that must stop guests by itself would.
func BenchmarkSplit(b *testing.B) {
	lines := benchText()
	b.Run("native", func(b *testing.B) {
		b.SetBytes(textBytes(lines))
		out := make([]byte, 0, 1<<20)
		for b.Loop() {
			for _, l := range lines {
				wordcount.Split(l, func(k, v []byte) {
					out = append(out[:0], k...)
					out = append(out, v...)
				})
			}
		}
	})
	in := batches(lines)
	for _, lang := range []string{"go", "rust", "c", "assemblyscript"} {
		for _, checks := range []bool{false, true} {
			name := lang
			if checks {
				name += "-checks"
			}
			b.Run(name, func(b *testing.B) {
				ctx := context.Background()
				rt, err := wasmexec.NewRuntime(ctx, wasmexec.Config{NoInterrupt: !checks})
				if err != nil {
					b.Fatal(err)
				}
				defer rt.Close(ctx)
				m, err := rt.Load(ctx, "wc", guestModule(b, lang))
				if err != nil {
					b.Fatal(err)
				}
				split, _ := m.Function("split")
				p, err := rt.NewPipeline(ctx, []wasmexec.Step{{Name: "wc", Module: m, Function: split}}, wasmexec.Limits{})
				if err != nil {
					b.Fatal(err)
				}
				defer p.Close(ctx)
				b.SetBytes(textBytes(lines))
				for b.Loop() {
					for _, batch := range in {
						if err := p.Push(ctx, batch, func([]byte) error { return nil }); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}
