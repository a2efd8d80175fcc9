// Package guest is the Go guest SDK of wasmgrid: it turns plain Go functions
// into a WebAssembly module that speaks the guest ABI (docs/abi.md).
//
// A guest registers its functions by name in an init function and is built
// as a WASI reactor with the ordinary Go toolchain:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o guest.wasm .
//
// The package is standard library only. Everything but the wasm exports
// (export_wasip1.go) is portable Go, so the same registry runs, and is tested
// and benchmarked, natively.
package guest
