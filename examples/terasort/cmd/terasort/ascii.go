package main

import (
	"io"

	"github.com/wasmgrid/wasmgrid/examples/terasort/sortbench"
)

func generateASCII(w io.Writer, start sortbench.Uint128, n uint64) (sortbench.Uint128, error) {
	return sortbench.GenerateASCII(w, start, n)
}
