package wasmexec

import (
	"errors"
	"fmt"
	"strings"
)

// ModuleLimits bound what a module may declare. They are checked on the
// module's bytes before anything compiles it, so that a hostile module (a
// million functions, a table meant to be grown to a billion entries, a data
// segment larger than any task's memory) costs a scan, not a compile. Zero
// fields mean the defaults, which admit every guest SDK's modules with room
// to spare (a Go guest declares ~2,000 functions, ~35,000 data segments and a
// table of ~6,000 entries).
type ModuleLimits struct {
	MaxBytes         int    // size of the module; default 64 MiB
	MaxFunctions     int    // imported plus defined functions; default 100,000
	MaxFunctionBody  int    // bytes of one function's code; default 8 MiB
	MaxImports       int    // default 1,000
	MaxTables        int    // default 16
	MaxTableElements uint32 // initial size, and the clamp of every table's maximum; default 1 Mi
	MaxDataSegments  int    // default 200,000
	MaxDataBytes     int    // bytes of the data section; default 64 MiB
	MaxMemoryPages   uint32 // a memory's initial size, in 64 KiB pages; default 65536 (4 GiB)
	MaxGlobals       int    // default 100,000
}

func (l ModuleLimits) withDefaults() ModuleLimits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxBytes, 64<<20)
	def(&l.MaxFunctions, 100_000)
	def(&l.MaxFunctionBody, 8<<20)
	def(&l.MaxImports, 1000)
	def(&l.MaxTables, 16)
	def(&l.MaxDataSegments, 200_000)
	def(&l.MaxDataBytes, 64<<20)
	def(&l.MaxGlobals, 100_000)
	if l.MaxTableElements == 0 {
		l.MaxTableElements = 1 << 20
	}
	if l.MaxMemoryPages == 0 || l.MaxMemoryPages > 65536 {
		l.MaxMemoryPages = 65536
	}
	return l
}

// allowedImport reports whether a module may import a WASI function. In the
// sandbox every WASI function sees an empty world: no arguments, no
// environment, no directory to open files in (so the fd_* and path_*
// families only fail; writes to stdout and stderr go to the task's capped
// log), a fake clock and a seeded random source. The file functions are
// allowed because language runtimes link them whether a guest uses them or
// not (Go's os package does), and refusing those modules would refuse
// ordinary guests; the day a job may be granted a directory, they are how it
// reaches it. Sockets are refused outright: jobs never get a network.
func allowedImport(name string) bool {
	if strings.HasPrefix(name, "sock_") {
		return false
	}
	return wasiFunctions[name]
}

// wasiFunctions are the functions of wasi_snapshot_preview1.
var wasiFunctions = map[string]bool{
	"args_get": true, "args_sizes_get": true, "environ_get": true, "environ_sizes_get": true,
	"clock_res_get": true, "clock_time_get": true, "fd_advise": true, "fd_allocate": true,
	"fd_close": true, "fd_datasync": true, "fd_fdstat_get": true, "fd_fdstat_set_flags": true,
	"fd_fdstat_set_rights": true, "fd_filestat_get": true, "fd_filestat_set_size": true,
	"fd_filestat_set_times": true, "fd_pread": true, "fd_prestat_get": true, "fd_prestat_dir_name": true,
	"fd_pwrite": true, "fd_read": true, "fd_readdir": true, "fd_renumber": true, "fd_seek": true,
	"fd_sync": true, "fd_tell": true, "fd_write": true, "path_create_directory": true,
	"path_filestat_get": true, "path_filestat_set_times": true, "path_link": true, "path_open": true,
	"path_readlink": true, "path_remove_directory": true, "path_rename": true, "path_symlink": true,
	"path_unlink_file": true, "poll_oneoff": true, "proc_exit": true, "proc_raise": true,
	"sched_yield": true, "random_get": true, "sock_accept": true, "sock_recv": true,
	"sock_send": true, "sock_shutdown": true,
}

// checkModule scans a module's sections and checks them against lim. It
// returns the module to compile: the same bytes, except that every table
// without a maximum, or with one above lim.MaxTableElements, gets that
// limit as its maximum, so that table.grow cannot take unbounded host
// memory (wazero does not bound tables).
func checkModule(wasm []byte, lim ModuleLimits) ([]byte, error) {
	lim = lim.withDefaults()
	if len(wasm) > lim.MaxBytes {
		return nil, fmt.Errorf("the module is %d bytes; the limit is %d", len(wasm), lim.MaxBytes)
	}
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, errors.New("not a WebAssembly module: it does not start with \\0asm")
	}
	if string(wasm[4:8]) != "\x01\x00\x00\x00" {
		return nil, fmt.Errorf("unsupported WebAssembly version % x", wasm[4:8])
	}
	r := &reader{b: wasm, off: 8}
	var (
		funcs, imports, tables, globals int
		clampTables                     bool // some table needs a new maximum
	)
	for r.off < len(r.b) {
		id := r.byte()
		size := r.u32()
		if r.err != nil {
			return nil, r.fail("section header")
		}
		start := r.off
		end := start + int(size)
		if int(size) > len(r.b)-start {
			return nil, fmt.Errorf("truncated module: section %d at byte %d claims %d bytes, %d remain", id, start, size, len(r.b)-start)
		}
		sec := &reader{b: r.b[:end], off: start}
		switch id {
		case 2: // import
			n := int(sec.u32())
			if n > lim.MaxImports {
				return nil, fmt.Errorf("the module declares %d imports; the limit is %d", n, lim.MaxImports)
			}
			imports = n
			for range n {
				mod, name := sec.name(), sec.name()
				kind := sec.byte()
				if sec.err != nil {
					return nil, sec.fail("import section")
				}
				if mod != "wasi_snapshot_preview1" {
					return nil, fmt.Errorf("it imports %s.%s, which the host does not provide: a guest may import only WASI functions (docs/abi.md)", mod, name)
				}
				if kind != 0 {
					return nil, fmt.Errorf("it imports %s.%s as a %s; a guest may import only WASI functions and must define its own memory", mod, name, externKind(kind))
				}
				if strings.HasPrefix(name, "sock_") {
					return nil, fmt.Errorf("it imports %s.%s, which needs network sockets: jobs run without a network", mod, name)
				}
				if !allowedImport(name) {
					return nil, fmt.Errorf("it imports %s.%s, which is not a WASI preview 1 function", mod, name)
				}
				sec.u32() // type index
				funcs++
			}
		case 3: // function
			n := int(sec.u32())
			funcs += n
		case 4: // table
			n := int(sec.u32())
			tables += n
			if tables > lim.MaxTables {
				return nil, fmt.Errorf("the module declares %d tables; the limit is %d", tables, lim.MaxTables)
			}
			for range n {
				sec.byte() // reference type
				flags := sec.byte()
				min := sec.u32()
				var max uint32
				hasMax := flags&1 == 1
				if hasMax {
					max = sec.u32()
				}
				if sec.err != nil {
					return nil, sec.fail("table section")
				}
				if flags > 1 {
					return nil, fmt.Errorf("table with unsupported limits flags %#x", flags)
				}
				if min > lim.MaxTableElements {
					return nil, fmt.Errorf("a table of %d initial elements; the limit is %d", min, lim.MaxTableElements)
				}
				if !hasMax || max > lim.MaxTableElements {
					clampTables = true
				}
			}
		case 5: // memory
			n := int(sec.u32())
			for range n {
				flags := sec.byte()
				min := sec.u32()
				if flags&1 == 1 {
					sec.u32()
				}
				if sec.err != nil {
					return nil, sec.fail("memory section")
				}
				if min > lim.MaxMemoryPages {
					return nil, fmt.Errorf("a memory of %d initial pages (%d MiB); the limit is %d pages", min, uint64(min)*64/1024, lim.MaxMemoryPages)
				}
			}
		case 6: // global
			n := int(sec.u32())
			globals += n
			if globals > lim.MaxGlobals {
				return nil, fmt.Errorf("the module declares %d globals; the limit is %d", globals, lim.MaxGlobals)
			}
		case 10: // code
			n := int(sec.u32())
			for i := range n {
				body := int(sec.u32())
				if sec.err != nil {
					return nil, sec.fail("code section")
				}
				if body > lim.MaxFunctionBody {
					return nil, fmt.Errorf("function %d has %d bytes of code; the limit is %d", imports+i, body, lim.MaxFunctionBody)
				}
				if body > len(sec.b)-sec.off {
					return nil, fmt.Errorf("truncated module: function %d's code passes the end of its section", imports+i)
				}
				sec.off += body
			}
		case 11: // data
			n := int(sec.u32())
			if n > lim.MaxDataSegments {
				return nil, fmt.Errorf("the module declares %d data segments; the limit is %d", n, lim.MaxDataSegments)
			}
			if int(size) > lim.MaxDataBytes {
				return nil, fmt.Errorf("the module has %d bytes of data segments; the limit is %d", size, lim.MaxDataBytes)
			}
		}
		if sec.err != nil {
			return nil, sec.fail(fmt.Sprintf("section %d", id))
		}
		if funcs > lim.MaxFunctions {
			return nil, fmt.Errorf("the module declares %d functions; the limit is %d", funcs, lim.MaxFunctions)
		}
		r.off = end
	}
	if !clampTables {
		return wasm, nil
	}
	return rebuildTables(wasm, lim)
}

// rebuildTables re-encodes the table section with every maximum clamped to
// lim.MaxTableElements. checkModule has validated the module's structure.
func rebuildTables(wasm []byte, lim ModuleLimits) ([]byte, error) {
	out := make([]byte, 0, len(wasm)+32)
	out = append(out, wasm[:8]...)
	r := &reader{b: wasm, off: 8}
	for r.off < len(r.b) {
		hdr := r.off
		id := r.byte()
		size := r.u32()
		start := r.off
		end := start + int(size)
		if id != 4 {
			out = append(out, wasm[hdr:end]...)
			r.off = end
			continue
		}
		sec := &reader{b: wasm[:end], off: start}
		n := sec.u32()
		body := appendU32(nil, n)
		for range n {
			ref := sec.byte()
			flags := sec.byte()
			min := sec.u32()
			max := lim.MaxTableElements
			if flags&1 == 1 {
				max = min32(sec.u32(), lim.MaxTableElements)
			}
			body = append(body, ref, 1)
			body = appendU32(body, min)
			body = appendU32(body, max)
		}
		if sec.err != nil || sec.off != end {
			return nil, errors.New("malformed table section")
		}
		out = append(out, 4)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
		r.off = end
	}
	return out, nil
}

func min32(a, b uint32) uint32 {
	if a < b {
		return a
	}
	return b
}

func externKind(k byte) string {
	switch k {
	case 1:
		return "table"
	case 2:
		return "memory"
	case 3:
		return "global"
	}
	return fmt.Sprintf("kind %d", k)
}

// reader decodes the parts of the binary format that checkModule needs.
// Errors are sticky: after the first, every read returns zero.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(what string) error {
	return fmt.Errorf("malformed module: %s at byte %d: %v", what, r.off, r.err)
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.err = errors.New("unexpected end")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

// u32 reads an unsigned LEB128 of at most 5 bytes.
func (r *reader) u32() uint32 {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		if shift == 28 && c > 0x0f {
			r.err = errors.New("u32 overflows")
			return 0
		}
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.err = errors.New("u32 longer than 5 bytes")
	return 0
}

func (r *reader) name() string {
	n := int(r.u32())
	if r.err != nil {
		return ""
	}
	if n > len(r.b)-r.off {
		r.err = errors.New("name passes the end")
		return ""
	}
	s := string(r.b[r.off : r.off+n])
	r.off += n
	return s
}

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}
