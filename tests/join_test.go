package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wasmgrid/wasmgrid/examples/join"
	"github.com/wasmgrid/wasmgrid/sdk"
	"github.com/wasmgrid/wasmgrid/sdk/local"
)

// TestJoinRevenue joins 40,000 orders (half of them from one customer,
// some from customers that do not exist) with 2,000 customers over 5
// partitions: revenue per country must equal a native hash join's, and a
// left outer join keeps the orders without a customer.
func TestJoinRevenue(t *testing.T) {
	dir := t.TempDir()
	countries := []string{"UK", "US", "NL", "FR", "JP", "BR", "ÅLAND"}
	var cust, ord bytes.Buffer
	cust.WriteString("customer_id,name,country\n")
	country := map[string]string{}
	for i := range 2000 {
		c := countries[(i*7+i/3)%len(countries)]
		country[fmt.Sprint(i)] = c
		fmt.Fprintf(&cust, "%d,name%d,%s\n", i, i, c)
	}
	ord.WriteString("order_id,customer_id,cents\n")
	revenue := map[string]int64{}
	var orphan int64
	rng := uint64(7)
	for i := range 40_000 {
		rng = rng*6364136223846793005 + 1442695040888963407
		id := fmt.Sprint((rng >> 33) % 2100) // some past the last customer
		if i%2 == 0 {
			id = "7" // one customer places half the orders
		}
		cents := int64((rng >> 20) % 100000)
		fmt.Fprintf(&ord, "%d,%s,%d\n", i, id, cents)
		if c, ok := country[id]; ok {
			revenue[c] += cents
		} else {
			orphan++
		}
	}
	if orphan == 0 {
		t.Fatal("the generated orders all have customers")
	}
	os.WriteFile(filepath.Join(dir, "orders.csv"), ord.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "customers.csv"), cust.Bytes(), 0o644)
	var want []string
	for c, cents := range revenue {
		_, line := join.Format([]byte(c), []byte(fmt.Sprint(cents)))
		want = append(want, string(line))
	}
	slices.Sort(want)

	l, err := local.Start(local.Config{Agents: 2, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Each join runs as a shuffle join and as a broadcast join (the
	// customers, ~60 KB, are under a 1 MiB threshold): the same answer.
	run := func(specPath, threshold string) []string {
		t.Helper()
		job, err := sdk.LoadJob(context.Background(), specPath,
			map[string]string{"orders": filepath.Join(dir, "orders.csv"), "customers": filepath.Join(dir, "customers.csv")},
			map[string]string{"partitions": "5", "source.split_size": "128KiB", "join.broadcast_threshold": threshold})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		sum, err := l.Run(context.Background(), job, &out)
		if err != nil {
			t.Fatal(err)
		}
		if broadcast := strings.Contains(sum.Plan, "join broadcast"); broadcast != (threshold != "0") {
			t.Errorf("threshold %s: plan:\n%s", threshold, sum.Plan)
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		slices.Sort(lines)
		return lines
	}
	// The same job with a left outer join: orders without a customer come
	// through with the left value alone (revenue keys them "?").
	spec, err := os.ReadFile(repoPath("examples/join/job.toml"))
	if err != nil {
		t.Fatal(err)
	}
	outer := filepath.Join(repoPath("examples/join"), "outer.test.toml")
	if err := os.WriteFile(outer, bytes.Replace(spec, []byte(`join = "customers"`), []byte(`left_outer_join = "customers"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(outer)
	for _, threshold := range []string{"0", "1MiB"} {
		if got := run(repoPath("examples/join/job.toml"), threshold); !slices.Equal(got, want) {
			t.Errorf("join, threshold %s:\n got %q\nwant %q", threshold, got, want)
		}
		got := run(outer, threshold)
		if !slices.Contains(got, "?\t0.00") || len(got) != len(want)+1 || !slices.Equal(slices.DeleteFunc(got, func(l string) bool { return strings.HasPrefix(l, "?") }), want) {
			t.Errorf("left outer join, threshold %s: %q, want the countries and a \"?\" line for %d orphan orders", threshold, got, orphan)
		}
	}
}
