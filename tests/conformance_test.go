package tests

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wasmgrid/wasmgrid/internal/guestbuild"
	"github.com/wasmgrid/wasmgrid/wasmexec"
)

// buildGuest builds a guest from source for a test, or skips the test when
// the language's toolchain is missing, except in CI, where every toolchain
// must be there.
func buildGuest(t *testing.T, lang, dir string) []byte {
	t.Helper()
	root, _ := filepath.Abs("..")
	if err := guestbuild.Available(root, lang); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must build every guest: %v", err)
		}
		t.Skip(err)
	}
	out := filepath.Join(t.TempDir(), lang+".wasm")
	if err := guestbuild.Build(context.Background(), root, lang, filepath.Join(root, dir), out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type rec struct{ k, v string }

func encodeBatch(recs []rec) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(recs)))
	for _, r := range recs {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(r.k)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(r.v)))
		b = append(b, r.k...)
		b = append(b, r.v...)
	}
	return b
}

func decodeBatch(t *testing.T, b []byte) []rec {
	t.Helper()
	if err := wasmexec.CheckBatch(b); err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint32(b)
	out := make([]rec, 0, n)
	p := b[4:]
	for range n {
		kl, vl := binary.LittleEndian.Uint32(p), binary.LittleEndian.Uint32(p[4:])
		out = append(out, rec{string(p[8 : 8+kl]), string(p[8+kl : 8+kl+vl])})
		p = p[8+kl+vl:]
	}
	return out
}

const conformanceManifest = "map identity,map swap,map upper,flat_map explode,filter nonempty,reduce concat,reduce sum,map fail,map trap,flat_map fail_after"

// conformanceCase is one row of the table every guest SDK must pass
// (docs/conformance.md).
type conformanceCase struct {
	name    string
	chain   []string // a pipeline of map, flat_map and filter functions, or one reduce
	calls   [][]rec  // input batches, one call each
	want    []rec    // all the output, in order
	errKind wasmexec.ErrorKind
	errMsg  string
}

func conformanceCases() []conformanceCase {
	big := strings.Repeat("v", 16<<20)
	var tiny, tinyUpper []rec
	for i := range 100_000 {
		k := "k" + strconv.Itoa(i%97)
		tiny = append(tiny, rec{k, "x"})
		tinyUpper = append(tinyUpper, rec{strings.ToUpper(k), "X"})
	}
	return []conformanceCase{
		{name: "empty batch", chain: []string{"identity"}, calls: [][]rec{{}}, want: nil},
		{name: "empty keys and values", chain: []string{"identity"}, calls: [][]rec{{{"", ""}, {"k", ""}, {"", "v"}}},
			want: []rec{{"", ""}, {"k", ""}, {"", "v"}}},
		{name: "zero bytes in keys", chain: []string{"swap"}, calls: [][]rec{{{"a\x00b", "\x00"}, {"\x00\x00", "z"}}},
			want: []rec{{"\x00", "a\x00b"}, {"z", "\x00\x00"}}},
		{name: "a 16 MiB value", chain: []string{"swap"}, calls: [][]rec{{{"key", big}}}, want: []rec{{big, "key"}}},
		{name: "100000 tiny records", chain: []string{"upper"}, calls: [][]rec{tiny}, want: tinyUpper},
		{name: "upper leaves non-letters", chain: []string{"upper"}, calls: [][]rec{{{"aZ09é\xff", "mixed Case!"}}},
			want: []rec{{"AZ09é\xff", "MIXED CASE!"}}},
		{name: "a chain in one call", chain: []string{"explode", "nonempty", "swap", "upper"},
			calls: [][]rec{{{"k", "3"}, {"z", "0"}, {"q", ""}, {"w", "x"}}},
			want:  []rec{{"0", "K"}, {"1", "K"}, {"2", "K"}}},
		{name: "filter", chain: []string{"nonempty"}, calls: [][]rec{{{"a", ""}, {"b", "1"}, {"", "2"}}},
			want: []rec{{"b", "1"}, {"", "2"}}},
		{name: "many calls", chain: []string{"explode"}, calls: [][]rec{{{"a", "2"}}, {}, {{"b", "1"}, {"c", "12"}}},
			want: append([]rec{{"a", "0"}, {"a", "1"}, {"b", "0"}}, explodeWant("c", 12)...)},
		{name: "concat folds runs across calls", chain: []string{"concat"},
			calls: [][]rec{{{"a", "1"}, {"a", "2"}, {"b", "1"}}, {{"b", "2"}}, {}, {{"b", "3"}, {"c", "x"}}},
			want:  []rec{{"a", "1+2"}, {"b", "1+2+3"}, {"c", "x"}}},
		{name: "sum", chain: []string{"sum"},
			calls: [][]rec{{{"w", "18446744073709551614"}, {"w", "1"}, {"x", "7"}}, {{"x", "35"}}},
			want:  []rec{{"w", "18446744073709551615"}, {"x", "42"}}},
		{name: "a guest error", chain: []string{"fail"}, calls: [][]rec{{{"k", "v"}}},
			errKind: wasmexec.KindGuestError, errMsg: "fail: refusing record k"},
		{name: "a failure halfway through a batch", chain: []string{"fail_after"}, calls: [][]rec{{{"a", "1"}, {"boom", "2"}, {"c", "3"}}},
			errKind: wasmexec.KindGuestError, errMsg: "fail_after: boom"},
		{name: "a trap", chain: []string{"trap"}, calls: [][]rec{{{"k", "v"}}}, errKind: wasmexec.KindTrap},
	}
}

func explodeWant(k string, n int) []rec {
	var out []rec
	for i := range n {
		out = append(out, rec{k, strconv.Itoa(i)})
	}
	return out
}

// runCase runs one case through a module and returns the output or the
// error.
func runCase(ctx context.Context, t *testing.T, rt *wasmexec.Runtime, m *wasmexec.Module, c conformanceCase) ([]rec, error) {
	var steps []wasmexec.Step
	for _, name := range c.chain {
		f, err := m.Function(name)
		if err != nil {
			t.Fatal(err)
		}
		steps = append(steps, wasmexec.Step{Name: "conformance", Module: m, Function: f})
	}
	lim := wasmexec.Limits{MemoryBytes: 512 << 20}
	var out []rec
	if steps[0].Function.Kind == "reduce" {
		rd, err := rt.NewReducer(ctx, steps[0], lim)
		if err != nil {
			return nil, err
		}
		defer rd.Close(ctx)
		for _, call := range c.calls {
			b, err := rd.Reduce(ctx, encodeBatch(call))
			if err != nil {
				return nil, err
			}
			out = append(out, decodeBatch(t, b)...)
		}
		return append(out, decodeBatch(t, rd.Flush())...), nil
	}
	p, err := rt.NewPipeline(ctx, steps, lim)
	if err != nil {
		return nil, err
	}
	defer p.Close(ctx)
	for _, call := range c.calls {
		err := p.Push(ctx, encodeBatch(call), func(b []byte) error {
			out = append(out, decodeBatch(t, b)...)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// TestGuestSDKConformance runs the conformance table through the
// conformance module of every guest SDK, built from source.
func TestGuestSDKConformance(t *testing.T) {
	ctx := context.Background()
	rt, err := wasmexec.NewRuntime(ctx, wasmexec.Config{CacheDir: filepath.Join(os.TempDir(), "wasmgrid-test-cache")})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	cases := conformanceCases()
	for _, lang := range guestbuild.Languages {
		t.Run(lang, func(t *testing.T) {
			wasm := buildGuest(t, lang, filepath.Join("sdk", "guest", lang, "conformance"))
			m, err := rt.Load(ctx, "conformance-"+lang, wasm)
			if err != nil {
				t.Fatal(err)
			}
			var manifest []string
			for _, f := range m.Functions {
				manifest = append(manifest, f.Kind+" "+f.Name)
			}
			if got := strings.Join(manifest, ","); got != conformanceManifest {
				t.Fatalf("manifest\n %s\nwant\n %s", got, conformanceManifest)
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					got, err := runCase(ctx, t, rt, m, c)
					if c.errKind != 0 {
						var e *wasmexec.Error
						if !errors.As(err, &e) || e.Kind != c.errKind || (c.errMsg != "" && e.Msg != c.errMsg) {
							t.Fatalf("got %v, want a %v error with message %q", err, c.errKind, c.errMsg)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					if !equalRecs(got, c.want) {
						t.Fatalf("got %s\nwant %s", show(got), show(c.want))
					}
				})
			}
		})
	}
}

func equalRecs(a, b []rec) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func show(rs []rec) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d records:", len(rs))
	for i, r := range rs {
		if i == 5 {
			b.WriteString(" …")
			break
		}
		fmt.Fprintf(&b, " (%.20q, %.20q)", r.k, r.v)
	}
	return b.String()
}
