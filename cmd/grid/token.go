package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/wasmgrid/wasmgrid/api"
)

func newTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list, rotate and revoke API tokens (admin token)",
		Long: `Tokens authenticate API requests. Each has a role: read-only (its tenant's
jobs, results, logs and modules), submit (also uploads, submits and
cancels for its tenant) or admin (everything). The coordinator stores only
their sha256; a new token is printed once. A revoked token is refused at
its next request.`,
	}
	var cf, lf, rf, of clientFlags
	var tenant, role string
	create := &cobra.Command{
		Use:   "create --tenant T --role submit|read-only | --role admin",
		Short: "Create a token; prints it (once) and its id",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := cf.remote()
			if err != nil {
				return err
			}
			nt, err := r.CreateToken(cmd.Context(), tenant, api.Role(role))
			if err != nil {
				return err
			}
			return printNewToken(g, cf.output, nt)
		},
	}
	cf.add(create)
	create.Flags().StringVar(&tenant, "tenant", "", "the tenant the token acts for (none for an admin token)")
	create.Flags().StringVar(&role, "role", string(api.RoleSubmit), "admin, submit or read-only")
	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := lf.remote()
			if err != nil {
				return err
			}
			ts, err := r.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			if lf.output == "json" {
				return printJSON(g.stdout, map[string]any{"tokens": ts})
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTENANT\tROLE\tCREATED\tREVOKED")
			for _, t := range ts {
				revoked := "-"
				if t.Revoked != nil {
					revoked = t.Revoked.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Tenant, t.Role, t.Created.Format(time.RFC3339), revoked)
			}
			return tw.Flush()
		},
	}
	lf.add(list)
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token: its next request is refused",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := rf.remote()
			if err != nil {
				return err
			}
			info, err := r.RevokeToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if rf.output == "json" {
				return printJSON(g.stdout, info)
			}
			fmt.Fprintf(g.stdout, "revoked %s\n", info.ID)
			return nil
		},
	}
	rf.add(revoke)
	rotate := &cobra.Command{
		Use:   "rotate ID",
		Short: "Replace a token by a new one for the same tenant and role; the old one is revoked",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := of.remote()
			if err != nil {
				return err
			}
			nt, err := r.RotateToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printNewToken(g, of.output, nt)
		},
	}
	of.add(rotate)
	cmd.AddCommand(create, list, revoke, rotate)
	return cmd
}

func printNewToken(g *globals, output string, nt api.NewToken) error {
	if output == "json" {
		return printJSON(g.stdout, nt)
	}
	fmt.Fprintf(g.stdout, "token %s (tenant %q, role %s):\n%s\n", nt.ID, nt.Tenant, nt.Role, nt.Token)
	return nil
}
