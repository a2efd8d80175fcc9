// Command go is the word-count guest module written in Go. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o wordcount.wasm .
package main

import (
	"github.com/wasmgrid/wasmgrid/examples/wordcount"
	guest "github.com/wasmgrid/wasmgrid/sdk/guest/go"
)

func init() {
	guest.FlatMap("split", wordcount.Split)
	guest.Reduce("sum", wordcount.Sum)
}

func main() {}
