// Package wordcount holds the logic of the word-count example: Split breaks a
// line into lowercased words and Sum adds two decimal counts. The Go guest in
// guest/go registers these functions in a WebAssembly module; the native
// benchmark and the tests call them directly, so wasm and native Go run the
// very same code.
package wordcount
