// Command go is the PageRank example's guest module.
package main

import "github.com/wasmgrid/wasmgrid/examples/pagerank"

func init() { pagerank.Register() }

func main() {}
