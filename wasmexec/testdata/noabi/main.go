// Command noabi is a valid wasm reactor that does not speak the guest ABI.
package main

//go:wasmexport hello
func hello() int32 { return 42 }

func main() {}
