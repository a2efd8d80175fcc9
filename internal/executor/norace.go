//go:build !race

package executor

const raceOverhead = 0
