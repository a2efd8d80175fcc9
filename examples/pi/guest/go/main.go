// Command go is the pi guest module: Throw, Sum and Format of package pi.
package main

import (
	"github.com/wasmgrid/wasmgrid/examples/pi"
	guest "github.com/wasmgrid/wasmgrid/sdk/guest/go"
)

func init() {
	guest.Map("throw", pi.Throw)
	guest.Reduce("sum", pi.Sum)
	guest.Map("format", pi.Format)
}

func main() {}
