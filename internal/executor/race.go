//go:build race

package executor

// raceOverhead is added to DefaultOverhead in binaries built with the race
// detector (tests): an executor's shadow memory makes it ~240 MiB resident
// between attempts, ~320 MiB while compiling the Go word-count guest.
const raceOverhead = 384 << 20
