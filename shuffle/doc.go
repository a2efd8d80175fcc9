// Package shuffle is the sort-based shuffle of wasmgrid: a map task's records
// are partitioned by key, sorted, optionally combined, and written as one data
// file plus one index file holding one zstd-compressed, checksummed block per
// reduce partition. A reduce task opens its block in every map output and
// merges them in key order. Blocks are self-describing (docs/shuffle.md,
// "Shuffle block format, version 1"), so they can be served verbatim over a
// network; the package itself does no networking, no logging and starts no
// goroutines.
package shuffle
