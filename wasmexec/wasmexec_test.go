package wasmexec

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/internal/guestbuild"
)

var (
	buildOnce sync.Map // dir -> *builtGuest
	buildDir  string
)

type builtGuest struct {
	once sync.Once
	wasm []byte
	err  error
}

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "wasmexec-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// guest builds the Go guest in dir once per test binary.
func guest(t testing.TB, dir string) []byte {
	t.Helper()
	v, _ := buildOnce.LoadOrStore(dir, &builtGuest{})
	b := v.(*builtGuest)
	b.once.Do(func() {
		out := filepath.Join(buildDir, strings.ReplaceAll(dir, "/", "_")+".wasm")
		if b.err = guestbuild.BuildGo(context.Background(), dir, out); b.err == nil {
			b.wasm, b.err = os.ReadFile(out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.wasm
}

func newRuntime(t testing.TB) *Runtime {
	t.Helper()
	ctx := context.Background()
	r, err := NewRuntime(ctx, Config{CacheDir: filepath.Join(buildDir, "wazero")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(ctx) })
	return r
}

func batchOf(recs ...[2]string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(recs)))
	for _, r := range recs {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(r[0])))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(r[1])))
		b = append(b, r[0]...)
		b = append(b, r[1]...)
	}
	return b
}

func records(t testing.TB, b []byte) [][2]string {
	t.Helper()
	if err := CheckBatch(b); err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint32(b)
	var out [][2]string
	p := b[4:]
	for range n {
		kl, vl := binary.LittleEndian.Uint32(p), binary.LittleEndian.Uint32(p[4:])
		out = append(out, [2]string{string(p[8 : 8+kl]), string(p[8+kl : 8+kl+vl])})
		p = p[8+kl+vl:]
	}
	return out
}

func TestLoadManifest(t *testing.T) {
	r := newRuntime(t)
	m, err := r.Load(context.Background(), "t", guest(t, "testdata/testguest"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range m.Functions {
		got = append(got, f.Kind+" "+f.Name)
	}
	want := "map upper,map swap,flat_map explode,filter nonempty,reduce concat,map fail,map exit,map loop,map bomb,map fillbomb,map now,map readfile"
	if strings.Join(got, ",") != want {
		t.Fatalf("manifest %v, want %s", got, want)
	}
	_, err = m.Function("uper")
	if err == nil || !strings.Contains(err.Error(), `no function "uper"; it has: map upper, map swap`) {
		t.Fatalf("missing function error = %v", err)
	}
	// Loading the same bytes again returns the cached module.
	m2, err := r.Load(context.Background(), "again", guest(t, "testdata/testguest"))
	if err != nil || m2 != m {
		t.Fatalf("second load: %v, same=%v", err, m2 == m)
	}
}

func TestLoadRejects(t *testing.T) {
	r := newRuntime(t)
	tests := []struct {
		name string
		wasm []byte
		want string
	}{
		{"not wasm", []byte("hello world, not wasm"), "not a WebAssembly module"},
		{"garbage after magic", []byte("\x00asm\x01\x00\x00\x00\xff\xff"), "malformed module"},
		{"no abi", guest(t, "testdata/noabi"), "missing exports wasmgrid_abi_version, wasmgrid_describe, wasmgrid_alloc, wasmgrid_run, wasmgrid_output"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Load(context.Background(), "bad", tt.wasm)
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindInvalid || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load = %v, want an invalid-module error containing %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "module bad (sha256 ") {
				t.Fatalf("error %q does not name the module", err)
			}
		})
	}
}

func TestParseManifest(t *testing.T) {
	tests := []struct {
		in, err string
	}{
		{"map a\n", ""},
		{"map a\nreduce b.c-d\n", ""},
		{"", "declares no functions"},
		{"map a", "not terminated"},
		{"mapp a\n", "line 1"},
		{"map 1a\n", "line 1"},
		{"map a\nfilter a\n", "declared twice"},
		{"map a b\n", "line 1"},
	}
	for _, tt := range tests {
		_, err := parseManifest([]byte(tt.in))
		if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("parseManifest(%q) = %v, want error %q", tt.in, err, tt.err)
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte("map a\nreduce b\n"))
	f.Add([]byte("flat_map x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fns, err := parseManifest(b)
		if err != nil {
			return
		}
		for i, fn := range fns {
			if fn.Index != uint32(i) || !kinds[fn.Kind] || !validName(fn.Name) {
				t.Fatalf("accepted bad function %+v", fn)
			}
		}
	})
}

func load(t *testing.T, r *Runtime) *Module {
	t.Helper()
	m, err := r.Load(context.Background(), "t", guest(t, "testdata/testguest"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func steps(t *testing.T, m *Module, names ...string) []Step {
	t.Helper()
	var s []Step
	for _, n := range names {
		f, err := m.Function(n)
		if err != nil {
			t.Fatal(err)
		}
		s = append(s, Step{Name: "t", Module: m, Function: f})
	}
	return s
}

func TestPipeline(t *testing.T) {
	r := newRuntime(t)
	m := load(t, r)
	ctx := context.Background()
	big := strings.Repeat("x", 16<<20)
	tests := []struct {
		name  string
		chain []string
		in    [][2]string
		want  [][2]string
	}{
		{"empty batch", []string{"upper"}, nil, nil},
		{"map", []string{"upper"}, [][2]string{{"a", "b"}, {"", ""}}, [][2]string{{"A", "B"}, {"", ""}}},
		{"zero bytes", []string{"swap"}, [][2]string{{"k\x00k", "\x00"}}, [][2]string{{"\x00", "k\x00k"}}},
		{"chain in one call", []string{"explode", "nonempty", "swap", "upper"}, [][2]string{{"k", "3"}, {"z", "0"}},
			[][2]string{{"0", "K"}, {"1", "K"}, {"2", "K"}}},
		{"filter drops", []string{"nonempty"}, [][2]string{{"a", ""}, {"b", "v"}}, [][2]string{{"b", "v"}}},
		{"16 MiB record", []string{"swap"}, [][2]string{{"k", big}}, [][2]string{{big, "k"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := r.NewPipeline(ctx, steps(t, m, tt.chain...), Limits{MemoryBytes: 256 << 20})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(ctx)
			if len(p.segments) != 1 {
				t.Fatalf("%d segments for one module, want 1", len(p.segments))
			}
			var got [][2]string
			err = p.Push(ctx, batchOf(tt.in...), func(b []byte) error { got = records(t, b); return nil })
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("got %.200v, want %.200v", got, tt.want)
			}
		})
	}
}

func TestReducerCarriesRunsAcrossCalls(t *testing.T) {
	r := newRuntime(t)
	m := load(t, r)
	ctx := context.Background()
	rd, err := r.NewReducer(ctx, steps(t, m, "concat")[0], Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close(ctx)
	var got [][2]string
	for _, b := range [][][2]string{
		{{"a", "1"}, {"a", "2"}, {"b", "1"}},
		{{"b", "2"}},
		{},
		{{"b", "3"}, {"c", "1"}},
	} {
		out, err := rd.Reduce(ctx, batchOf(b...))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, records(t, out)...)
	}
	got = append(got, records(t, rd.Flush())...)
	want := [][2]string{{"a", "1+2"}, {"b", "1+2+3"}, {"c", "1"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestGuestFailures(t *testing.T) {
	r := newRuntime(t)
	m := load(t, r)
	tests := []struct {
		fn      string
		timeout time.Duration
		mem     uint64
		kind    ErrorKind
		want    string
	}{
		{"fail", 0, 0, KindGuestError, "fail: refusing record k"},
		{"exit", 0, 0, KindTrap, "exited with code 3"},
		{"loop", 300 * time.Millisecond, 0, KindTimeout, "deadline"},
		{"bomb", 0, 64 << 20, KindOutOfMemory, "limit is 64 MiB (raise task.memory)"},
	}
	for _, tt := range tests {
		t.Run(tt.fn, func(t *testing.T) {
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			p, err := r.NewPipeline(ctx, steps(t, m, tt.fn), Limits{MemoryBytes: tt.mem})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(context.Background())
			err = p.Push(ctx, batchOf([2]string{"k", "v"}), func([]byte) error { return nil })
			var e *Error
			if !errors.As(err, &e) || e.Kind != tt.kind || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Push = %v, want %v containing %q", err, tt.kind, tt.want)
			}
			if !strings.Contains(err.Error(), "module t (sha256 ") || !strings.Contains(err.Error(), "function "+tt.fn) {
				t.Fatalf("error %q does not name module and function", err)
			}
			// A failed instance refuses further calls.
			if err2 := p.Push(context.Background(), batchOf(), func([]byte) error { return nil }); err2 == nil {
				t.Fatal("instance accepted a call after failing")
			}
		})
	}
	t.Run("exit stderr", func(t *testing.T) {
		p, _ := r.NewPipeline(context.Background(), steps(t, m, "exit"), Limits{})
		defer p.Close(context.Background())
		err := p.Push(context.Background(), batchOf([2]string{"k", "v"}), func([]byte) error { return nil })
		if !strings.Contains(fmt.Sprint(err), "about to exit") {
			t.Fatalf("error %v lacks the guest's stderr", err)
		}
	})
}

func TestMalformedCallRefusedByGuest(t *testing.T) {
	r := newRuntime(t)
	m := load(t, r)
	ctx := context.Background()
	inst, err := r.Instantiate(ctx, m, "t", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	_, err = inst.Call(ctx, []uint32{99}, "nope", batchOf())
	if err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("call of function 99 = %v", err)
	}
}

func TestInstancesAreIsolated(t *testing.T) {
	r := newRuntime(t)
	m := load(t, r)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := r.NewPipeline(ctx, steps(t, m, "upper"), Limits{MemoryBytes: 128 << 20})
			if err != nil {
				errs <- err
				return
			}
			defer p.Close(ctx)
			k := fmt.Sprintf("key%d", i)
			for range 50 {
				err := p.Push(ctx, batchOf([2]string{k, "v"}), func(b []byte) error {
					if got := records(t, b); got[0][0] != strings.ToUpper(k) {
						return fmt.Errorf("instance %d saw %q", i, got[0][0])
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCorruptCompilationCacheIsRebuilt(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	wasm := guest(t, "testdata/testguest")
	r1, err := NewRuntime(ctx, Config{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r1.Load(ctx, "t", wasm); err != nil {
		t.Fatal(err)
	}
	r1.Close(ctx)
	corrupted := 0
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(path)
			if len(b) > 64 {
				b[len(b)/2] ^= 0xff
				os.WriteFile(path, b, 0o644)
				corrupted++
			}
		}
		return nil
	})
	if corrupted == 0 {
		t.Fatal("no cache entry written")
	}
	r2, err := NewRuntime(ctx, Config{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close(ctx)
	m, err := r2.Load(ctx, "t", wasm)
	if err != nil {
		t.Fatalf("Load with a corrupt cache: %v", err)
	}
	p, err := r2.NewPipeline(ctx, steps(t, m, "upper"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	if err := p.Push(ctx, batchOf([2]string{"a", "b"}), func(b []byte) error {
		if got := records(t, b); got[0] != [2]string{"A", "B"} {
			t.Fatalf("got %v", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestSandboxIsDeterministic runs a guest that reads the clock, the random
// source, its environment and a file, in two instances: it sees the same
// values every time, and no file.
func TestSandboxIsDeterministic(t *testing.T) {
	r := newRuntime(t)
	m := load(t, r)
	ctx := context.Background()
	call := func(fn string) string {
		p, err := r.NewPipeline(ctx, steps(t, m, fn), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close(ctx)
		var got [][2]string
		if err := p.Push(ctx, batchOf([2]string{"k", ""}), func(b []byte) error { got = records(t, b); return nil }); err != nil {
			t.Fatal(err)
		}
		return got[0][1]
	}
	if a, b := call("now"), call("now"); a != b {
		t.Fatalf("two runs saw different worlds: %q and %q", a, b)
	} else {
		t.Logf("clock, random, environment and arguments as a guest sees them: %s", a)
	}
	if got := call("readfile"); got != "true" {
		t.Fatalf("readfile = %q, want true (the guest must not read files)", got)
	}
}

// TestPipelineKeep: map_values and key_by keep a part of each record;
// the step runs in a call of its own between the others.
func TestPipelineKeep(t *testing.T) {
	r := newRuntime(t)
	m := load(t, r)
	ctx := context.Background()
	in := batchOf([][2]string{{"k1", "v1"}, {"", "v\x002"}, {"\xff", ""}}...)
	for _, tt := range []struct {
		keep string
		want string
	}{
		{"key", "[[k1 V1] [ V\x002] [\xff ]]"},
		{"value", "[[K1 v1] [ v\x002] [\xff ]]"},
	} {
		s := steps(t, m, "nonempty", "upper", "nonempty")
		s[1].Keep = tt.keep
		p, err := r.NewPipeline(ctx, s, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.segments) != 3 {
			t.Errorf("keep %s: %d segments, want 3", tt.keep, len(p.segments))
		}
		var got [][2]string
		if err := p.Push(ctx, in, func(b []byte) error { got = records(t, b); return nil }); err != nil {
			t.Fatal(err)
		}
		p.Close(ctx)
		// nonempty drops the record with an empty value first.
		want := strings.Replace(tt.want, " [\xff ]", "", 1)
		if fmt.Sprint(got) != want {
			t.Errorf("keep %s: got %q, want %q", tt.keep, fmt.Sprint(got), want)
		}
	}
	s := steps(t, m, "explode")
	s[0].Keep = "key"
	if _, err := r.NewPipeline(ctx, s, Limits{}); err == nil || !strings.Contains(err.Error(), "needs a map function") {
		t.Errorf("keep on a flat_map: %v", err)
	}
}
