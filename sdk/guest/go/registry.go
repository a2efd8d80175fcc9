package guest

import (
	"fmt"
	"regexp"
	"strings"
)

// Kind is the kind of a guest function, as the manifest names it.
type Kind string

// The function kinds of guest ABI v1.
const (
	KindMap     Kind = "map"
	KindFlatMap Kind = "flat_map"
	KindFilter  Kind = "filter"
	KindReduce  Kind = "reduce"
)

// ABIVersion is the guest ABI version this SDK implements.
const ABIVersion = 1

// function is one registered guest function. Exactly one of the fields
// after kind is set, according to kind.
type function struct {
	name    string
	kind    Kind
	mapFn   func(key, value []byte) ([]byte, []byte)
	flatFn  func(key, value []byte, emit func(key, value []byte))
	filter  func(key, value []byte) bool
	reducer func(a, b []byte) []byte
}

// Registry holds a module's functions in registration order, which is the
// order of the manifest. Guests use the package-level functions (Map,
// FlatMap, ...), which register into the registry that the wasm exports
// serve; a Registry of one's own is for running guest code natively, in tests
// and benchmarks.
type Registry struct {
	funcs  []function
	byName map[string]int

	// Scratch state reused across calls, so that a call allocates nothing
	// once the buffers have grown to the working size.
	out   []byte
	count uint32
	acc   []byte
}

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,127}$`)

func (r *Registry) add(f function) {
	if !nameRE.MatchString(f.name) {
		panic(fmt.Sprintf("wasmgrid guest: invalid function name %q: names match %s", f.name, nameRE))
	}
	if r.byName == nil {
		r.byName = make(map[string]int)
	}
	if _, dup := r.byName[f.name]; dup {
		panic(fmt.Sprintf("wasmgrid guest: function %q registered twice", f.name))
	}
	r.byName[f.name] = len(r.funcs)
	r.funcs = append(r.funcs, f)
}

// Map registers a function that turns each record into exactly one record.
func (r *Registry) Map(name string, f func(key, value []byte) (k, v []byte)) {
	r.add(function{name: name, kind: KindMap, mapFn: f})
}

// FlatMap registers a function of a record's value that emits zero or more
// records. emit copies its arguments, so f may reuse its buffers.
func (r *Registry) FlatMap(name string, f func(value []byte, emit func(k, v []byte))) {
	r.add(function{name: name, kind: KindFlatMap, flatFn: func(_, v []byte, emit func(k, v []byte)) { f(v, emit) }})
}

// FlatMapPairs registers a function of a record's key and value that emits
// zero or more records.
func (r *Registry) FlatMapPairs(name string, f func(key, value []byte, emit func(k, v []byte))) {
	r.add(function{name: name, kind: KindFlatMap, flatFn: f})
}

// Filter registers a predicate: records for which f returns false are dropped.
func (r *Registry) Filter(name string, f func(key, value []byte) bool) {
	r.add(function{name: name, kind: KindFilter, filter: f})
}

// Reduce registers an associative and commutative function that combines two
// values of the same key. f owns a: it may modify it and return it (appending
// to a[:0] avoids an allocation); it must not keep b.
func (r *Registry) Reduce(name string, f func(a, b []byte) []byte) {
	r.add(function{name: name, kind: KindReduce, reducer: f})
}

// Manifest returns the module's manifest: one "KIND NAME" line per function.
func (r *Registry) Manifest() []byte {
	var b strings.Builder
	for _, f := range r.funcs {
		b.WriteString(string(f.kind))
		b.WriteByte(' ')
		b.WriteString(f.name)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// Index returns the manifest index of the named function.
func (r *Registry) Index(name string) (int, bool) {
	i, ok := r.byName[name]
	return i, ok
}

var defaultRegistry Registry

// Map registers a map function in the module; see Registry.Map.
func Map(name string, f func(key, value []byte) (k, v []byte)) { defaultRegistry.Map(name, f) }

// FlatMap registers a flat_map function of the value; see Registry.FlatMap.
func FlatMap(name string, f func(value []byte, emit func(k, v []byte))) {
	defaultRegistry.FlatMap(name, f)
}

// FlatMapPairs registers a flat_map function of key and value; see
// Registry.FlatMapPairs.
func FlatMapPairs(name string, f func(key, value []byte, emit func(k, v []byte))) {
	defaultRegistry.FlatMapPairs(name, f)
}

// Filter registers a filter function in the module; see Registry.Filter.
func Filter(name string, f func(key, value []byte) bool) { defaultRegistry.Filter(name, f) }

// Reduce registers a reduce function in the module; see Registry.Reduce.
func Reduce(name string, f func(a, b []byte) []byte) { defaultRegistry.Reduce(name, f) }
