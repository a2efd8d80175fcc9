// This file is a Go port of gensort.c, valsort.c and rand16.c, "Special BSD
// version 1.5", whose copyright notice and licence follow.
//
// Copyright (C) 2009 - 2016, Chris Nyberg
// All rights reserved.
//
// Redistribution and use in source and binary forms, with or without
// modification, are permitted provided that the following conditions
// are met:
//     * Redistributions of source code must retain the above copyright
//       notice, this list of conditions and the following disclaimer.
//     * Redistributions in binary form must reproduce the above copyright
//       notice, this list of conditions and the following disclaimer in
//       the documentation and/or other materials provided with the
//       distribution.
//     * Neither the names of Chris Nyberg nor Ordinal Technology Corp
//       may be used to endorse or promote products derived from this
//       software without specific prior written permission.
//
// THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS
// "AS IS" AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT
// LIMITED TO, THE IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR
// A PARTICULAR PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL <COPYRIGHT
// HOLDER> BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL,
// EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO,
// PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES; LOSS OF USE, DATA, OR
// PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY
// OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT
// (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
// OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.

// Package sortbench is a Go port of gensort and valsort version 1.5 by Chris
// Nyberg (http://sortbenchmark.org), the Sort Benchmark's input generator and
// output validator, for binary records (gensort without -a or -s) and ASCII
// records (gensort -a, without -s). It was ported from the "Special BSD
// version 1.5" sources, which carry a three-clause BSD licence; its copyright
// notice is kept at the top of sortbench.go.
package sortbench

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"strconv"
)

// RecordSize and KeySize of the Sort Benchmark's records. Records are
// ordered by their first KeySize bytes, compared as unsigned bytes (memcmp).
const (
	RecordSize = 100
	KeySize    = 10
)

// Uint128 is an unsigned 128-bit integer (Hi, Lo).
type Uint128 struct{ Hi, Lo uint64 }

// Add returns a + b mod 2**128 (rand16.c's add16): checksums of parts add up to the whole's.
func (a Uint128) Add(b Uint128) Uint128 {
	lo, carry := bits.Add64(a.Lo, b.Lo, 0)
	hi, _ := bits.Add64(a.Hi, b.Hi, carry)
	return Uint128{hi, lo}
}

// mul returns a * b mod 2**128 (rand16.c's mult16).
func (a Uint128) mul(b Uint128) Uint128 {
	hi, lo := bits.Mul64(a.Lo, b.Lo)
	hi += a.Lo*b.Hi + a.Hi*b.Lo
	return Uint128{hi, lo}
}

// String renders a Uint128 as valsort prints a checksum (rand16.c's
// u16_to_hex): lowercase hexadecimal without leading zeros, "0" for zero.
func (u Uint128) String() string {
	if u.Hi == 0 {
		return strconv.FormatUint(u.Lo, 16) // "%llx"
	}
	lo := strconv.FormatUint(u.Lo, 16) // "%llx%016llx"
	return strconv.FormatUint(u.Hi, 16) + "0000000000000000"[len(lo):] + lo
}

// lcg is one step function f(x) = (a*x + c) mod 2**128.
type lcg struct{ a, c Uint128 }

// gen holds the powers of two of the 128-bit linear congruential generator of
// rand16.c: gen[i] is f**(2**i). rand16.c lists the table as constants; it is
// computed here by squaring, f**(2**(i+1))(x) = a*(a*x + c) + c, and the test
// checks it against entries of the C table.
var gen = func() (g [128]lcg) {
	g[0] = lcg{
		a: Uint128{0x2360ed051fc65da4, 0x4385df649fccf645}, // 47026247687942121848144207491837523525
		c: Uint128{0x4a696d4772617952, 0x4950202020202001}, // 98910279301475397889117759788405497857
	}
	for i := 1; i < len(g); i++ {
		p := g[i-1]
		g[i] = lcg{a: p.a.mul(p.a), c: p.a.mul(p.c).Add(p.c)}
	}
	return g
}()

// nextRand is rand16.c's next_rand: the generator advanced one step.
func nextRand(r Uint128) Uint128 {
	return r.mul(gen[0].a).Add(gen[0].c)
}

// skipAheadRand is rand16.c's skip_ahead_rand: the random number that is
// advance steps from an initial random number of 0.
func skipAheadRand(advance Uint128) Uint128 {
	var r Uint128
	for i, m := 0, advance.Lo; m != 0 && i < 64; i++ {
		if m&(1<<i) != 0 {
			r = r.mul(gen[i].a).Add(gen[i].c)
			m &^= 1 << i
		}
	}
	for i, m := 0, advance.Hi; m != 0 && i < 64; i++ {
		if m&(1<<i) != 0 {
			r = r.mul(gen[i+64].a).Add(gen[i+64].c)
			m &^= 1 << i
		}
	}
	return r
}

// xorMask holds the constants gensort.c's gen_rec xors into the random
// numbers from which it takes each of a record's ten 10-byte parts. Only the
// top 16 bits of each Lo are nonzero, since only those are used.
var xorMask = [10]Uint128{
	{0, 0},
	{0xF0E8E4E2E1D8D4D2, 0xD1CC000000000000},
	{0xCAC9C6C5C3B8B4B2, 0xB1AC000000000000},
	{0xAAA9A6A5A39C9A99, 0x9695000000000000},
	{0x938E8D8B87787472, 0x716C000000000000},
	{0x6A696665635C5A59, 0x5655000000000000},
	{0x534E4D4B473C3A39, 0x3635000000000000},
	{0x332E2D2B271E1D1B, 0x170F000000000000},
	{0xC8C4C2C198949291, 0x8CE0000000000000},
	{0x170F332E2D2B271E, 0x1D1B000000000000},
}

// genRec is gensort.c's gen_rec. In version 1.5 every byte of a binary
// record is pseudo-random: record i is made from the ten random numbers
// X(i+1) .. X(i+10) of the generator's sequence X(k) = f**k(0), passed in q.
// Part j (bytes 10j .. 10j+9) is the top 80 bits of X(i+1+j) xor xorMask[j],
// most significant byte first (ASSIGN_10_BYTES); part 0 is the key.
func genRec(rec []byte, q []Uint128) {
	_ = rec[RecordSize-1]
	_ = q[9]
	for j := 0; j < 10; j++ {
		r, m := q[j], xorMask[j]
		binary.BigEndian.PutUint64(rec[10*j:], r.Hi^m.Hi)
		binary.BigEndian.PutUint16(rec[10*j+8:], uint16((r.Lo^m.Lo)>>48))
	}
}

// genASCIIRec is gensort.c's gen_ascii_rec, the record of `gensort -a`
// (unchanged since version 1.3). Record i is made from one random number, r =
// X(i+1), and from i itself:
//
//	bytes  0-7   key: the 8 lowest base-95 digits of r.Hi, least significant
//	             first, each as ' ' + digit (so ' ' .. '~')
//	bytes  8-9   key: the 2 lowest base-95 digits of r.Lo, likewise
//	bytes 10-11  "  "
//	bytes 12-43  i as 32 uppercase hexadecimal digits
//	bytes 44-45  "  "
//	bytes 46-97  the 13 low hexadecimal digits of r.Lo (bits 51..0; the C
//	             comment says "low 48 bits"), most significant first, each
//	             written 4 times
//	bytes 98-99  "\r\n"
func genASCIIRec(rec []byte, r, i Uint128) {
	const hex = "0123456789ABCDEF" // HEX_DIGIT
	_ = rec[RecordSize-1]
	t := r.Hi
	for j := 0; j < 8; j++ {
		rec[j] = ' ' + byte(t%95)
		t /= 95
	}
	t = r.Lo
	rec[8] = ' ' + byte(t%95)
	t /= 95
	rec[9] = ' ' + byte(t%95)
	rec[10], rec[11] = ' ', ' '
	for j := 0; j < 16; j++ {
		rec[12+j] = hex[i.Hi>>(60-4*j)&0xF]
		rec[28+j] = hex[i.Lo>>(60-4*j)&0xF]
	}
	rec[44], rec[45] = ' ', ' '
	for j := 0; j < 13; j++ {
		d := hex[r.Lo>>(48-4*j)&0xF]
		rec[46+4*j], rec[47+4*j], rec[48+4*j], rec[49+4*j] = d, d, d, d
	}
	rec[98], rec[99] = '\r', '\n'
}

// Record fills rec (RecordSize bytes) with record number i.
func Record(rec []byte, i Uint128) {
	var q [10]Uint128
	// init_rand_queue: the head of the queue is next_rand(skip_ahead_rand(i)).
	q[0] = nextRand(skipAheadRand(i))
	for j := 1; j < len(q); j++ {
		q[j] = nextRand(q[j-1])
	}
	genRec(rec, q[:])
}

// RecordASCII fills rec (RecordSize bytes) with ASCII record number i, as `gensort -a` writes it: printable keys, and a record that ends with "\r\n", so that the records are also lines.
//
// Every byte but the final "\r\n" is printable ASCII (' ' .. '~'), so each
// record is exactly one line of 99 bytes ('\r' included) and a line sort in
// byte order (LC_ALL=C sort, which compares lines as unsigned bytes, i.e.
// memcmp) orders the records by their first KeySize bytes, as valsort
// expects, then by the rest of the line. Bytes 10-11 are always "  " and
// bytes 12-43 are the record number in fixed-width uppercase hexadecimal,
// whose byte order is numeric order, so records whose keys tie come out in
// ascending record number: the order of a stable sort by key of gensort's
// output (unless that wraps past record 2**128-1), and no two records are
// equal lines. valsort compares only keys and accepts equal keys in any
// order, so this order validates as well. A sort in another locale, or a
// case-insensitive one (valsort -i), orders keys differently.
func RecordASCII(rec []byte, i Uint128) {
	// The head of init_rand_queue's queue, the only random number used.
	genASCIIRec(rec, nextRand(skipAheadRand(i)), i)
}

// genChunk is the number of records Generate builds before each write: about
// 1.6 MB.
const genChunk = 1 << 14

// Generate writes n binary records starting at record number start, exactly as `gensort -b<start> <n>` writes them, to w, and returns the checksum `gensort -c` prints (the 128-bit sum of the records' crc32s).
//
// Records are built genChunk at a time into one reusable buffer; the
// generator is skipped ahead only once, to start, and then stepped once per
// record, as gensort's rand_queue does.
func Generate(w io.Writer, start Uint128, n uint64) (Uint128, error) {
	return gensort(w, start, n, false)
}

// GenerateASCII is Generate for `gensort -a -b<start> <n>`: n ASCII records and their checksum (as `gensort -a -c` prints it).
func GenerateASCII(w io.Writer, start Uint128, n uint64) (Uint128, error) {
	return gensort(w, start, n, true)
}

// gensort is Generate, or GenerateASCII if ascii is set: gensort.c's main
// loop with gen_rec or gen_ascii_rec as Gen.
func gensort(w io.Writer, start Uint128, n uint64, ascii bool) (Uint128, error) {
	var sum Uint128
	if n == 0 {
		return sum, nil
	}
	buf := make([]byte, genChunk*RecordSize)
	// q[k] is X(s+1+k) for the chunk's first record s: record s+b is made
	// from q[b : b+10] (binary) or q[b] (ASCII). The last 9 entries are
	// carried to the next chunk.
	q := make([]Uint128, genChunk+9)
	q[0] = nextRand(skipAheadRand(start))
	for k := 1; k < 9; k++ {
		q[k] = nextRand(q[k-1])
	}
	i := start // the record number, as bump_queue advances it (mod 2**128)
	for n > 0 {
		m := genChunk
		if n < genChunk {
			m = int(n)
		}
		for k := 9; k < m+9; k++ {
			q[k] = nextRand(q[k-1])
		}
		for b := 0; b < m; b++ {
			rec := buf[b*RecordSize : (b+1)*RecordSize]
			if ascii {
				genASCIIRec(rec, q[b], i)
				i = i.Add(Uint128{0, 1})
			} else {
				genRec(rec, q[b:b+10])
			}
			sum = sum.Add(Uint128{0, uint64(crc32.ChecksumIEEE(rec))})
		}
		if _, err := w.Write(buf[:m*RecordSize]); err != nil {
			return Uint128{}, err
		}
		copy(q, q[m:m+9])
		n -= uint64(m)
	}
	return sum, nil
}

// Summary is what valsort reports about a sequence of records.
type Summary struct {
	Records        uint64
	Checksum       Uint128 // the 128-bit sum of the records' crc32s
	Duplicates     uint64  // records whose key equals the previous record's key
	Unordered      uint64  // records whose key is less than the previous record's key
	FirstUnordered uint64  // index of the first unordered record, if any
}

// ErrNoRecords is returned by Validate for an empty input: like valsort,
// which says "there must be at least one record to be validated".
var ErrNoRecords = errors.New("sortbench: there must be at least one record to be validated")

// Validate reads valFirst records at first, so that a small input costs
// little, then twice as many at each read, up to valChunk (about 4 MB).
const (
	valFirst = 64
	valChunk = 40000
)

// Validate reads records from r (a multiple of RecordSize bytes, else an error naming the offset) and summarizes them as valsort does.
//
// Binary and ASCII (gensort -a) records are validated alike: valsort.c has
// no ASCII mode, and compares the first 10 bytes of records with memcmp
// unless given -i (strcasecmp, which this package does not implement).
//
// It is valsort.c's summarize_records: keys are compared with memcmp, a key
// equal to the previous one counts as a duplicate, a smaller one as
// unordered, and FirstUnordered is the 0-based index of the first unordered
// record (0 when there is none; the first record cannot be unordered).
// Errors carry the Summary of the records read before them.
func Validate(r io.Reader) (Summary, error) {
	var s Summary
	var prev [KeySize]byte
	buf := make([]byte, valFirst*RecordSize)
	for {
		n, err := io.ReadFull(r, buf)
		full := n - n%RecordSize
		for off := 0; off < full; off += RecordSize {
			rec := buf[off : off+RecordSize]
			s.Checksum = s.Checksum.Add(Uint128{0, uint64(crc32.ChecksumIEEE(rec))})
			if s.Records > 0 {
				switch diff := bytes.Compare(prev[:], rec[:KeySize]); {
				case diff == 0:
					s.Duplicates++
				case diff > 0:
					if s.Unordered == 0 {
						s.FirstUnordered = s.Records
					}
					s.Unordered++
				}
			}
			copy(prev[:], rec[:KeySize])
			s.Records++
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			if full < n {
				return s, fmt.Errorf("sortbench: partial record of %d bytes found at end, at offset %d",
					n-full, s.Records*RecordSize)
			}
			if s.Records == 0 {
				return s, ErrNoRecords
			}
			return s, nil
		case err != nil:
			return s, fmt.Errorf("sortbench: record read error at offset %d: %w",
				s.Records*RecordSize+uint64(n-full), err)
		}
		if len(buf) < valChunk*RecordSize {
			buf = make([]byte, min(2*len(buf), valChunk*RecordSize))
		}
	}
}

// GenerateFiles writes n records, binary or ASCII, into files in-NNNNN of
// dir (consecutive record numbers, spread evenly) and returns their
// checksum.
func GenerateFiles(dir string, n uint64, files int, ascii bool) (Uint128, error) {
	var total Uint128
	if files < 1 {
		return total, errors.New("sortbench: GenerateFiles needs at least one file")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return total, err
	}
	var start uint64
	for i := range files {
		count := n / uint64(files)
		if i == files-1 {
			count = n - start
		}
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("in-%05d", i)))
		if err != nil {
			return total, err
		}
		w := bufio.NewWriterSize(f, 4<<20)
		gen := Generate
		if ascii {
			gen = GenerateASCII
		}
		sum, err := gen(w, Uint128{Lo: start}, count)
		if err = errors.Join(err, w.Flush(), f.Close()); err != nil {
			return total, err
		}
		total = total.Add(sum)
		start += count
	}
	return total, nil
}

// ValidateFiles validates files, in order, as one sequence of records.
func ValidateFiles(files []string) (Summary, error) {
	rs := make([]io.Reader, 0, len(files))
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return Summary{}, err
		}
		defer f.Close()
		rs = append(rs, f)
	}
	return Validate(io.MultiReader(rs...))
}
