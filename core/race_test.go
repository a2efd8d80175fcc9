//go:build race

package core

// raceEnabled: the race detector makes the simulation ~10x slower, so
// fewer seeds run by default under it; CI runs thousands without it.
const raceEnabled = true
