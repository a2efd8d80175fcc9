package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/grid"
)

func newServersAddCmd(g *globals) *cobra.Command {
	var f clientFlags
	var req api.AddServerRequest
	var from, control string
	var hosts []string
	cmd := &cobra.Command{
		Use:   "add NAME --id N --raft-addr HOST:PORT [--api-addr ...] [--gossip-addr ...] [--from coordinator-1.toml]",
		Short: "Add a coordinator server to the replicated log (admin token)",
		Long: `add asks the leader to add a voter to the coordinators' replicated log.
The id must be new (ids are never reused) and NAME its certificate's
common name. The leader refuses while the servers that answer would not
make a quorum of the larger log: remove a dead server first.

With --from (a coordinator config of the cluster, beside ca.pem and
ca-key.pem), add also writes NAME.pem, NAME-key.pem and NAME.toml there:
the new server's config, with join_cluster = true and [[servers]] listing
the members. Start it with grid coordinator --config NAME.toml on its host;
it takes the state from the leader. Then add its [[servers]] entry to the
other servers' configs, for their next restart (docs/operations.md).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			r, err := f.remote()
			if err != nil {
				return err
			}
			var tpl *grid.CoordinatorConfig
			if from != "" {
				if tpl, err = grid.LoadCoordinatorConfig(from); err != nil {
					return err
				}
				if _, err := os.Stat(filepath.Join(filepath.Dir(from), req.Name+".toml")); err == nil {
					return fmt.Errorf("%s.toml exists beside %s: a new server needs a new name", req.Name, from)
				}
			}
			members, err := r.AddServer(cmd.Context(), req)
			if err != nil {
				return err
			}
			var path string
			if tpl != nil {
				self := grid.ServerConfig{ID: req.ID, Name: req.Name, RaftAddr: req.RaftAddr, APIAddr: req.APIAddr, GossipAddr: req.GossipAddr}
				path, err = grid.NewServerFiles(grid.NewServerOptions{Template: from, Server: self, ControlAddr: control, Members: serverConfigs(members, tpl.Servers, self), Hosts: hosts})
				if err != nil {
					return fmt.Errorf("%s was added, but its files were not written: %w", req.Name, err)
				}
			}
			if f.output == "json" {
				return printJSON(g.stdout, map[string]any{"members": members, "config": path})
			}
			fmt.Fprintf(g.stdout, "added %s (id %d); members: %s\n", req.Name, req.ID, memberNames(members))
			if path != "" {
				fmt.Fprintf(g.stdout, "wrote %s: start it with grid coordinator --config %s\n", path, path)
			} else {
				fmt.Fprintf(g.stdout, "start it with join_cluster = true, an empty state_dir and [[servers]] listing the members\n")
			}
			fmt.Fprintf(g.stdout, "then add to the other servers' [[servers]], for their next restart:\n[[servers]]\nid = %d\nname = %q\nraft_addr = %q\napi_addr = %q\ngossip_addr = %q\n", req.ID, req.Name, req.RaftAddr, req.APIAddr, req.GossipAddr)
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().Uint64Var(&req.ID, "id", 0, "the new server's id: never used before in this cluster")
	cmd.Flags().StringVar(&req.RaftAddr, "raft-addr", "", "where its replicated log listens (UDP)")
	cmd.Flags().StringVar(&req.APIAddr, "api-addr", "", "where its API listens")
	cmd.Flags().StringVar(&req.GossipAddr, "gossip-addr", "", "where its gossip listens")
	cmd.Flags().StringVar(&control, "control-addr", "", "where its control plane listens (UDP), for the config --from writes")
	cmd.Flags().StringVar(&from, "from", "", "a coordinator config of the cluster: write the new server's certificate and config beside it")
	cmd.Flags().StringArrayVar(&hosts, "host", nil, "a host name or address its certificate names besides the template's (repeatable)")
	_ = cmd.MarkFlagRequired("id")
	_ = cmd.MarkFlagRequired("raft-addr")
	return cmd
}

// serverConfigs are the members as a config's [[servers]]: each with its
// addresses from the template's list, or from the new server.
func serverConfigs(members []api.Member, known []grid.ServerConfig, self grid.ServerConfig) []grid.ServerConfig {
	var out []grid.ServerConfig
	for _, m := range members {
		s := grid.ServerConfig{ID: m.ID, Name: m.Name, RaftAddr: m.RaftAddr}
		for _, k := range append(known, self) {
			if k.ID == m.ID {
				s = k
			}
		}
		out = append(out, s)
	}
	return out
}

func memberNames(ms []api.Member) string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = fmt.Sprintf("%s (id %d)", m.Name, m.ID)
	}
	return strings.Join(names, ", ")
}

func newServersRemoveCmd(g *globals) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a coordinator server from the replicated log (admin token)",
		Long: `remove asks the leader to remove a voter from the coordinators' replicated
log. The leader refuses to remove the last server, itself (stop it first:
another server takes over), or a server whose removal would leave fewer
servers answering than a quorum. Stop the removed server, and drop it from
the other servers' [[servers]] for their next restart.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.remote()
			if err != nil {
				return err
			}
			members, err := r.RemoveServer(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if f.output == "json" {
				return printJSON(g.stdout, map[string]any{"members": members})
			}
			fmt.Fprintf(g.stdout, "removed %s; members: %s\n", args[0], memberNames(members))
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func newBackupCmd(g *globals) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Copy the leading server's replicated log (raft.db) to FILE while the grid runs (admin token)",
		Long: `backup writes a consistent copy of the leading coordinator server's raft.db
(its jobs, their history and the members) to FILE, taken while the server
runs. FILE appears only once the copy is whole. docs/operations.md says how
to restore it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.remote()
			if err != nil {
				return err
			}
			tmp, err := os.CreateTemp(filepath.Dir(args[0]), ".backup-*")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name())
			info, err := r.Backup(cmd.Context(), tmp)
			if err == nil {
				err = tmp.Sync()
			}
			if e := tmp.Close(); err == nil {
				err = e
			}
			if err != nil {
				return err
			}
			if err := os.Rename(tmp.Name(), args[0]); err != nil {
				return err
			}
			if f.output == "json" {
				return printJSON(g.stdout, map[string]any{"file": args[0], "server": info.Server, "log_index": info.LogIndex, "size": info.Size})
			}
			fmt.Fprintf(g.stdout, "%s: %d bytes, the log of %s at index %d\n", args[0], info.Size, info.Server, info.LogIndex)
			return nil
		},
	}
	f.add(cmd)
	return cmd
}
