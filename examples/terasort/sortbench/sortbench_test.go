package sortbench

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// mode is one of gensort's record formats: binary (Generate, Record) or
// ASCII (gensort -a: GenerateASCII, RecordASCII).
type mode struct {
	name   string
	gen    func(io.Writer, Uint128, uint64) (Uint128, error)
	record func([]byte, Uint128)
}

var modes = []mode{
	{"binary", Generate, Record},
	{"ascii", GenerateASCII, RecordASCII},
}

// generate returns the records and checksum of Generate(start, n).
func generate(t testing.TB, start Uint128, n uint64) ([]byte, Uint128) {
	t.Helper()
	return generateWith(t, Generate, start, n)
}

// generateWith returns the records and checksum of gen(start, n).
func generateWith(t testing.TB, gen func(io.Writer, Uint128, uint64) (Uint128, error), start Uint128, n uint64) ([]byte, Uint128) {
	t.Helper()
	var buf bytes.Buffer
	sum, err := gen(&buf, start, n)
	if err != nil {
		t.Fatalf("generating %d records at %v: %v", n, start, err)
	}
	if got, want := buf.Len(), int(n)*RecordSize; got != want {
		t.Fatalf("generating %d records at %v wrote %d bytes, want %d", n, start, got, want)
	}
	return buf.Bytes(), sum
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGenTable checks the computed powers of the generator against entries
// of the Gen[128] table of rand16.c (Special BSD version 1.5), copied here.
func TestGenTable(t *testing.T) {
	tests := []struct {
		i    int
		a, c Uint128
	}{
		{0, Uint128{0x2360ed051fc65da4, 0x4385df649fccf645}, Uint128{0x4a696d4772617952, 0x4950202020202001}},
		{1, Uint128{0x17bce35bdf69743c, 0x529ed9eb20e0ae99}, Uint128{0x95e0e48262b3edfe, 0x04479485c755b646}},
		{2, Uint128{0xf4dd417327db7a9b, 0xd194dfbe42d45771}, Uint128{0x882a02c315362b60, 0x765f100068b33a1c}},
		{3, Uint128{0x6347af777a7898f6, 0xd1a2d6f33505ffe1}, Uint128{0x5efc4abfaca23e8c, 0xa8edb1f2dfbf6478}},
		{10, Uint128{0xae4f079d54fbece1, 0x478331d3c6bef001}, Uint128{0x991965329dccb28d, 0x581199ab18c5fc00}},
		{31, Uint128{0x0a88c0a91cff4308, 0x29e6c7de00000001}, Uint128{0x9d6f1a00a8f3f76e, 0x7eb8d4bf80000000}},
		{63, Uint128{0xaf85d0c629e6c7de, 0x0000000000000001}, Uint128{0x7858ca25feb8d4bf, 0x8000000000000000}},
		{64, Uint128{0x5f0ba18c53cd8fbc, 0x0000000000000001}, Uint128{0xf0b1944bfd71a97f, 0x0000000000000000}},
		{100, Uint128{0x3cd8fbc000000000, 0x0000000000000001}, Uint128{0xd71a97f000000000, 0x0000000000000000}},
		{126, Uint128{0x0000000000000000, 0x0000000000000001}, Uint128{0xc000000000000000, 0x0000000000000000}},
		{127, Uint128{0x0000000000000000, 0x0000000000000001}, Uint128{0x8000000000000000, 0x0000000000000000}},
	}
	for _, tt := range tests {
		if got := gen[tt.i]; got.a != tt.a || got.c != tt.c {
			t.Errorf("gen[%d] = {a: %v, c: %v}, want {a: %v, c: %v}", tt.i, got.a, got.c, tt.a, tt.c)
		}
	}
}

// TestRecordKnownAnswers checks bytes of records derived by hand from the C
// source. Record i is made from X(i+1) .. X(i+10), where X(k) = f**k(0) and
// rand16.c's table gives X(2**i) = Gen[i].c; part j of a record is the top 80
// bits of its (j+1)th random number xor gen_rec's j-th constant.
func TestRecordKnownAnswers(t *testing.T) {
	tests := []struct {
		name string
		i    Uint128
		off  int
		want string
	}{
		// X(1) = Gen[0].c = 0x4a696d4772617952 4950..., "JimGrayRIP" in ASCII.
		{"record 0 key", Uint128{0, 0}, 0, "4a696d47726179524950"},
		// X(2) = Gen[1].c: 95e0e48262b3edfe^F0E8E4E2E1D8D4D2, 0447^D1CC.
		{"record 0 bytes 10-19", Uint128{0, 0}, 10, "65080060836b392cd58b"},
		// X(4) = Gen[2].c: 882a02c315362b60^AAA9A6A5A39C9A99, 765f^9695.
		{"record 0 bytes 30-39", Uint128{0, 0}, 30, "2283a466b6aab1f9e0ca"},
		// X(8) = Gen[3].c: 5efc4abfaca23e8c^332E2D2B271E1D1B, a8ed^170F.
		{"record 0 bytes 70-79", Uint128{0, 0}, 70, "6dd267948bbc2397bfe2"},
		{"record 1 key", Uint128{0, 1}, 0, "95e0e48262b3edfe0447"},
		{"record 3 key", Uint128{0, 3}, 0, "882a02c315362b60765f"},
		{"record 7 key", Uint128{0, 7}, 0, "5efc4abfaca23e8ca8ed"},
		// X(4) is part 2 of record 1 and part 1 of record 2.
		{"record 1 bytes 20-29", Uint128{0, 1}, 20, "42e3c406d68e9fd2c7f3"},
		{"record 2 bytes 10-19", Uint128{0, 2}, 10, "78c2e621f4eeffb2a793"},
		// X(2**64) = Gen[64].c, X(2**127) = Gen[127].c.
		{"record 2**64-1 key", Uint128{0, math.MaxUint64}, 0, "f0b1944bfd71a97f0000"},
		{"record 2**127-1 key", Uint128{1<<63 - 1, math.MaxUint64}, 0, "80000000000000000000"},
		// X(2**128) = X(0) = 0: the parts are gen_rec's constants themselves.
		{"record 2**128-1 key", Uint128{math.MaxUint64, math.MaxUint64}, 0, "00000000000000000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := make([]byte, RecordSize)
			Record(rec, tt.i)
			want := unhex(t, tt.want)
			if got := rec[tt.off : tt.off+len(want)]; !bytes.Equal(got, want) {
				t.Errorf("Record(%v)[%d:%d] = %x, want %x", tt.i, tt.off, tt.off+len(want), got, want)
			}
		})
	}
}

// TestRecordMatchesGenerate checks that Record, which skips ahead to each
// record, agrees with Generate, which steps the generator, including across a
// carry of the record number from Lo into Hi; and likewise RecordASCII and
// GenerateASCII, whose records also hold their record number.
func TestRecordMatchesGenerate(t *testing.T) {
	tests := []struct {
		start Uint128
		n     uint64
	}{
		{Uint128{0, 0}, 20},
		{Uint128{0, 2000}, 5},
		{Uint128{0, math.MaxUint64 - 2}, 6},
		{Uint128{math.MaxUint64, math.MaxUint64 - 1}, 4}, // wraps to record 0
		{Uint128{0, genChunk - 3}, 1},
		{Uint128{0, 5}, genChunk + 20}, // the record number across chunks
	}
	rec := make([]byte, RecordSize)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			for _, tt := range tests {
				data, _ := generateWith(t, m.gen, tt.start, tt.n)
				for k := uint64(0); k < tt.n; k++ {
					i := tt.start.Add(Uint128{0, k})
					m.record(rec, i)
					if got := data[k*RecordSize : (k+1)*RecordSize]; !bytes.Equal(got, rec) {
						t.Fatalf("generated(%v, %d) record %d = %q, record(%v) = %q", tt.start, tt.n, k, got, i, rec)
					}
				}
			}
			whole, _ := generateWith(t, m.gen, Uint128{}, 3)
			wrapped, _ := generateWith(t, m.gen, Uint128{math.MaxUint64, math.MaxUint64 - 1}, 5)
			if !bytes.Equal(wrapped[2*RecordSize:], whole) {
				t.Error("record 2**128 is not record 0")
			}
		})
	}
}

// TestSkipAhead checks that Generate(k, n) equals records k.. of
// Generate(0, k+n), and GenerateASCII(k, n) records k.. of
// GenerateASCII(0, k+n), with chunk boundaries at several places.
func TestSkipAhead(t *testing.T) {
	const total = 2*genChunk + 100
	tests := []struct{ k, n uint64 }{
		{0, total},
		{1, 10},
		{9, 1},
		{10, 11},
		{1000, 2000},
		{genChunk - 1, 2},
		{genChunk, genChunk + 100},
		{3, total - 3},
		{total, 0},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			whole, _ := generateWith(t, m.gen, Uint128{}, total)
			for _, tt := range tests {
				part, _ := generateWith(t, m.gen, Uint128{0, tt.k}, tt.n)
				if want := whole[tt.k*RecordSize : (tt.k+tt.n)*RecordSize]; !bytes.Equal(part, want) {
					t.Errorf("generated(%d, %d) differs from records %d.. of generated(0, %d)", tt.k, tt.n, tt.k, total)
				}
			}
		})
	}
}

// TestChecksum checks the checksum against the crc32s of the records, and
// for additivity over partitions.
func TestChecksum(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			// The 128-bit sum of zlib crc32s, per record.
			data, sum := generateWith(t, m.gen, Uint128{0, 12345}, 300)
			var want Uint128
			for off := 0; off < len(data); off += RecordSize {
				want = want.Add(Uint128{0, uint64(crc32.ChecksumIEEE(data[off : off+RecordSize]))})
			}
			if sum != want {
				t.Errorf("checksum = %v, want %v", sum, want)
			}

			// Additivity: the checksum of a concatenation is the sum of the parts'.
			parts := []struct{ start, n uint64 }{{0, 1}, {1, 999}, {1000, genChunk + 7}, {1007 + genChunk, 3}}
			var total Uint128
			var end uint64
			for _, p := range parts {
				s, err := m.gen(io.Discard, Uint128{0, p.start}, p.n)
				if err != nil {
					t.Fatal(err)
				}
				total = total.Add(s)
				end = p.start + p.n
			}
			whole, err := m.gen(io.Discard, Uint128{}, end)
			if err != nil {
				t.Fatal(err)
			}
			if whole != total {
				t.Errorf("checksum of records 0..%d = %v, sum of partitions' = %v", end, whole, total)
			}

			if s, err := m.gen(io.Discard, Uint128{}, 0); err != nil || s != (Uint128{}) {
				t.Errorf("generated(0, 0) = %v, %v; want 0, nil", s, err)
			}
		})
	}
}

// TestPublishedChecksum: "valsort" of 1,000,000 sorted gensort binary records
// reports "Records: 1000000 Checksum: 7a0e0d4868cd4" in a third-party report
// (a benchmark write-up found by searching public code for valsort output);
// gensort's own documentation publishes no checksum.
func TestPublishedChecksum(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 100 MB")
	}
	sum, err := Generate(io.Discard, Uint128{}, 1000000)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sum.String(), "7a0e0d4868cd4"; got != want {
		t.Errorf("checksum of gensort 1000000 = %s, want %s", got, want)
	}
}

func TestUint128(t *testing.T) {
	adds := []struct{ a, b, want Uint128 }{
		{Uint128{0, 1}, Uint128{0, 2}, Uint128{0, 3}},
		{Uint128{0, math.MaxUint64}, Uint128{0, 1}, Uint128{1, 0}}, // carry Lo→Hi
		{Uint128{5, 1 << 63}, Uint128{7, 1 << 63}, Uint128{13, 0}},
		{Uint128{math.MaxUint64, math.MaxUint64}, Uint128{0, 1}, Uint128{0, 0}}, // mod 2**128
	}
	for _, tt := range adds {
		if got := tt.a.Add(tt.b); got != tt.want {
			t.Errorf("%#v + %#v = %#v, want %#v", tt.a, tt.b, got, tt.want)
		}
	}
	muls := []struct{ a, b, want Uint128 }{
		{Uint128{0, 3}, Uint128{0, 5}, Uint128{0, 15}},
		{Uint128{0, 1 << 32}, Uint128{0, 1 << 32}, Uint128{1, 0}},
		{Uint128{0, math.MaxUint64}, Uint128{0, math.MaxUint64}, Uint128{math.MaxUint64 - 1, 1}},
		{Uint128{1, 0}, Uint128{1, 0}, Uint128{0, 0}}, // mod 2**128
	}
	for _, tt := range muls {
		if got := tt.a.mul(tt.b); got != tt.want {
			t.Errorf("%#v * %#v = %#v, want %#v", tt.a, tt.b, got, tt.want)
		}
	}
	strs := []struct {
		u    Uint128
		want string
	}{
		{Uint128{0, 0}, "0"},
		{Uint128{0, 0xabc}, "abc"},
		{Uint128{0, math.MaxUint64}, "ffffffffffffffff"},
		{Uint128{1, 0}, "10000000000000000"},
		{Uint128{0x12, 0x5}, "120000000000000005"},
		{Uint128{math.MaxUint64, math.MaxUint64}, "ffffffffffffffffffffffffffffffff"},
	}
	for _, tt := range strs {
		if got := tt.u.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.u, got, tt.want)
		}
	}
}

// records builds records from keys: each key (at most KeySize bytes) is
// zero-padded, and the rest of the record holds its index so that records
// with equal keys differ.
func records(keys ...string) []byte {
	var b []byte
	for i, k := range keys {
		rec := make([]byte, RecordSize)
		copy(rec, k)
		rec[KeySize] = byte(i)
		rec[RecordSize-1] = 0xFF
		b = append(b, rec...)
	}
	return b
}

func checksum(data []byte) Uint128 {
	var s Uint128
	for off := 0; off+RecordSize <= len(data); off += RecordSize {
		s = s.Add(Uint128{0, uint64(crc32.ChecksumIEEE(data[off : off+RecordSize]))})
	}
	return s
}

func TestValidate(t *testing.T) {
	gen, genSum := generate(t, Uint128{0, 777}, 5000)
	sorted := append([]byte(nil), gen...)
	recs := make([][]byte, 0, 5000)
	for off := 0; off < len(gen); off += RecordSize {
		recs = append(recs, gen[off:off+RecordSize])
	}
	sort.Slice(recs, func(i, j int) bool { return bytes.Compare(recs[i][:KeySize], recs[j][:KeySize]) < 0 })
	sorted = sorted[:0]
	for _, r := range recs {
		sorted = append(sorted, r...)
	}

	tests := []struct {
		name string
		data []byte
		want Summary
		// someUnordered: only check that Unordered and FirstUnordered are > 0.
		someUnordered bool
	}{
		{"sorted generated", sorted, Summary{Records: 5000, Checksum: genSum}, false},
		{"unsorted generated", gen, Summary{Records: 5000, Checksum: genSum}, true},
		{"one record", records("x"), Summary{Records: 1, Checksum: checksum(records("x"))}, false},
		{
			"duplicates", records("a", "b", "b", "b", "c"),
			Summary{Records: 5, Duplicates: 2}, false,
		},
		{
			"unordered", records("a", "c", "b", "d", "e", "a", "a"),
			Summary{Records: 7, Unordered: 2, FirstUnordered: 2, Duplicates: 1}, false,
		},
		{
			"first record out of order", records("b", "a", "c"),
			Summary{Records: 3, Unordered: 1, FirstUnordered: 1}, false,
		},
		{
			// Only the first KeySize bytes are compared, as unsigned bytes.
			"key bytes only", records("abcdefghij", "abcdefghij", "abcdefghi\xff", "\x80"),
			Summary{Records: 4, Duplicates: 1}, false,
		},
		{
			"descending", records("\x05", "\x04", "\x03", "\x02"),
			Summary{Records: 4, Unordered: 3, FirstUnordered: 1}, false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want.Checksum == (Uint128{}) {
				want.Checksum = checksum(tt.data)
			}
			for _, rd := range []struct {
				name string
				r    io.Reader
			}{
				{"bytes", bytes.NewReader(tt.data)},
				{"one byte at a time", iotest.OneByteReader(bytes.NewReader(tt.data))},
				{"half reads", iotest.HalfReader(bytes.NewReader(tt.data))},
			} {
				got, err := Validate(rd.r)
				if err != nil {
					t.Fatalf("%s: Validate: %v", rd.name, err)
				}
				if tt.someUnordered {
					if got.Unordered == 0 || got.FirstUnordered == 0 {
						t.Errorf("%s: Validate = %+v, want some unordered records", rd.name, got)
					}
					got.Unordered, got.FirstUnordered = 0, 0
				}
				if got != want {
					t.Errorf("%s: Validate = %+v, want %+v", rd.name, got, want)
				}
			}
		})
	}
}

// TestValidateGensortOrder: valsort of unsorted gensort output reports
// "First unordered record is record 2" in a published third-party run (of
// 10,000,000,000 records); that depends only on records 0, 1 and 2.
func TestValidateGensortOrder(t *testing.T) {
	data, sum := generate(t, Uint128{}, 3)
	got, err := Validate(bytes.NewReader(data))
	want := Summary{Records: 3, Checksum: sum, Unordered: 1, FirstUnordered: 2}
	if err != nil || got != want {
		t.Errorf("Validate(gensort 3) = %+v, %v; want %+v", got, err, want)
	}
}

func TestValidateErrors(t *testing.T) {
	data, _ := generate(t, Uint128{}, 3)
	for _, n := range []int{1, 99, 101, 250, 299} {
		_, err := Validate(bytes.NewReader(data[:n]))
		off := n - n%RecordSize
		if err == nil || !strings.Contains(err.Error(), "offset "+strconv.Itoa(off)) {
			t.Errorf("Validate of %d bytes: error %v, want one naming offset %d", n, err, off)
		}
	}
	if s, err := Validate(bytes.NewReader(nil)); !errors.Is(err, ErrNoRecords) || s != (Summary{}) {
		t.Errorf("Validate of empty input = %+v, %v; want ErrNoRecords", s, err)
	}
	boom := errors.New("boom")
	r := io.MultiReader(bytes.NewReader(data[:150]), iotest.ErrReader(boom))
	if _, err := Validate(r); !errors.Is(err, boom) || !strings.Contains(err.Error(), "offset 150") {
		t.Errorf("Validate with read error = %v, want boom at offset 150", err)
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n == 0 {
		return 0, errors.New("disk full")
	}
	w.n--
	return len(p), nil
}

func TestGenerateWriteError(t *testing.T) {
	for _, m := range modes {
		if _, err := m.gen(&failWriter{n: 1}, Uint128{}, 3*genChunk); err == nil {
			t.Errorf("%s: a write error was ignored", m.name)
		}
	}
}

func FuzzValidate(f *testing.F) {
	data, _ := generate(f, Uint128{}, 4)
	f.Add(data)
	f.Add(data[:250])
	f.Add([]byte{})
	f.Add(records("b", "a", "a"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Validate(bytes.NewReader(b))
		full := uint64(len(b) / RecordSize)
		if s.Records != full {
			t.Fatalf("Records = %d, want %d", s.Records, full)
		}
		if (err == nil) != (len(b) > 0 && len(b)%RecordSize == 0) {
			t.Fatalf("Validate of %d bytes: err = %v", len(b), err)
		}
		if s.Records > 0 && s.Duplicates+s.Unordered > s.Records-1 {
			t.Fatalf("summary %+v counts more than Records-1 comparisons", s)
		}
		if (s.Unordered == 0) != (s.FirstUnordered == 0) || (s.Unordered > 0 && s.FirstUnordered >= s.Records) {
			t.Fatalf("summary %+v: bad FirstUnordered", s)
		}
		if s.Checksum != checksum(b) {
			t.Fatalf("Checksum = %v, want %v", s.Checksum, checksum(b))
		}
	})
}

// asciiRec builds the ASCII record that gen_ascii_rec makes from its parts:
// the 10-byte key, the record number i, and filler, the 13 hexadecimal digits
// of the random number's Lo that the record repeats 4 times each.
func asciiRec(key string, i Uint128, filler string) string {
	var b strings.Builder
	b.WriteString(key + "  ")
	fmt.Fprintf(&b, "%016X%016X", i.Hi, i.Lo)
	b.WriteString("  ")
	for _, c := range filler {
		b.WriteString(strings.Repeat(string(c), 4))
	}
	b.WriteString("\r\n")
	return b.String()
}

// TestRecordASCIIKnownAnswers checks whole ASCII records derived by hand from
// gen_ascii_rec in gensort.c (Special BSD version 1.5; the same in the GPL
// version 1.3). Record i is made from r = X(i+1), the head of its random
// queue, with rand16.c's table giving X(2**k) = Gen[k].c:
//
//   - key bytes 0-7 are ' ' + the base-95 digits of r.Hi, least significant
//     first; bytes 8-9 are ' ' + the two low base-95 digits of r.Lo;
//   - "  ", record number i in 32 uppercase hexadecimal digits, "  ";
//   - r.Lo's hexadecimal digits 4..16 (bits 51..0), each 4 times; "\r\n".
//
// The base-95 digits were worked out with arbitrary-precision integers, not
// with this package.
func TestRecordASCIIKnownAnswers(t *testing.T) {
	max := uint64(math.MaxUint64)
	tests := []struct {
		name   string
		i      Uint128
		key    string
		filler string
	}{
		// X(1) = Gen[0].c = 0x4a696d4772617952 4950202020202001: r.Hi's base-95
		// digits are 33 83 70 33 39 40 45 21 ("AsfAGHM5"), r.Lo mod 95 = 79
		// ('o') and r.Lo/95 mod 95 = 77 ('m').
		{"record 0", Uint128{0, 0}, "AsfAGHM5om", "0202020202001"},
		// X(2) = Gen[1].c = 0x95e0e48262b3edfe 04479485c755b646: digits
		// 94 83 40 68 16 74 36 86, then 22 and 56.
		{"record 1", Uint128{0, 1}, "~sHd0jDv6X", "79485C755B646"},
		// X(4) = Gen[2].c = 0x882a02c315362b60 765f100068b33a1c: digits
		// 49 9 42 46 9 50 25 90, then 13 and 44.
		{"record 3", Uint128{0, 3}, "Q)JN)R9z-L", "F100068B33A1C"},
		// X(2**64) = Gen[64].c = 0xf0b1944bfd71a97f 0000000000000000: digits
		// 57 85 21 89 27 14 56 28; r.Lo = 0 gives "  " and zero filler.
		{"record 2**64-1", Uint128{0, max}, "Yu5y;.X<  ", "0000000000000"},
		// X(2**127) = Gen[127].c = 0x8000000000000000 0: digits
		// 18 87 81 33 94 77 16 26.
		{"record 2**127-1", Uint128{max >> 1, max}, "2wqA~m0:  ", "0000000000000"},
		// X(2**128) = X(0) = 0: an all-blank key.
		{"record 2**128-1", Uint128{max, max}, "          ", "0000000000000"},
	}
	rec := make([]byte, RecordSize)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			RecordASCII(rec, tt.i)
			if want := asciiRec(tt.key, tt.i, tt.filler); string(rec) != want {
				t.Errorf("RecordASCII(%v) =\n%q, want\n%q", tt.i, rec, want)
			}
		})
	}
}

// skewASCII is the Skew_ascii table of gensort.c (Special BSD version 1.5),
// the key prefixes that gensort -a -s substitutes. Its entry k is the first 6
// bytes of ASCII record k (as Skew_binary's entry k is of binary record k),
// though the source does not say so: that is how the table can be checked.
var skewASCII = [129]string{
	"AsfAGH",
	"~sHd0j",
	"uI^EYm",
	"Q)JN)R",
	"o4FoBk",
	"*}-Wz1",
	"0fssx}",
	"mz4VCN",
	"my+=5r",
	"5HA\\z%",
	"`PkXQ<",
	"GLSnlm",
	"swBzQ#",
	"9SC<z ",
	"o7~drs",
	"K~%q4]",
	"gj<m5S",
	"&~2Ch{",
	"B]az'~",
	",2K,DK",
	"}[v>zy",
	"kXrG^e",
	"v%^RG^",
	"vi@>8j",
	"}dA7*<",
	">Y$Kc)",
	"uF?T;*",
	"~%.@@,",
	"JPrAKc",
	"*i@lF3",
	"9UH>%F",
	"-^1~=a",
	".\\KqT&",
	"9RtsPa",
	"Fqy~]O",
	"Wj-%?e",
	"Rv]QHo",
	"1 e!og",
	"N,gk>3",
	"s.72Y.",
	"j*0`gc",
	"R+Sh=K",
	"x]w]=D",
	"maU!Uo",
	"smN$i ",
	"T}# `9",
	"G2oMVH",
	"(tv1'>",
	"RE%Z{o",
	"'%:YY?",
	"N(JuG%",
	"`E$,xR",
	"jzu$Fn",
	"|xaPO\\",
	"GCU4gf",
	"JU9s03",
	"D@v9\"\"",
	"OffB8(",
	"-_) R'",
	"'z4P|n",
	"[!Nbx&",
	"p?\"\\\\6",
	"+2A^xP",
	"-cuJvy",
	"ix^T<S",
	"EvtL^`",
	"\\E=uj=",
	"CU7l~\"",
	",vWe=|",
	"k|M.el",
	"u<#x_G",
	"K &>Q-",
	"E(g$5-",
	"~\\ptsn",
	"YhlPk`",
	"WBzul,",
	"q)epJs",
	"`WVkW&",
	"HXg#Z^",
	"-&8$lc",
	"^Spqwo",
	"P-6Ybw",
	"a`:;yd",
	"dO]G~-",
	"WM^;rv",
	"-WwU4B",
	"y'w/PZ",
	"#jA`l-",
	":!W.=v",
	"\"!r4ug",
	"O?(|_d",
	"xwWRjk",
	"Te (9@",
	"(cb621",
	"hg5x s",
	"w5nn`w",
	"qeQNoB",
	"6n>iMb",
	"uGz7S=",
	"rd)x<>",
	"xEwa^:",
	"':]$}b",
	"vZl\"Ji",
	"o%,!fS",
	"*+o@+t",
	"(CoKUh",
	"I>:9JQ",
	"eSzU!X",
	"[QZ{a&",
	"?:Yp4%",
	"'_>/ 4",
	"KrNW.!",
	"j17a3a",
	")o-QLH",
	"al;:OE",
	"I@L*`H",
	"<!pSWF",
	"1w@TZu",
	"Vh%|Ki",
	"h{ydAP",
	"]V9hCo",
	".TK[[l",
	"FktHsd",
	"Ki|$-M",
	"\\gWC3[",
	".\"^}, ",
	"k VC?n",
	"}]Kk&:",
	"12NSK|",
}

// TestRecordASCIISkewTable checks the first 6 bytes of ASCII records 0..128
// against gensort.c's Skew_ascii table.
func TestRecordASCIISkewTable(t *testing.T) {
	rec := make([]byte, RecordSize)
	for k, want := range skewASCII {
		RecordASCII(rec, Uint128{0, uint64(k)})
		if got := string(rec[:6]); got != want {
			t.Errorf("RecordASCII(%d)[:6] = %q, want Skew_ascii[%d] = %q", k, got, k, want)
		}
	}
}

// TestRecordASCIIPrintable checks that every byte of an ASCII record is
// printable ASCII (' ' .. '~') but the final "\r\n", for generated records and
// for the extreme random numbers.
func TestRecordASCIIPrintable(t *testing.T) {
	check := func(t *testing.T, name string, rec []byte) {
		t.Helper()
		for j, c := range rec[:RecordSize-2] {
			if c < ' ' || c > '~' {
				t.Fatalf("%s: byte %d is %#x, not printable ASCII: %q", name, j, c, rec)
			}
		}
		if string(rec[RecordSize-2:]) != "\r\n" {
			t.Fatalf("%s does not end with \\r\\n: %q", name, rec)
		}
	}
	max := uint64(math.MaxUint64)
	gens := []struct {
		start Uint128
		n     uint64
	}{
		{Uint128{0, 0}, genChunk + 10},
		{Uint128{0, 1 << 40}, 1000},
		{Uint128{0, max - 500}, 1000},
		{Uint128{max, max - 500}, 1000},
	}
	for _, g := range gens {
		data, _ := generateWith(t, GenerateASCII, g.start, g.n)
		for k := uint64(0); k < g.n; k++ {
			check(t, fmt.Sprintf("record %v+%d", g.start, k), data[k*RecordSize:(k+1)*RecordSize])
		}
		// Each record is one line.
		if lines := bytes.Count(data, []byte("\n")); uint64(lines) != g.n {
			t.Errorf("%d records from %v hold %d newlines", g.n, g.start, lines)
		}
	}
	rands := []Uint128{{0, 0}, {max, max}, {max, 0}, {0, max}, {1 << 63, 1 << 63}}
	rec := make([]byte, RecordSize)
	for _, r := range rands {
		genASCIIRec(rec, r, Uint128{max, max})
		check(t, fmt.Sprintf("gen_ascii_rec of %#v", r), rec)
	}
}

// TestPublishedChecksumASCII checks checksums of gensort -a output published
// in third-party reports (valsort's checksum of the sorted records equals
// gensort -c's: it is a sum of per-record crc32s):
//
//   - 163,840 and 13,107,200 records: "Checksum: 1400fed7bb2c2" and
//     "Checksum: 63f9af71da7682" in the README of github.com/tildeleb/heapsort,
//     whose datasets/gendata.sh makes them with "gensort -a 163840" and
//     "gensort -a 13107200" and whose validate.sh runs valsort on the sorted
//     output;
//   - 10,000,000 records: "Checksum: 4c48a881c779d5" in the README of a C++
//     external merge sort project that validates with gensort-1.5's valsort.
//     It does not say -a, but the binary checksum of gensort 10000000 is
//     4c4e32cca7d315, so its input was ASCII.
func TestPublishedChecksumASCII(t *testing.T) {
	tests := []struct {
		n    uint64
		want string
		long bool
	}{
		{163840, "1400fed7bb2c2", false},
		{10000000, "4c48a881c779d5", true},
		{13107200, "63f9af71da7682", true},
	}
	for _, tt := range tests {
		t.Run(strconv.FormatUint(tt.n, 10), func(t *testing.T) {
			if tt.long && testing.Short() {
				t.Skipf("generates %d MB", tt.n*RecordSize>>20)
			}
			sum, err := GenerateASCII(io.Discard, Uint128{}, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if got := sum.String(); got != tt.want {
				t.Errorf("checksum of gensort -a %d = %s, want %s", tt.n, got, tt.want)
			}
		})
	}
}

// TestASCIILineSort checks that sorting ASCII records as lines in byte order,
// as LC_ALL=C sort does (memcmp of the lines without their "\n"), sorts them
// by key as valsort wants, and breaks ties between equal keys by record
// number: the order of a stable sort by key of gensort's output.
func TestASCIILineSort(t *testing.T) {
	const n = 3000
	data, _ := generateWith(t, GenerateASCII, Uint128{0, 5000}, n)
	// Make ties: give every 7th record the key of record 0 and every 11th
	// that of record 1 (records 77, 154, .. get record 1's).
	for k := 7; k < n; k += 7 {
		copy(data[k*RecordSize:k*RecordSize+KeySize], data[:KeySize])
	}
	for k := 11; k < n; k += 11 {
		copy(data[k*RecordSize:k*RecordSize+KeySize], data[RecordSize:RecordSize+KeySize])
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	if last := lines[len(lines)-1]; len(last) == 0 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) != n {
		t.Fatalf("%d records split into %d lines", n, len(lines))
	}
	byLine := slices.Clone(lines)
	slices.SortFunc(byLine, func(a, b []byte) int {
		return bytes.Compare(a[:len(a)-1], b[:len(b)-1])
	})
	byKey := slices.Clone(lines)
	slices.SortStableFunc(byKey, func(a, b []byte) int {
		return bytes.Compare(a[:KeySize], b[:KeySize])
	})
	for k := range byLine {
		if !bytes.Equal(byLine[k], byKey[k]) {
			t.Fatalf("line %d of the line sort is %q, of the stable key sort %q", k, byLine[k], byKey[k])
		}
	}
	s, err := Validate(bytes.NewReader(bytes.Join(byLine, nil)))
	wantDups := uint64(n/7 + n/11 - n/77) // no other keys tie
	if err != nil || s.Records != n || s.Unordered != 0 || s.Duplicates != wantDups {
		t.Errorf("Validate(line-sorted records) = %+v, %v; want %d records, %d duplicates, none unordered", s, err, n, wantDups)
	}
}

// TestValidateGensortASCIIOrder: unsorted gensort -a output is first
// unordered at record 2 too: keys "AsfAGH..", "~sHd0j..", "uI^EYm..".
func TestValidateGensortASCIIOrder(t *testing.T) {
	data, sum := generateWith(t, GenerateASCII, Uint128{}, 3)
	got, err := Validate(bytes.NewReader(data))
	want := Summary{Records: 3, Checksum: sum, Unordered: 1, FirstUnordered: 2}
	if err != nil || got != want {
		t.Errorf("Validate(gensort -a 3) = %+v, %v; want %+v", got, err, want)
	}
}
