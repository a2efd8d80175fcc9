package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/pelletier/go-toml/v2"
	"github.com/spf13/cobra"
	"github.com/wasmgrid/wasmgrid/allocator"
	"github.com/wasmgrid/wasmgrid/internal/jobspec"
)

func newAllocatorCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "allocator",
		Short: "Tools for the DRF offer allocator",
	}
	var output string
	sim := &cobra.Command{
		Use:   "simulate SCENARIO.toml",
		Short: "Share a described cluster between tenants and print what each gets",
		Long: `Simulate runs the allocator over a scenario (docs/allocator.md): agents, and
tenants with their task size, demand, weight and quota. It places tasks until
no tenant can place another, and prints, per tenant, the tasks placed, cpus,
memory and dominant share. Use it to see how a quota or weight change would
share a cluster.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := loadScenario(args[0])
			if err != nil {
				return err
			}
			res := allocator.Simulate(s)
			return printSimulation(g, res, output)
		},
	}
	sim.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.AddCommand(sim)
	return cmd
}

// scenarioDoc is a scenario file, as docs/allocator.md describes it.
type scenarioDoc struct {
	Agents []struct {
		Count        int     `toml:"count"`
		CPUs         float64 `toml:"cpus"`
		Mem          string  `toml:"mem"`
		Disk         string  `toml:"disk"`
		Reservations []struct {
			Tenant string  `toml:"tenant"`
			CPUs   float64 `toml:"cpus"`
			Mem    string  `toml:"mem"`
			Disk   string  `toml:"disk"`
		} `toml:"reservations"`
	} `toml:"agents"`
	Tenants []struct {
		Name   string      `toml:"name"`
		Weight float64     `toml:"weight"`
		Task   resourceDoc `toml:"task"`
		Tasks  int         `toml:"tasks"`
		Quota  struct {
			Guarantee resourceDoc `toml:"guarantee"`
			Limit     resourceDoc `toml:"limit"`
		} `toml:"quota"`
	} `toml:"tenants"`
}

type resourceDoc struct {
	CPUs float64 `toml:"cpus"`
	Mem  string  `toml:"mem"`
	Disk string  `toml:"disk"`
}

func (r resourceDoc) resources(where string) (allocator.Resources, error) {
	return resources(where, r.CPUs, r.Mem, r.Disk)
}

// resources converts cpus and sizes to exact allocator quantities.
func resources(where string, cpus float64, mem, disk string) (allocator.Resources, error) {
	if cpus < 0 || math.IsNaN(cpus) {
		return allocator.Resources{}, fmt.Errorf("%s: cpus must not be negative", where)
	}
	r := allocator.Resources{CPU: int64(math.Round(cpus * 1000))}
	for _, f := range []struct {
		name string
		text string
		dst  *int64
	}{{"mem", mem, &r.Mem}, {"disk", disk, &r.Disk}} {
		if f.text == "" {
			continue
		}
		n, err := jobspec.ParseSize(f.text)
		if err != nil {
			return r, fmt.Errorf("%s: %s: %v", where, f.name, err)
		}
		*f.dst = int64(n) >> 20
	}
	return r, nil
}

func loadScenario(path string) (allocator.Scenario, error) {
	var s allocator.Scenario
	b, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	var doc scenarioDoc
	dec := toml.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		var se *toml.StrictMissingError
		if errors.As(err, &se) && len(se.Errors) > 0 {
			e := se.Errors[0]
			line, _ := e.Position()
			return s, fmt.Errorf("%s:%d: unknown key %q (the keys are in docs/allocator.md)", path, line, strings.Join(e.Key(), "."))
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			line, col := de.Position()
			return s, fmt.Errorf("%s:%d:%d: %v", path, line, col, de)
		}
		return s, fmt.Errorf("%s: %v", path, err)
	}
	if len(doc.Agents) == 0 || len(doc.Tenants) == 0 {
		return s, fmt.Errorf("%s: a scenario needs at least one [[agents]] and one [[tenants]] entry", path)
	}
	for i, a := range doc.Agents {
		where := fmt.Sprintf("%s: agents[%d]", path, i)
		total, err := resources(where, a.CPUs, a.Mem, a.Disk)
		if err != nil {
			return s, err
		}
		count := a.Count
		if count == 0 {
			count = 1
		}
		if count < 0 {
			return s, fmt.Errorf("%s: count must be positive", where)
		}
		spec := allocator.AgentSpec{Count: count, Total: total}
		for j, r := range a.Reservations {
			res, err := resources(fmt.Sprintf("%s.reservations[%d]", where, j), r.CPUs, r.Mem, r.Disk)
			if err != nil {
				return s, err
			}
			if spec.Reservations == nil {
				spec.Reservations = map[string]allocator.Resources{}
			}
			spec.Reservations[r.Tenant] = spec.Reservations[r.Tenant].Add(res)
		}
		s.Agents = append(s.Agents, spec)
	}
	seen := map[string]bool{}
	for i, t := range doc.Tenants {
		where := fmt.Sprintf("%s: tenants[%d]", path, i)
		if t.Name == "" || seen[t.Name] {
			return s, fmt.Errorf("%s: every tenant needs a unique name", where)
		}
		seen[t.Name] = true
		task, err := t.Task.resources(where + ".task")
		if err != nil {
			return s, err
		}
		if task.IsZero() {
			return s, fmt.Errorf("%s: task = { cpus = ..., mem = ... } is missing", where)
		}
		spec := allocator.TenantSpec{Name: t.Name, Weight: t.Weight, Task: task, Tasks: t.Tasks}
		if spec.Quota.Guarantee, err = t.Quota.Guarantee.resources(where + ".quota.guarantee"); err != nil {
			return s, err
		}
		if spec.Quota.Limit, err = t.Quota.Limit.resources(where + ".quota.limit"); err != nil {
			return s, err
		}
		s.Tenants = append(s.Tenants, spec)
	}
	for _, a := range s.Agents {
		for tenant := range a.Reservations {
			if !seen[tenant] {
				return s, fmt.Errorf("%s: a reservation names tenant %q, which the scenario does not define", path, tenant)
			}
		}
	}
	return s, nil
}

type tenantJSON struct {
	Name          string  `json:"name"`
	Tasks         int     `json:"tasks"`
	CPUs          float64 `json:"cpus"`
	MemMiB        int64   `json:"mem_mib"`
	DominantShare float64 `json:"dominant_share"`
}

func printSimulation(g *globals, res allocator.Result, format string) error {
	var rows []tenantJSON
	for _, t := range res.Tenants {
		rows = append(rows, tenantJSON{Name: t.Name, Tasks: t.Tasks, CPUs: float64(t.Alloc.CPU) / 1000, MemMiB: t.Alloc.Mem, DominantShare: t.DominantShare})
	}
	switch format {
	case "json":
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"tenants": rows})
	case "table":
		w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "TENANT\tTASKS\tCPUS\tMEM\tDOMINANT SHARE")
		for _, r := range rows {
			fmt.Fprintf(w, "%s\t%d\t%g\t%d MiB\t%.4f\n", r.Name, r.Tasks, r.CPUs, r.MemMiB, r.DominantShare)
		}
		return w.Flush()
	}
	return fmt.Errorf("-o %q: use table or json", format)
}
