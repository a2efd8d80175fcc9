package wasmexec

import (
	"bytes"
	"strings"
	"testing"
)

// section encodes one section of the binary format.
func section(id byte, body ...[]byte) []byte {
	b := bytes.Join(body, nil)
	return append(appendU32([]byte{id}, uint32(len(b))), b...)
}

func vec(n uint32, items ...[]byte) []byte {
	return append(appendU32(nil, n), bytes.Join(items, nil)...)
}

func name(s string) []byte { return append(appendU32(nil, uint32(len(s))), s...) }

func module(sections ...[]byte) []byte {
	return append([]byte("\x00asm\x01\x00\x00\x00"), bytes.Join(sections, nil)...)
}

func TestCheckModule(t *testing.T) {
	lim := ModuleLimits{MaxFunctions: 10, MaxTableElements: 100, MaxDataSegments: 3, MaxDataBytes: 64, MaxMemoryPages: 16, MaxImports: 4, MaxFunctionBody: 32}
	imp := func(mod, fn string) []byte {
		return bytes.Join([][]byte{name(mod), name(fn), {0}, appendU32(nil, 0)}, nil)
	}
	tests := []struct {
		name string
		wasm []byte
		want string
	}{
		{"empty module", module(), ""},
		{"allowed imports", module(section(2, vec(2, imp("wasi_snapshot_preview1", "fd_write"), imp("wasi_snapshot_preview1", "clock_time_get")))), ""},
		{"file system import", module(section(2, vec(1, imp("wasi_snapshot_preview1", "path_open")))), ""},
		{"unknown WASI function", module(section(2, vec(1, imp("wasi_snapshot_preview1", "launch")))), "not a WASI preview 1 function"},
		{"socket import", module(section(2, vec(1, imp("wasi_snapshot_preview1", "sock_accept")))), "sock_accept, which needs network sockets"},
		{"unknown host function", module(section(2, vec(1, imp("env", "launch_missiles")))), "env.launch_missiles, which the host does not provide"},
		{"imported memory", module(section(2, vec(1, bytes.Join([][]byte{name("wasi_snapshot_preview1"), name("memory"), {2, 0}, appendU32(nil, 1)}, nil)))), "as a memory"},
		{"too many functions", module(section(3, vec(11, bytes.Repeat([]byte{0}, 11)))), "11 functions; the limit is 10"},
		{"too many imports", module(section(2, vec(5))), "5 imports; the limit is 4"},
		{"huge initial table", module(section(4, vec(1, []byte{0x70, 0}, appendU32(nil, 101)))), "table of 101 initial elements"},
		{"huge initial memory", module(section(5, vec(1, []byte{0}, appendU32(nil, 17)))), "a memory of 17 initial pages"},
		{"too many data segments", module(section(11, vec(4))), "4 data segments; the limit is 3"},
		{"too much data", module(section(11, vec(1, make([]byte, 64)))), "bytes of data segments; the limit is 64"},
		{"huge function body", module(section(10, vec(1, appendU32(nil, 33), make([]byte, 33)))), "function 0 has 33 bytes of code; the limit is 32"},
		{"truncated section", module(section(3, vec(1, []byte{0}))[:3]), "truncated module"},
		{"not wasm", []byte("#!/bin/sh\necho hi\n"), "not a WebAssembly module"},
		{"wrong version", []byte("\x00asm\x02\x00\x00\x00"), "unsupported WebAssembly version"},
		{"overlong leb", module([]byte{3, 0xff, 0xff, 0xff, 0xff, 0xff}), "malformed module"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := checkModule(tt.wasm, lim)
			if tt.want == "" {
				if err != nil || !bytes.Equal(out, tt.wasm) {
					t.Fatalf("checkModule = %v (changed: %v)", err, !bytes.Equal(out, tt.wasm))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("checkModule = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCheckModuleClampsTables(t *testing.T) {
	lim := ModuleLimits{MaxTableElements: 100}
	tables := section(4, vec(3,
		[]byte{0x70, 0, 5},             // min 5, no max
		[]byte{0x70, 1, 5, 0xe8, 0x07}, // min 5, max 1000
		[]byte{0x70, 1, 5, 50},         // min 5, max 50: kept
	))
	in := module(section(1, vec(0)), tables, section(3, vec(0)))
	out, err := checkModule(in, lim)
	if err != nil {
		t.Fatal(err)
	}
	want := module(section(1, vec(0)), section(4, vec(3,
		[]byte{0x70, 1, 5, 100},
		[]byte{0x70, 1, 5, 100},
		[]byte{0x70, 1, 5, 50},
	)), section(3, vec(0)))
	if !bytes.Equal(out, want) {
		t.Fatalf("clamped module\n% x\nwant\n% x", out, want)
	}
	// The result passes the check unchanged.
	again, err := checkModule(out, lim)
	if err != nil || !bytes.Equal(again, out) {
		t.Fatalf("second check: %v", err)
	}
}

func FuzzCheckModule(f *testing.F) {
	f.Add(module(section(4, vec(1, []byte{0x70, 0, 5}))))
	f.Add(module(section(2, vec(1, name("wasi_snapshot_preview1"), name("fd_write"), []byte{0, 0}))))
	f.Add(module(section(10, vec(1, []byte{2, 0, 0x0b}))))
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := ModuleLimits{MaxTableElements: 64}
		out, err := checkModule(b, lim)
		if err != nil {
			return
		}
		// Whatever passes, passes again unchanged: the clamp is a fixed point.
		again, err := checkModule(out, lim)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("re-check of an accepted module: %v", err)
		}
	})
}
