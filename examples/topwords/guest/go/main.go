// Command go is the top-words guest module: the word count's split and
// sum, and the keying and formatting around the sort. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o topwords.wasm .
package main

import (
	"github.com/wasmgrid/wasmgrid/examples/topwords"
	"github.com/wasmgrid/wasmgrid/examples/wordcount"
	guest "github.com/wasmgrid/wasmgrid/sdk/guest/go"
)

func init() {
	guest.FlatMap("split", wordcount.Split)
	guest.Reduce("sum", wordcount.Sum)
	guest.Map("by_count", topwords.ByCount)
	guest.Map("format", topwords.Format)
}

func main() {}
