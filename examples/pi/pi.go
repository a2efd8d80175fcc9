// Package pi holds the logic of the Monte Carlo estimate of pi, as
// SparkPi computes it: throw points in the unit square and count those
// inside the quarter circle. The records come from a generate source (the
// numbers 0..n-1); each number seeds its point with splitmix64, so every
// run, attempt and language gives the same estimate. The guest in guest/go
// registers Throw, Sum and Format.
package pi

import (
	"bytes"
	"fmt"
	"strconv"
)

// Point is the point of throw number i, in [0,1)², from two splitmix64
// steps.
func Point(i uint64) (x, y float64) {
	a := splitmix64(2 * i)
	b := splitmix64(2*i + 1)
	return float64(a>>11) / (1 << 53), float64(b>>11) / (1 << 53)
}

func splitmix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Throw maps the decimal throw number in value to ("pi", "hits throws"):
// "1 1" inside the quarter circle, "0 1" outside.
func Throw(_, value []byte) (k, v []byte) {
	i, err := strconv.ParseUint(string(value), 10, 64)
	if err != nil {
		return []byte("pi"), []byte("0 0")
	}
	x, y := Point(i)
	if x*x+y*y < 1 {
		return []byte("pi"), []byte("1 1")
	}
	return []byte("pi"), []byte("0 1")
}

// Sum adds two "hits throws" pairs.
func Sum(a, b []byte) []byte {
	ha, ta := pair(a)
	hb, tb := pair(b)
	return fmt.Appendf(nil, "%d %d", ha+hb, ta+tb)
}

func pair(b []byte) (hits, throws uint64) {
	h, t, _ := bytes.Cut(b, []byte(" "))
	hits, _ = strconv.ParseUint(string(h), 10, 64)
	throws, _ = strconv.ParseUint(string(t), 10, 64)
	return hits, throws
}

// Format turns the total into the line SparkPi prints.
func Format(_, value []byte) (k, v []byte) {
	hits, throws := pair(value)
	return nil, fmt.Appendf(nil, "Pi is roughly %.6f (%d of %d throws inside)", Estimate(hits, throws), hits, throws)
}

// Estimate is 4 × hits / throws.
func Estimate(hits, throws uint64) float64 {
	if throws == 0 {
		return 0
	}
	return 4 * float64(hits) / float64(throws)
}
