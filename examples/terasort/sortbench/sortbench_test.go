package sortbench

import (
	"bytes"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// generate returns the records and checksum of Generate(start, n).
func generate(t testing.TB, start Uint128, n uint64) ([]byte, Uint128) {
	t.Helper()
	var buf bytes.Buffer
	sum, err := Generate(&buf, start, n)
	if err != nil {
		t.Fatalf("Generate(%v, %d): %v", start, n, err)
	}
	if got, want := buf.Len(), int(n)*RecordSize; got != want {
		t.Fatalf("Generate(%v, %d) wrote %d bytes, want %d", start, n, got, want)
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
// carry of the record number from Lo into Hi.
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
	}
	rec := make([]byte, RecordSize)
	for _, tt := range tests {
		data, _ := generate(t, tt.start, tt.n)
		for k := uint64(0); k < tt.n; k++ {
			i := tt.start.add(Uint128{0, k})
			Record(rec, i)
			if got := data[k*RecordSize : (k+1)*RecordSize]; !bytes.Equal(got, rec) {
				t.Errorf("Generate(%v, %d) record %d = %x, Record(%v) = %x", tt.start, tt.n, k, got, i, rec)
			}
		}
	}
	whole, _ := generate(t, Uint128{}, 3)
	wrapped, _ := generate(t, Uint128{math.MaxUint64, math.MaxUint64 - 1}, 5)
	if !bytes.Equal(wrapped[2*RecordSize:], whole) {
		t.Error("record 2**128 is not record 0")
	}
}

// TestSkipAhead checks that Generate(k, n) equals records k.. of
// Generate(0, k+n), with chunk boundaries at several places.
func TestSkipAhead(t *testing.T) {
	const total = 2*genChunk + 100
	whole, _ := generate(t, Uint128{}, total)
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
	for _, tt := range tests {
		part, _ := generate(t, Uint128{0, tt.k}, tt.n)
		if want := whole[tt.k*RecordSize : (tt.k+tt.n)*RecordSize]; !bytes.Equal(part, want) {
			t.Errorf("Generate(%d, %d) differs from records %d.. of Generate(0, %d)", tt.k, tt.n, tt.k, total)
		}
	}
}

// TestChecksum checks the checksum against a published vector, against the
// crc32s of the records, and for additivity over partitions.
func TestChecksum(t *testing.T) {
	// The 128-bit sum of zlib crc32s, per record.
	data, sum := generate(t, Uint128{0, 12345}, 300)
	var want Uint128
	for off := 0; off < len(data); off += RecordSize {
		want = want.add(Uint128{0, uint64(crc32.ChecksumIEEE(data[off : off+RecordSize]))})
	}
	if sum != want {
		t.Errorf("checksum = %v, want %v", sum, want)
	}

	// Additivity: the checksum of a concatenation is the sum of the parts'.
	parts := []struct{ start, n uint64 }{{0, 1}, {1, 999}, {1000, genChunk + 7}, {1007 + genChunk, 3}}
	var total Uint128
	var end uint64
	for _, p := range parts {
		s, err := Generate(io.Discard, Uint128{0, p.start}, p.n)
		if err != nil {
			t.Fatal(err)
		}
		total = total.add(s)
		end = p.start + p.n
	}
	whole, err := Generate(io.Discard, Uint128{}, end)
	if err != nil {
		t.Fatal(err)
	}
	if whole != total {
		t.Errorf("checksum of records 0..%d = %v, sum of partitions' = %v", end, whole, total)
	}

	if s, err := Generate(io.Discard, Uint128{}, 0); err != nil || s != (Uint128{}) {
		t.Errorf("Generate(0, 0) = %v, %v; want 0, nil", s, err)
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
		if got := tt.a.add(tt.b); got != tt.want {
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
		s = s.add(Uint128{0, uint64(crc32.ChecksumIEEE(data[off : off+RecordSize]))})
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
	if _, err := Generate(&failWriter{n: 1}, Uint128{}, 3*genChunk); err == nil {
		t.Error("Generate ignored a write error")
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
