package executor

import (
	"fmt"
	"testing"

	"github.com/wasmgrid/wasmgrid/internal/batch"
)

func recs(kvs ...string) []byte {
	b := batch.NewBuilder(1 << 20)
	for i := 0; i < len(kvs); i += 2 {
		b.Add([]byte(kvs[i]), []byte(kvs[i+1]))
	}
	return b.Bytes()
}

func show(b []byte) string {
	s := ""
	it := batch.Checked(b)
	for it.Next() {
		s += fmt.Sprintf("%q=%q ", it.Key(), it.Value())
	}
	return s
}

func TestBuiltinCombiners(t *testing.T) {
	out, err := combineCount(recs("a", "1", "a", "2", "b", "1", "\xff", "5", "\xff", "1"))
	if err != nil || show(out) != `"a"="3" "b"="1" "\xff"="6" ` {
		t.Errorf("combineCount = %s, %v", show(out), err)
	}
	if _, err := combineCount(recs("a", "x")); err == nil {
		t.Error("combineCount of a non-count succeeded")
	}
	out, _ = combineFirst(recs("a", "", "a", "", "b", ""))
	if show(out) != `"a"="" "b"="" ` {
		t.Errorf("combineFirst = %s", show(out))
	}
	if got := show(countOne(recs("k", "anything", "", "x"))); got != `"k"="1" ""="1" ` {
		t.Errorf("countOne = %s", got)
	}
	k := distinctKey(nil, []byte("key\x00"), []byte("value"))
	if key, value, err := splitDistinctKey(k); err != nil || string(key) != "key\x00" || string(value) != "value" {
		t.Errorf("distinct key round trip: %q %q %v", key, value, err)
	}
	for _, bad := range [][]byte{nil, {9, 0, 0, 0, 'x'}} {
		if _, _, err := splitDistinctKey(bad); err == nil {
			t.Errorf("splitDistinctKey(%q) succeeded", bad)
		}
	}
}

func TestReduceSide(t *testing.T) {
	var got string
	emit := func(k, v []byte) error { got += fmt.Sprintf("%q=%q ", k, v); return nil }
	r := &reduceSide{kind: "count", emit: emit}
	for _, kv := range [][2]string{{"a", "2"}, {"a", "3"}, {"b", "1"}} {
		if err := r.add([]byte(kv[0]), []byte(kv[1])); err != nil {
			t.Fatal(err)
		}
	}
	r.flush()
	if got != `"a"="5" "b"="1" ` {
		t.Errorf("count: %s", got)
	}
	got = ""
	r = &reduceSide{kind: "group", emit: emit}
	r.add([]byte("a"), []byte("x"))
	r.add([]byte("a"), []byte("yy"))
	r.add([]byte("b"), nil)
	r.flush()
	want := fmt.Sprintf("%q=%q %q=%q ", "a", AppendGroupedValues(nil, [][]byte{[]byte("x"), []byte("yy")}), "b", AppendGroupedValues(nil, [][]byte{{}}))
	if got != want {
		t.Errorf("group: %s, want %s", got, want)
	}
}

// sliceKeyed is a keyed input over sorted (key, value) pairs.
type sliceKeyed struct {
	kvs [][2]string
	i   int
}

func (s *sliceKeyed) Next() bool    { s.i++; return s.i <= len(s.kvs) }
func (s *sliceKeyed) Key() []byte   { return []byte(s.kvs[s.i-1][0]) }
func (s *sliceKeyed) Value() []byte { return []byte(s.kvs[s.i-1][1]) }
func (s *sliceKeyed) Err() error    { return nil }

func TestMergeJoin(t *testing.T) {
	left := [][2]string{{"a", "1"}, {"b", "2"}, {"b", "3"}, {"d", "4"}, {"\xff", "5"}}
	right := [][2]string{{"b", "x"}, {"b", "y"}, {"c", "z"}, {"\xff", "w"}}
	run := func(outer bool) []string {
		var got []string
		err := mergeJoin(&sliceKeyed{kvs: left}, &sliceKeyed{kvs: right}, outer, func(k, v []byte) error {
			var vals []string
			n := int(v[0])
			v = v[4:]
			for range n {
				l := int(v[0])
				vals = append(vals, string(v[4:4+l]))
				v = v[4+l:]
			}
			got = append(got, fmt.Sprintf("%s:%v", k, vals))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	inner := fmt.Sprint(run(false))
	if want := "[b:[2 x] b:[2 y] b:[3 x] b:[3 y] \xff:[5 w]]"; inner != want {
		t.Errorf("join = %s, want %s", inner, want)
	}
	outer := fmt.Sprint(run(true))
	if want := "[a:[1] b:[2 x] b:[2 y] b:[3 x] b:[3 y] d:[4] \xff:[5 w]]"; outer != want {
		t.Errorf("left outer join = %s, want %s", outer, want)
	}
	// Either side empty.
	if got := run(false); len(got) == 0 {
		t.Fatal("sanity")
	}
	var n int
	mergeJoin(&sliceKeyed{}, &sliceKeyed{kvs: right}, true, func(k, v []byte) error { n++; return nil })
	mergeJoin(&sliceKeyed{kvs: left}, &sliceKeyed{}, false, func(k, v []byte) error { n++; return nil })
	if n != 0 {
		t.Errorf("joins with an empty side emitted %d records", n)
	}
}
