package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/sdk"
)

// clientFlags locate a running grid.
type clientFlags struct {
	addr, token, ca, output string
}

func (f *clientFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.addr, "addr", "", "the grid's API URL, https://HOST:PORT (default $GRID_ADDR)")
	cmd.Flags().StringVar(&f.token, "token", "", "bearer token (default $GRID_TOKEN)")
	cmd.Flags().StringVar(&f.ca, "ca", "", "PEM file of the cluster's certificate authority, the only one trusted (default $GRID_CA)")
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "output: text or json")
}

func (f *clientFlags) remote() (*sdk.Remote, error) {
	addr, token, ca := cmp.Or(f.addr, os.Getenv("GRID_ADDR")), cmp.Or(f.token, os.Getenv("GRID_TOKEN")), cmp.Or(f.ca, os.Getenv("GRID_CA"))
	if addr == "" {
		return nil, errors.New("no grid address: source a client file (grid init writes admin.env and TENANT.env, grid up grid.env) or pass --addr")
	}
	if token == "" {
		return nil, errors.New("no token: set GRID_TOKEN or pass --token")
	}
	if f.output != "text" && f.output != "json" {
		return nil, fmt.Errorf("-o %q: use text or json", f.output)
	}
	return sdk.NewRemote(sdk.RemoteConfig{Addr: addr, Token: token, CAFile: ca})
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newClientCmds(g *globals) []*cobra.Command {
	return []*cobra.Command{newSubmitCmd(g), newJobsCmd(g), newStatusCmd(g), newCancelCmd(g), newLogsCmd(g), newAgentsCmd(g), newServersCmd(g), newBackupCmd(g), newTenantsCmd(g), newModulesCmd(g), newTokenCmd(g)}
}

func newSubmitCmd(g *globals) *cobra.Command {
	var f clientFlags
	var params, conf []string
	var wait bool
	var tenant, progress string
	cmd := &cobra.Command{
		Use:   "submit JOB.toml [--param k=v]... [--wait]",
		Short: "Submit a job to a running grid",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.remote()
			if err != nil {
				return err
			}
			p, err := assignments("param", params)
			if err != nil {
				return err
			}
			c, err := assignments("conf", conf)
			if err != nil {
				return err
			}
			mode, err := progressMode(progress, g.stderr)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			job, err := sdk.LoadJob(ctx, args[0], p, c)
			if err != nil {
				return err
			}
			id, err := r.Submit(ctx, job, tenant)
			if err != nil {
				return err
			}
			if !wait {
				if f.output == "json" {
					return printJSON(g.stdout, map[string]string{"id": id})
				}
				fmt.Fprintln(g.stdout, id)
				return nil
			}
			info, err := watchRemote(ctx, r, id, mode, g.stderr)
			if f.output == "json" {
				if perr := printJSON(g.stdout, info); perr != nil {
					return perr
				}
			} else if err == nil && info.Summary != nil && info.Summary.Stdout {
				if err := r.Result(ctx, id, g.stdout); err != nil {
					return err
				}
			}
			if err != nil {
				return err
			}
			if info.Summary != nil && f.output != "json" {
				fmt.Fprintf(g.stderr, "job %s succeeded in %s: %d records in, %d out\n", id, info.Summary.Duration.Round(time.Millisecond), info.Summary.RecordsIn, info.Summary.RecordsOut)
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringArrayVarP(&params, "param", "p", nil, "set a spec parameter (repeatable)")
	cmd.Flags().StringArrayVarP(&conf, "conf", "c", nil, "override a [conf] setting (repeatable)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the job, show its progress, print a stdout result")
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant to submit for (admin token only)")
	cmd.Flags().StringVar(&progress, "progress", "auto", "with --wait: auto, bars, lines or none")
	return cmd
}

// watchRemote follows a job: a bar per stage on a terminal, a line per
// change otherwise.
func watchRemote(ctx context.Context, r *sdk.Remote, id string, mode progressKind, w io.Writer) (api.JobInfo, error) {
	switch mode {
	case progressBars:
		p := mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(150*time.Millisecond))
		bars := map[int]*mpb.Bar{}
		info, err := r.Watch(ctx, id, func(info api.JobInfo) {
			for _, s := range info.Stages {
				b, ok := bars[s.ID]
				if !ok {
					b = p.AddBar(int64(s.Tasks), mpb.PrependDecorators(decor.Name(fmt.Sprintf("stage %d %s", s.ID, s.Name), decor.WCSyncSpaceR)), mpb.AppendDecorators(decor.CountersNoUnit("%d/%d tasks")))
					bars[s.ID] = b
				}
				b.SetCurrent(int64(s.Done))
			}
		})
		for _, b := range bars {
			b.SetTotal(-1, true)
		}
		p.Wait()
		return info, err
	case progressLines:
		last := time.Time{}
		return r.Watch(ctx, id, func(info api.JobInfo) {
			if time.Since(last) < 2*time.Second && info.State == api.StateRunning {
				return
			}
			last = time.Now()
			var parts []string
			for _, s := range info.Stages {
				p := fmt.Sprintf("stage %d %s %d/%d", s.ID, s.Name, s.Done, s.Tasks)
				if s.Reason != nil && s.Pending > 0 {
					p += " (" + s.Reason.Message + ")"
				}
				parts = append(parts, p)
			}
			fmt.Fprintf(w, "%s %s: %s\n", info.ID, info.State, strings.Join(parts, "; "))
		})
	}
	return r.Watch(ctx, id, nil)
}

func newJobsCmd(g *globals) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List the jobs you can see",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.remote()
			if err != nil {
				return err
			}
			jobs, err := r.Jobs(cmd.Context())
			if err != nil {
				return err
			}
			if f.output == "json" {
				return printJSON(g.stdout, map[string]any{"jobs": jobs})
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tTENANT\tSTATE\tSUBMITTED")
			for _, j := range jobs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", j.ID, j.Name, j.Tenant, j.State, j.Submitted.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	f.add(cmd)
	return cmd
}

func newStatusCmd(g *globals) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "status JOB",
		Short: "Show a job's stages, and why its waiting tasks wait",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.remote()
			if err != nil {
				return err
			}
			j, err := r.Job(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if f.output == "json" {
				return printJSON(g.stdout, j)
			}
			fmt.Fprintf(g.stdout, "job %s (%s), tenant %s: %s\n", j.ID, j.Name, j.Tenant, j.State)
			if j.Error != "" {
				fmt.Fprintf(g.stdout, "error: %s\n", j.Error)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			if len(j.Stages) > 0 {
				fmt.Fprintln(tw, "STAGE\tNAME\tDONE\tRUNNING\tPENDING\tWHY PENDING")
			}
			for _, s := range j.Stages {
				why := ""
				if s.Reason != nil {
					why = s.Reason.Message
				}
				fmt.Fprintf(tw, "%d\t%s\t%d/%d\t%d\t%d\t%s\n", s.ID, s.Name, s.Done, s.Tasks, s.Running, s.Pending, why)
			}
			return tw.Flush()
		},
	}
	f.add(cmd)
	return cmd
}

func newLogsCmd(g *globals) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "logs JOB [TASK]",
		Short: "Show how a job's task attempts ended (TASK is STAGE.PARTITION)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.remote()
			if err != nil {
				return err
			}
			task := ""
			if len(args) == 2 {
				task = args[1]
			}
			logs, err := r.Logs(cmd.Context(), args[0], task)
			if err != nil {
				return err
			}
			if f.output == "json" {
				return printJSON(g.stdout, map[string]any{"logs": logs})
			}
			for _, l := range logs {
				fmt.Fprintf(g.stdout, "%s task %s attempt %d on %s: %s in %s\n", l.Time.Format("15:04:05.000"), l.Task, l.Attempt, l.Agent, l.Outcome, l.Elapsed.Round(time.Millisecond))
				if l.Error != "" {
					fmt.Fprintf(g.stdout, "  error: %s\n", l.Error)
				}
				for line := range strings.Lines(l.Log) {
					fmt.Fprintf(g.stdout, "  | %s", line)
				}
			}
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func newCancelCmd(g *globals) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "cancel JOB",
		Short: "Cancel a job",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.remote()
			if err != nil {
				return err
			}
			if err := r.Cancel(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "canceling %s\n", args[0])
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func newAgentsCmd(g *globals) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "agents",
		Short: "List the grid's agents",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.remote()
			if err != nil {
				return err
			}
			agents, err := r.Agents(cmd.Context())
			if err != nil {
				return err
			}
			if f.output == "json" {
				return printJSON(g.stdout, map[string]any{"agents": agents})
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tADDR\tCPUS\tMEM\tFREE CPUS\tFREE MEM")
			for _, a := range agents {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%d MiB\t%.1f\t%d MiB\n", a.ID, a.Status, a.Addr, float64(a.CPUMillis)/1000, a.MemMiB, float64(a.FreeCPU)/1000, a.FreeMem)
			}
			return tw.Flush()
		},
	}
	f.add(cmd)
	return cmd
}

func newServersCmd(g *globals) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "servers",
		Short: "List the coordinator servers of GRID_ADDR: which leads, and their logs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.remote()
			if err != nil {
				return err
			}
			servers := r.Servers(cmd.Context())
			if f.output == "json" {
				return printJSON(g.stdout, map[string]any{"servers": servers})
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tAPI\tLEADER\tPID\tTERM\tLOG INDEX\tSTATUS")
			for _, s := range servers {
				status := "ok"
				if s.Error != "" {
					status = s.Error
				} else if len(s.Unreachable) > 0 {
					status = "cannot reach " + strings.Join(s.Unreachable, ", ")
				}
				fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%d\t%d\t%s\n", s.Name, s.APIAddr, s.Leader, s.PID, s.Term, s.AppliedIndex, status)
			}
			return tw.Flush()
		},
	}
	f.add(cmd)
	cmd.AddCommand(newServersAddCmd(g), newServersRemoveCmd(g))
	return cmd
}

func newTenantsCmd(g *globals) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "tenants",
		Short: "List tenants and their shares of the cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.remote()
			if err != nil {
				return err
			}
			ts, err := r.Tenants(cmd.Context())
			if err != nil {
				return err
			}
			if f.output == "json" {
				return printJSON(g.stdout, map[string]any{"tenants": ts})
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TENANT\tWEIGHT\tCPUS\tMEM\tDOMINANT SHARE\tTASK SECONDS\tJOBS")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%g\t%.1f\t%d MiB\t%.3f\t%.1f\t%d\n", t.Name, t.Weight, float64(t.CPUMillis)/1000, t.MemMiB, t.DominantShare, t.TaskSeconds, t.Jobs)
			}
			return tw.Flush()
		},
	}
	f.add(cmd)
	return cmd
}

func newModulesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "modules", Short: "Upload, list and delete modules"}
	var pf, lf clientFlags
	push := &cobra.Command{
		Use:   "push FILE.wasm...",
		Short: "Upload modules; prints their sha256",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := pf.remote()
			if err != nil {
				return err
			}
			var out []api.ModuleInfo
			for _, path := range args {
				f, err := os.Open(path)
				if err != nil {
					return err
				}
				m, err := r.PushModuleFrom(cmd.Context(), f)
				f.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				out = append(out, m)
				if pf.output != "json" {
					fmt.Fprintf(g.stdout, "%s  %s\n", m.Hash, path)
				}
			}
			if pf.output == "json" {
				return printJSON(g.stdout, map[string]any{"modules": out})
			}
			return nil
		},
	}
	pf.add(push)
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List uploaded modules",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := lf.remote()
			if err != nil {
				return err
			}
			mods, err := r.Modules(cmd.Context())
			if err != nil {
				return err
			}
			if lf.output == "json" {
				return printJSON(g.stdout, map[string]any{"modules": mods})
			}
			for _, m := range mods {
				fmt.Fprintf(g.stdout, "%s  %d bytes\n", m.Hash, m.Size)
			}
			return nil
		},
	}
	lf.add(ls)
	var rf clientFlags
	rm := &cobra.Command{
		Use:   "rm HASH...",
		Short: "Delete uploaded modules (frees the tenant's module room)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := rf.remote()
			if err != nil {
				return err
			}
			for _, h := range args {
				if err := r.DeleteModule(cmd.Context(), h); err != nil {
					return fmt.Errorf("%s: %w", h, err)
				}
			}
			return nil
		},
	}
	rf.add(rm)
	cmd.AddCommand(push, ls, rm)
	return cmd
}
