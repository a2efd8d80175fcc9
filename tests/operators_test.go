package tests

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wasmgrid/wasmgrid/sdk"
	"github.com/wasmgrid/wasmgrid/sdk/local"
)

// hexPairs renders records as sorted "hex(key)\thex(value)" lines.
func hexPairs[R any](recs []R, kv func(R) ([]byte, []byte)) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		k, v := kv(r)
		out[i] = hex.EncodeToString(k) + "\t" + hex.EncodeToString(v)
	}
	slices.Sort(out)
	return out
}

func pairKV(r [2][]byte) ([]byte, []byte)    { return r[0], r[1] }
func recordKV(r sdk.Record) ([]byte, []byte) { return r.Key, r.Value }

// TestNarrowAndAggregateOperators runs map_values, key_by, map_partitions, sample,
// aggregate_by_key and cogroup, and the collect and count actions, on
// records with keys that are not UTF-8 and one key holding half of them,
// over 5 partitions (some empty), against native references.
func TestNarrowAndAggregateOperators(t *testing.T) {
	dir := t.TempDir()
	recs := groupRecords(t, dir)
	// The right side of the cogroup: every 7th record, and keys the left
	// side lacks.
	var right [][2][]byte
	var file []byte
	for i, r := range recs {
		if i%7 == 0 {
			right = append(right, r)
		}
	}
	for i := range 10 {
		right = append(right, [2][]byte{{0, byte(i), 0xff, 0xff}, {1, 2, 3, 4, 5, 6, 7, byte(i)}})
	}
	for _, r := range right {
		file = append(append(file, r[0]...), r[1]...)
	}
	if err := os.WriteFile(filepath.Join(dir, "right"), file, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := local.Start(local.Config{Agents: 2, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	job := sdk.NewJob("operators").Conf("partitions", "5").Conf("source.split_size", "12KiB")
	g := job.Module("g", sdk.GoGuest("guests/groups"))
	src := job.RecordFile(filepath.Join(dir, "recs"), 12, 4)
	collect := func(name string, d *sdk.Dataset) []sdk.Record {
		t.Helper()
		got, err := d.Collect(ctx, l)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return got
	}

	// collect returns the records as they are, bytes for bytes.
	if got, want := hexPairs(collect("collect", src), recordKV), hexPairs(recs, pairKV); !slices.Equal(got, want) {
		t.Errorf("collect: %d records, want %d", len(got), len(want))
	}
	// count counts them, and an empty result.
	for _, tt := range []struct {
		d    *sdk.Dataset
		want int64
	}{{src, int64(len(recs))}, {src.Sample(0, 1), 0}} {
		if n, err := tt.d.Count(ctx, l); err != nil || n != tt.want {
			t.Errorf("count = %d, %v; want %d", n, err, tt.want)
		}
	}

	// map_values keeps keys; key_by keeps values.
	var wantMV, wantKB []string
	for _, r := range recs {
		wantMV = append(wantMV, hex.EncodeToString(r[0])+"\t"+hex.EncodeToString([]byte(hex.EncodeToString(r[1]))))
		wantKB = append(wantKB, hex.EncodeToString(r[1][len(r[1])-1:])+"\t"+hex.EncodeToString(r[1]))
	}
	slices.Sort(wantMV)
	slices.Sort(wantKB)
	if got := hexPairs(collect("map_values", src.MapValues(g.Func("valhex"))), recordKV); !slices.Equal(got, wantMV) {
		t.Errorf("map_values: first %q, want %q", got[0], wantMV[0])
	}
	if got := hexPairs(collect("key_by", src.KeyBy(g.Func("lastbyte"))), recordKV); !slices.Equal(got, wantKB) {
		t.Errorf("key_by: first %q, want %q", got[0], wantKB[0])
	}

	// map_partitions sees each partition whole: one call per partition,
	// the empty ones too.
	parts := collect("map_partitions", src.PartitionBy(5).MapPartitions(g.Func("partition")))
	total := 0
	for _, p := range parts {
		n, err := strconv.Atoi(string(p.Value))
		if err != nil {
			t.Fatalf("map_partitions: %q", p.Value)
		}
		total += n
	}
	if len(parts) != 5 || total != len(recs) {
		t.Errorf("map_partitions: %d calls for 5 partitions, %d records of %d", len(parts), total, len(recs))
	}

	// aggregate_by_key counts each key (create "1", merge +).
	counts := map[string]int{}
	for _, r := range recs {
		counts[string(r[0])]++
	}
	var wantAgg []string
	for k, n := range counts {
		wantAgg = append(wantAgg, hex.EncodeToString([]byte(k))+"\t"+hex.EncodeToString(fmt.Append(nil, n)))
	}
	slices.Sort(wantAgg)
	if got := hexPairs(collect("aggregate_by_key", src.AggregateByKey(g.Func("one"), g.Func("sum"))), recordKV); !slices.Equal(got, wantAgg) {
		t.Errorf("aggregate_by_key: %q, want %q", got, wantAgg)
	}

	// cogroup: every key of either side, with both sides' values.
	sides := map[string][2][]string{}
	for i, rs := range [][][2][]byte{recs, right} {
		for _, r := range rs {
			e := sides[string(r[0])]
			e[i] = append(e[i], hex.EncodeToString(r[1]))
			sides[string(r[0])] = e
		}
	}
	var wantCo []string
	for k, e := range sides {
		slices.Sort(e[0])
		slices.Sort(e[1])
		wantCo = append(wantCo, hex.EncodeToString([]byte(k))+"\t"+strings.Join(e[0], ",")+"|"+strings.Join(e[1], ","))
	}
	slices.Sort(wantCo)
	other := job.RecordFile(filepath.Join(dir, "right"), 12, 4)
	var gotCo []string
	for _, r := range collect("cogroup", src.Cogroup(other).Map(g.Func("cogroup"))) {
		gotCo = append(gotCo, string(r.Key)+"\t"+string(r.Value))
	}
	slices.Sort(gotCo)
	if !slices.Equal(gotCo, wantCo) {
		t.Errorf("cogroup: %d keys, want %d", len(gotCo), len(wantCo))
	}

	// sample keeps about the fraction, a subset of the input, the same
	// records on every run with the same seed.
	sampled := hexPairs(collect("sample", src.Sample(0.3, 7)), recordKV)
	again := hexPairs(collect("sample", src.Sample(0.3, 7)), recordKV)
	if !slices.Equal(sampled, again) {
		t.Errorf("sample with one seed kept %d, then %d records", len(sampled), len(again))
	}
	if want, sd := 0.3*float64(len(recs)), math.Sqrt(0.3*0.7*float64(len(recs))); math.Abs(float64(len(sampled))-want) > 5*sd {
		t.Errorf("sample 0.3 kept %d of %d records", len(sampled), len(recs))
	}
	all := hexPairs(recs, pairKV)
	for _, s := range sampled {
		if _, ok := slices.BinarySearch(all, s); !ok {
			t.Fatalf("sample made up record %s", s)
		}
	}
}

// TestJSONAndCSVSinks writes records with commas, quotes, tabs, non-ASCII
// and non-UTF-8 bytes as JSON lines and CSV, to part files and to standard
// output, and reads them back.
func TestJSONAndCSVSinks(t *testing.T) {
	dir := t.TempDir()
	lines := []string{`a,"b"`, "tab\there", "ünïcode", "", "x\xffy", "plain"}
	in := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := local.Start(local.Config{Agents: 1, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	run := func(sink sdk.Sink) string {
		t.Helper()
		job := sdk.NewJob("sinks").Conf("partitions", "3")
		job.TextFile(in).PartitionBy(3).Write(sink)
		var out bytes.Buffer
		if err := job.Run(ctx, l, &out); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	want := slices.Sorted(slices.Values(lines))
	// JSON lines: a non-UTF-8 value travels in base64.
	var got []string
	for line := range strings.Lines(run(sdk.JSON("-"))) {
		var m map[string]string
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("JSON sink line %q: %v", line, err)
		}
		v, ok := m["value"]
		if b64, isB64 := m["value_base64"]; isB64 {
			b, err := base64.StdEncoding.DecodeString(b64)
			v, ok = string(b), err == nil
		}
		if !ok || m["key"] != "" {
			t.Errorf("JSON sink line %q", line)
		}
		got = append(got, v)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("JSON sink: %q, want %q", got, want)
	}
	// CSV to standard output: one header, then key,value rows.
	rows, err := csv.NewReader(strings.NewReader(run(sdk.CSV("-", true)))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 || !slices.Equal(rows[0], []string{"key", "value"}) {
		t.Fatalf("CSV to stdout: first row %q, want the header", rows)
	}
	got = nil
	for _, r := range rows[1:] {
		got = append(got, r[1])
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("CSV sink: %q, want %q", got, want)
	}
	// CSV part files: each starts with the header, as Spark writes them.
	out := filepath.Join(dir, "csv")
	run(sdk.CSV(out, true))
	parts, _ := filepath.Glob(filepath.Join(out, "part-*"))
	if len(parts) != 3 {
		t.Fatalf("%d CSV parts, want 3", len(parts))
	}
	for _, p := range parts {
		b, _ := os.ReadFile(p)
		if !strings.HasPrefix(string(b), "key,value\n") {
			t.Errorf("%s starts %.20q, not with the header", p, b)
		}
	}
}

// TestJoinsOfBinaryKeys joins records whose keys are not UTF-8, one key
// holding half the left side, as a broadcast join and as a shuffle join
// (inner and left outer), against a native nested-loop join.
func TestJoinsOfBinaryKeys(t *testing.T) {
	dir := t.TempDir()
	recs := groupRecords(t, dir)
	skewed := string(recs[0][0])
	// The right side: every 7th record whose key is not the skewed one,
	// two records of the skewed key, and keys the left side lacks.
	var right [][2][]byte
	skewedRight := 0
	for i, r := range recs {
		switch {
		case string(r[0]) == skewed && skewedRight < 2:
			right = append(right, [2][]byte{r[0], {9, byte(skewedRight)}})
			skewedRight++
		case string(r[0]) != skewed && i%7 == 0:
			right = append(right, r)
		}
	}
	right = append(right, [2][]byte{{0, 1, 0xfe, 0xff}, {1, 2, 3, 4, 5, 6, 7, 8}})
	var file []byte
	for _, r := range right {
		v := make([]byte, 8)
		copy(v, r[1])
		file = append(append(file, r[0]...), v...)
	}
	if err := os.WriteFile(filepath.Join(dir, "right"), file, 0o644); err != nil {
		t.Fatal(err)
	}
	byKey := map[string][]string{}
	for i := 0; i < len(file); i += 12 {
		byKey[string(file[i:i+4])] = append(byKey[string(file[i:i+4])], hex.EncodeToString(file[i+4:i+12]))
	}
	var wantInner, wantOuter []string
	for _, r := range recs {
		l := hex.EncodeToString(r[1])
		matches := byKey[string(r[0])]
		if len(matches) == 0 {
			wantOuter = append(wantOuter, hex.EncodeToString(r[0])+"\t"+l)
		}
		for _, m := range matches {
			pair := []string{l, m}
			slices.Sort(pair)
			line := hex.EncodeToString(r[0]) + "\t" + strings.Join(pair, ",")
			wantInner = append(wantInner, line)
			wantOuter = append(wantOuter, line)
		}
	}
	slices.Sort(wantInner)
	slices.Sort(wantOuter)
	l, err := local.Start(local.Config{Agents: 2, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	for _, threshold := range []string{"1MiB", "0"} {
		for _, outer := range []bool{false, true} {
			job := sdk.NewJob("binary-join").Conf("partitions", "5").Conf("source.split_size", "12KiB").Conf("join.broadcast_threshold", threshold)
			g := job.Module("g", sdk.GoGuest("guests/groups"))
			left := job.RecordFile(filepath.Join(dir, "recs"), 12, 4)
			other := job.RecordFile(filepath.Join(dir, "right"), 12, 4)
			joined, want := left.Join(other), wantInner
			if outer {
				joined, want = left.LeftOuterJoin(other), wantOuter
			}
			recs, err := joined.Map(g.Func("group")).Collect(ctx, l)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, string(r.Key)+"\t"+string(r.Value))
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("threshold %s, outer %v: %d records, want %d", threshold, outer, len(got), len(want))
			}
		}
	}
}
