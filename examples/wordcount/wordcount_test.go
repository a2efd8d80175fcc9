package wordcount

import (
	"fmt"
	"testing"
)

func TestSplit(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "[]"},
		{"Hello, World!", "[hello world]"},
		{"  a1 B2\tc3  ", "[a1 b2 c3]"},
		{"don't stop-me now", "[don t stop me now]"},
		{"naïve café", "[na ve caf]"},
		{"x\x00y", "[x y]"},
		{"MIXED mixed MiXeD", "[mixed mixed mixed]"},
	}
	for _, tt := range tests {
		var got []string
		Split([]byte(tt.in), func(k, v []byte) {
			if string(v) != "1" {
				t.Fatalf("value %q", v)
			}
			got = append(got, string(k))
		})
		if fmt.Sprint(got) != tt.want && !(len(got) == 0 && tt.want == "[]") {
			t.Errorf("Split(%q) = %v, want %s", tt.in, got, tt.want)
		}
	}
}

func TestSum(t *testing.T) {
	if got := string(Sum([]byte("41"), []byte("1"))); got != "42" {
		t.Fatalf("Sum = %s", got)
	}
	if got := string(Sum([]byte("18446744073709551614"), []byte("1"))); got != "18446744073709551615" {
		t.Fatalf("Sum near the top = %s", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Sum of a non-number did not panic")
		}
	}()
	Sum([]byte("x"), []byte("1"))
}
