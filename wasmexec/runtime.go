package wasmexec

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Config configures a Runtime. The zero value is usable.
type Config struct {
	// CacheDir, if set, keeps compiled machine code on disk across
	// processes, so a module compiles once per machine rather than once per
	// process. Empty means an in-memory cache only.
	CacheDir string
	// NoInterrupt compiles guests without the checks that let a deadline
	// or a cancellation stop a running guest. Guest loops run faster, but a
	// guest that never returns can then only be stopped by ending the
	// process. For benchmarks and for executors that a supervisor kills.
	NoInterrupt bool
	// Limits bound what a module may declare; checked before compiling.
	Limits ModuleLimits
	// LoadTimeout bounds reading a module's manifest, which runs its
	// initialization (a start function, _initialize); default 10s. Without
	// termination checks (NoInterrupt) it is only checked once the
	// initialization returns: such runtimes belong in processes that their
	// owner kills.
	LoadTimeout time.Duration
	// LoadMemory caps the linear memory of the instance that reads a
	// manifest; default 4 GiB, the most a wasm32 module can address.
	LoadMemory uint64
	// Logger receives compile events; nil discards them.
	Logger *slog.Logger
}

// Runtime compiles modules and instantiates them for tasks. It is safe for
// concurrent use; one Runtime serves every task of an agent.
type Runtime struct {
	loadTimeout time.Duration
	loadMemory  uint64
	rt          wazero.Runtime
	cache       wazero.CompilationCache
	cacheDir    string
	limits      ModuleLimits
	logger      *slog.Logger

	mu      sync.Mutex // protects modules
	modules map[[32]byte]*loading
}

// loading is a module being compiled, or compiled: concurrent Loads of the
// same bytes wait for the one compile.
type loading struct {
	done chan struct{}
	mod  *Module
	err  error
}

// NewRuntime creates a Runtime that compiles to machine code where wazero
// supports the platform (amd64, arm64) and interprets elsewhere.
func NewRuntime(ctx context.Context, cfg Config) (*Runtime, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var cache wazero.CompilationCache
	if cfg.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasmexec: compilation cache %s: %w", cfg.CacheDir, err)
		}
		cache = c
	} else {
		cache = wazero.NewCompilationCache()
	}
	rc := wazero.NewRuntimeConfig().
		WithCompilationCache(cache).
		// Without this a guest in an endless loop ignores its deadline.
		// It costs a check at every loop header; see RATIONALE.md.
		WithCloseOnContextDone(!cfg.NoInterrupt)
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("wasmexec: instantiate WASI: %w", err)
	}
	loadTimeout := cfg.LoadTimeout
	if loadTimeout <= 0 {
		loadTimeout = 10 * time.Second
	}
	loadMemory := cfg.LoadMemory
	if loadMemory == 0 || loadMemory > maxMemory {
		loadMemory = maxMemory
	}
	return &Runtime{loadTimeout: loadTimeout, loadMemory: loadMemory, rt: rt, cache: cache, cacheDir: cfg.CacheDir, limits: cfg.Limits.withDefaults(), logger: logger, modules: make(map[[32]byte]*loading)}, nil
}

// Close releases every compiled module.
func (r *Runtime) Close(ctx context.Context) error {
	err := r.rt.Close(ctx)
	return errors.Join(err, r.cache.Close(ctx))
}

// Function is one function of a module's manifest.
type Function struct {
	Index uint32
	Kind  string // map, flat_map, filter or reduce
	Name  string
}

// Module is a compiled, validated module with its manifest.
type Module struct {
	Hash      string // hex sha256 of the module's bytes
	Functions []Function
	// MemoryPages is the initial size of the module's memory, in 64 KiB
	// pages: a task whose memory limit is below it cannot run the module.
	MemoryPages uint32

	compiled wazero.CompiledModule
	// snap, once Preinitialize made it, is the state instances start
	// from.
	snap    atomic.Pointer[snapshot]
	globals []string // the exports of its mutable globals
	// unsnapshotable says why the module's globals could not be exported.
	unsnapshotable error
}

// prepareModule checks a module and returns what is compiled: the module
// with its tables bounded and, where it can be rewritten, its mutable
// globals exported (for Preinitialize's snapshots), with the names of
// those exports. unsnapshotable says why it could not be rewritten.
func prepareModule(wasm []byte, lim ModuleLimits) (out []byte, globals []string, unsnapshotable error, err error) {
	checked, err := checkModule(wasm, lim)
	if err != nil {
		return nil, nil, nil, err
	}
	out, globals, rerr := exportGlobals(checked)
	if rerr != nil {
		// The module runs as it is; it only cannot start from a snapshot.
		return checked, nil, rerr, nil
	}
	return out, globals, nil, nil
}

// ShortHash is the first 12 hex digits of the module's sha256.
func (m *Module) ShortHash() string { return m.Hash[:12] }

// Function returns the named function, or an error that lists the
// functions the module has.
func (m *Module) Function(name string) (Function, error) { return FindFunction(m.Functions, name) }

// FindFunction returns the named function of a manifest, or an error that
// lists the functions it has.
func FindFunction(fns []Function, name string) (Function, error) {
	for _, f := range fns {
		if f.Name == name {
			return f, nil
		}
	}
	names := make([]string, len(fns))
	for i, f := range fns {
		names[i] = f.Kind + " " + f.Name
	}
	return Function{}, fmt.Errorf("no function %q; it has: %s", name, strings.Join(names, ", "))
}

// requiredSignatures are the ABI's export signatures, as signature renders them.
var requiredSignatures = map[string]string{
	"wasmgrid_abi_version": "() -> (i32)",
	"wasmgrid_describe":    "() -> (i64)",
	"wasmgrid_alloc":       "(i32) -> (i32)",
	"wasmgrid_run":         "(i32, i32) -> (i32)",
	"wasmgrid_output":      "() -> (i64)",
}

func signature(params, results []api.ValueType) string {
	names := func(ts []api.ValueType) string {
		var s []string
		for _, t := range ts {
			s = append(s, api.ValueTypeName(t))
		}
		return strings.Join(s, ", ")
	}
	return "(" + names(params) + ") -> (" + names(results) + ")"
}

// requiredExports are the exports of guest ABI v1 that a module must have.
var requiredExports = []string{"wasmgrid_abi_version", "wasmgrid_describe", "wasmgrid_alloc", "wasmgrid_run", "wasmgrid_output"}

// Load compiles wasm (once per process for the same bytes), checks that it
// follows the guest ABI, and reads its manifest. name is used in errors only.
func (r *Runtime) Load(ctx context.Context, name string, wasm []byte) (*Module, error) {
	return r.LoadLimited(ctx, name, wasm, r.loadMemory)
}

// LoadLimited is Load with the memory the module may use while it
// initializes and reads its manifest: the memory limit of the tasks that
// will run it. A module already loaded is not loaded again.
func (r *Runtime) LoadLimited(ctx context.Context, name string, wasm []byte, memory uint64) (*Module, error) {
	if memory == 0 || memory > maxMemory {
		memory = maxMemory
	}
	sum := sha256.Sum256(wasm)
	r.mu.Lock()
	l, ok := r.modules[sum]
	if !ok {
		l = &loading{done: make(chan struct{})}
		r.modules[sum] = l
	}
	r.mu.Unlock()
	if ok {
		select {
		case <-l.done:
			return l.mod, l.err
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	l.mod, l.err = r.load(ctx, name, sum, wasm, memory)
	if l.err != nil {
		// Do not cache failures: the next Load may come with a live context.
		r.mu.Lock()
		delete(r.modules, sum)
		r.mu.Unlock()
	}
	close(l.done)
	return l.mod, l.err
}

func (r *Runtime) load(ctx context.Context, name string, sum [32]byte, wasm []byte, memory uint64) (*Module, error) {
	hash := hex.EncodeToString(sum[:])
	label := fmt.Sprintf("%s (sha256 %s)", name, hash[:12])
	invalid := func(format string, args ...any) error {
		return &Error{Module: label, Kind: KindInvalid, Msg: fmt.Sprintf(format, args...)}
	}
	checked, globals, unsnap, err := prepareModule(wasm, r.limits)
	if err != nil {
		return nil, invalid("%v", err)
	}
	compiled, err := r.compile(ctx, checked)
	if err != nil {
		return nil, invalid("compile: %v", err)
	}
	m := &Module{Hash: hash, compiled: compiled, globals: globals, unsnapshotable: unsnap}
	fail := func(err error) (*Module, error) {
		compiled.Close(ctx)
		return nil, err
	}
	exports := compiled.ExportedFunctions()
	var missing []string
	for _, e := range requiredExports {
		if _, ok := exports[e]; !ok {
			missing = append(missing, e)
		}
	}
	if len(missing) > 0 {
		return fail(invalid("missing exports %s: build it with a wasmgrid guest SDK (docs/abi.md)", strings.Join(missing, ", ")))
	}
	for _, e := range requiredExports {
		sig := requiredSignatures[e]
		def := exports[e]
		if got := signature(def.ParamTypes(), def.ResultTypes()); got != sig {
			return fail(invalid("export %s has the signature %s; guest ABI v1 wants %s (docs/abi.md)", e, got, sig))
		}
	}
	mem, ok := compiled.ExportedMemories()["memory"]
	if !ok {
		return fail(invalid("no exported memory named \"memory\""))
	}
	m.MemoryPages = mem.Min()
	// Read the manifest in a sandboxed instance with a memory cap and a
	// deadline: a hostile initialization must not hang the loader.
	ictx, cancel := context.WithTimeout(ctx, r.loadTimeout)
	defer cancel()
	inst, err := r.instantiate(ictx, m, label, Limits{MemoryBytes: memory})
	if err == nil {
		err = r.loadDeadline(ictx, label, "start function or _initialize")
	}
	if err != nil {
		return fail(r.loadError(err))
	}
	defer inst.Close(ctx)
	v, err := inst.call0(ictx, inst.abiVersion)
	if err != nil {
		err = inst.guestError(ictx, "wasmgrid_abi_version", err)
	} else {
		err = r.loadDeadline(ictx, label, "wasmgrid_abi_version")
	}
	if err != nil {
		return fail(r.loadError(err))
	}
	if uint32(v) != ABIVersion {
		return fail(invalid("guest ABI version %d; this host speaks version %d", uint32(v), ABIVersion))
	}
	packed, err := inst.call0(ictx, inst.describe)
	if err != nil {
		err = inst.guestError(ictx, "wasmgrid_describe", err)
	} else {
		err = r.loadDeadline(ictx, label, "wasmgrid_describe")
	}
	if err != nil {
		return fail(r.loadError(err))
	}
	manifest, err := inst.read(packed)
	if err != nil {
		return fail(invalid("wasmgrid_describe: %v", err))
	}
	fns, err := parseManifest(manifest)
	if err != nil {
		return fail(invalid("manifest: %v", err))
	}
	m.Functions = fns
	r.logger.Debug("module loaded", "module", name, "sha256", hash, "functions", len(fns))
	return m, nil
}

// Compile checks a module against the runtime's limits and compiles it,
// without running any of its code. A Load that follows finds the machine
// code compiled; callers that time a module's initialization separately
// from its compilation (which cannot be interrupted) call Compile first.
func (r *Runtime) Compile(ctx context.Context, name string, wasm []byte) error {
	sum := sha256.Sum256(wasm)
	label := fmt.Sprintf("%s (sha256 %s)", name, hex.EncodeToString(sum[:6]))
	checked, _, _, err := prepareModule(wasm, r.limits)
	if err != nil {
		return &Error{Module: label, Kind: KindInvalid, Msg: err.Error()}
	}
	compiled, err := r.compile(ctx, checked)
	if err != nil {
		return &Error{Module: label, Kind: KindInvalid, Msg: "compile: " + err.Error()}
	}
	// The engine keeps the machine code for the next compile of the same
	// bytes; the handle itself is not needed.
	_ = compiled
	return nil
}

// loadDeadline reports a load that returned but took longer than allowed:
// guest code without loops is not interrupted, but is not accepted either.
func (r *Runtime) loadDeadline(ctx context.Context, label, fn string) error {
	switch {
	case ctx.Err() == nil:
		return nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &Error{Module: label, Function: fn, Kind: KindTimeout, Msg: "deadline"}
	}
	return &Error{Module: label, Function: fn, Kind: KindCanceled, Msg: "canceled: " + context.Cause(ctx).Error()}
}

// loadError rewords a failure while reading a manifest: its deadline is the
// load's, not a task's.
func (r *Runtime) loadError(err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	if e.Function == "_initialize" {
		e.Function = "start function or _initialize"
	}
	switch e.Kind {
	case KindTimeout:
		e.Msg = fmt.Sprintf("reading its manifest took longer than the module load timeout (%s): its initialization runs too long", r.loadTimeout)
	}
	return e
}

// compile compiles a checked module. wazero verifies the checksum of a
// cached entry but then fails the compile instead of rebuilding it; a
// corrupt cache must never be trusted nor stop the agent, so the cache's
// entries are discarded and the module compiled afresh.
func (r *Runtime) compile(ctx context.Context, wasm []byte) (wazero.CompiledModule, error) {
	compiled, err := r.rt.CompileModule(ctx, wasm)
	if err == nil || r.cacheDir == "" || !strings.Contains(err.Error(), "compilationcache") {
		return compiled, err
	}
	r.logger.Warn("discarding a corrupt compilation cache", "dir", r.cacheDir, "err", err)
	if rmErr := clearDir(r.cacheDir); rmErr != nil {
		return nil, fmt.Errorf("%w (and clearing the cache failed: %v)", err, rmErr)
	}
	return r.rt.CompileModule(ctx, wasm)
}

// clearDir removes the files under dir, keeping the directories, which
// wazero's file cache creates once and expects to find.
func clearDir(dir string) error {
	var errs []error
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			errs = append(errs, os.Remove(path))
		}
		return err
	})
	return errors.Join(append(errs, err)...)
}

// ABIVersion is the guest ABI version this host speaks.
const ABIVersion = 1

var kinds = map[string]bool{"map": true, "flat_map": true, "filter": true, "reduce": true}

// parseManifest parses "KIND NAME\n" lines (docs/abi.md, "The manifest").
func parseManifest(b []byte) ([]Function, error) {
	if len(b) > 1<<20 {
		return nil, fmt.Errorf("%d bytes, more than 1 MiB", len(b))
	}
	text := string(b)
	if text != "" && !strings.HasSuffix(text, "\n") {
		return nil, errors.New("last line is not terminated by a newline")
	}
	var fns []Function
	seen := map[string]bool{}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if text == "" {
			break
		}
		kind, name, ok := strings.Cut(line, " ")
		if !ok || !kinds[kind] || !validName(name) {
			return nil, fmt.Errorf("line %d: %q is not \"KIND NAME\" with KIND one of map, flat_map, filter, reduce", i+1, line)
		}
		if seen[name] {
			return nil, fmt.Errorf("line %d: function %q declared twice", i+1, name)
		}
		seen[name] = true
		fns = append(fns, Function{Index: uint32(i), Kind: kind, Name: name})
	}
	if len(fns) == 0 {
		return nil, errors.New("the module declares no functions")
	}
	return fns, nil
}

// validName reports whether s matches [A-Za-z_][A-Za-z0-9_.-]{0,127}.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// Unload forgets a loaded module and releases its machine code; a later
// Load of the same bytes compiles it again (from the compilation cache, if
// there is one). No instance of it may be open.
func (r *Runtime) Unload(ctx context.Context, m *Module) error {
	if sum, err := hex.DecodeString(m.Hash); err == nil && len(sum) == sha256.Size {
		r.mu.Lock()
		if l := r.modules[[32]byte(sum)]; l != nil {
			select {
			case <-l.done:
				if l.mod == m {
					delete(r.modules, [32]byte(sum))
				}
			default: // another load of the bytes, under way
			}
		}
		r.mu.Unlock()
	}
	return m.compiled.Close(ctx)
}
