package guest

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

func call(funcs []uint32, recs ...[2]string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(funcs)))
	for _, f := range funcs {
		b = binary.LittleEndian.AppendUint32(b, f)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(recs)))
	for _, r := range recs {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(r[0])))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(r[1])))
		b = append(b, r[0]...)
		b = append(b, r[1]...)
	}
	return b
}

func decode(t *testing.T, b []byte) [][2]string {
	t.Helper()
	var out [][2]string
	msg := eachRecord(b, func(k, v []byte) { out = append(out, [2]string{string(k), string(v)}) })
	if msg != "" {
		t.Fatalf("output batch: %s", msg)
	}
	return out
}

func testRegistry() *Registry {
	r := &Registry{}
	r.Map("upper", func(k, v []byte) ([]byte, []byte) { return []byte(strings.ToUpper(string(k))), v })
	r.FlatMap("words", func(v []byte, emit func(k, v []byte)) {
		for _, w := range strings.Fields(string(v)) {
			emit([]byte(w), []byte("1"))
		}
	})
	r.Filter("short", func(k, _ []byte) bool { return len(k) <= 3 })
	r.Reduce("cat", func(a, b []byte) []byte { return append(append(a, '+'), b...) })
	r.Map("boom", func(k, v []byte) ([]byte, []byte) { panic("boom on " + string(k)) })
	return r
}

func TestManifest(t *testing.T) {
	want := "map upper\nflat_map words\nfilter short\nreduce cat\nmap boom\n"
	if got := string(testRegistry().Manifest()); got != want {
		t.Fatalf("manifest %q, want %q", got, want)
	}
}

func TestRun(t *testing.T) {
	tests := []struct {
		name   string
		funcs  []uint32
		in     [][2]string
		status int32
		want   string
	}{
		{"map", []uint32{0}, [][2]string{{"ab", "x"}}, StatusOK, "[[AB x]]"},
		{"empty batch", []uint32{0}, nil, StatusOK, "[]"},
		{"chain", []uint32{1, 2, 0}, [][2]string{{"", "a bb cccc dd"}}, StatusOK, "[[A 1] [BB 1] [DD 1]]"},
		{"reduce runs", []uint32{3}, [][2]string{{"a", "1"}, {"a", "2"}, {"b", "3"}, {"a", "4"}}, StatusOK, "[[a 1+2] [b 3] [a 4]]"},
		{"zero bytes", []uint32{0}, [][2]string{{"\x00", "\x00\x00"}}, StatusOK, "[[\x00 \x00\x00]]"},
		{"panic", []uint32{4}, [][2]string{{"k", "v"}}, StatusUserError, "boom on k"},
		{"reduce chained", []uint32{0, 3}, nil, StatusBadCall, "chained"},
		{"index out of range", []uint32{9}, nil, StatusBadCall, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRegistry()
			status, out := r.Run(call(tt.funcs, tt.in...))
			if status != tt.status {
				t.Fatalf("status %d (%q), want %d", status, out, tt.status)
			}
			got := string(out)
			if status == StatusOK {
				got = fmt.Sprint(decode(t, out))
			}
			if !strings.Contains(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRunRejectsMalformedCalls(t *testing.T) {
	good := call([]uint32{0}, [2]string{"k", "v"})
	tests := map[string][]byte{
		"empty":            nil,
		"no functions":     {0, 0, 0, 0},
		"truncated record": good[:len(good)-1],
		"trailing bytes":   append(append([]byte{}, good...), 0),
		"lengths overflow": append(good[:12], 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 'k'),
	}
	for name, b := range tests {
		if status, out := testRegistry().Run(b); status != StatusBadCall {
			t.Errorf("%s: status %d (%q), want StatusBadCall", name, status, out)
		}
	}
}

func TestRegisterRejectsBadNames(t *testing.T) {
	for _, name := range []string{"", "1x", "a b", strings.Repeat("x", 129)} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("name %q accepted", name)
				}
			}()
			(&Registry{}).Map(name, nil)
		}()
	}
}

// FuzzRun feeds arbitrary calls to a registry: it must answer every one
// with a status, never crash.
func FuzzRun(f *testing.F) {
	f.Add(call([]uint32{1, 2}, [2]string{"", "a b"}))
	f.Add(call([]uint32{3}, [2]string{"a", "1"}, [2]string{"a", "2"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		status, out := testRegistry().Run(b)
		if status == StatusOK {
			decode(t, out)
		}
	})
}

func BenchmarkRunFlatMap(b *testing.B) {
	r := testRegistry()
	var recs [][2]string
	for i := range 1000 {
		recs = append(recs, [2]string{"", fmt.Sprintf("w%d x y zz %d", i, i)})
	}
	c := call([]uint32{1}, recs...)
	b.SetBytes(int64(len(c)))
	for b.Loop() {
		if status, _ := r.Run(c); status != StatusOK {
			b.Fatal(status)
		}
	}
}
