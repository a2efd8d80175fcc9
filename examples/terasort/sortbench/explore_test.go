package sortbench

import (
	"hash/crc32"
	"io"
	"testing"
)

func hexd(x uint64) byte {
	x &= 0xF
	if x >= 10 {
		return 'A' + byte(x) - 10
	}
	return '0' + byte(x)
}

func asciiSum(n uint64) Uint128 {
	var sum Uint128
	r := skipAheadRand(Uint128{})
	rec := make([]byte, 100)
	var num Uint128
	for i := uint64(0); i < n; i++ {
		r = nextRand(r)
		temp := r.Hi
		for k := 0; k < 8; k++ {
			rec[k] = byte(' ' + temp%95)
			temp /= 95
		}
		temp = r.Lo
		rec[8] = byte(' ' + temp%95)
		temp /= 95
		rec[9] = byte(' ' + temp%95)
		rec[10], rec[11] = ' ', ' '
		for k := 0; k < 16; k++ {
			rec[12+k] = hexd(num.Hi >> (60 - 4*k))
			rec[28+k] = hexd(num.Lo >> (60 - 4*k))
		}
		rec[44], rec[45] = ' ', ' '
		for k := 0; k < 13; k++ {
			c := hexd(r.Lo >> (48 - 4*k))
			rec[46+4*k], rec[47+4*k], rec[48+4*k], rec[49+4*k] = c, c, c, c
		}
		rec[98], rec[99] = '\r', '\n'
		sum = sum.add(Uint128{0, uint64(crc32.ChecksumIEEE(rec))})
		num = num.add(Uint128{0, 1})
	}
	return sum
}

func TestExplore(t *testing.T) {
	for _, n := range []uint64{163840, 1000000, 10000000, 20000000} {
		s, _ := Generate(io.Discard, Uint128{}, n)
		t.Logf("%d binary %s ascii %s", n, s, asciiSum(n))
	}
}
