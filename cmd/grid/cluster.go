package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/wasmgrid/wasmgrid/grid"
	"github.com/wasmgrid/wasmgrid/internal/storage"
)

func newInitCmd(g *globals) *cobra.Command {
	var agents int
	var tenants []string
	var opts grid.InitOptions
	cmd := &cobra.Command{
		Use:   "init DIR",
		Short: "Create a cluster's authority, node certificates, gossip key, tokens and configs",
		Long: `init writes into DIR the cluster's certificate authority (ca.pem, ca-key.pem:
keep the key secret), a certificate and config for the coordinator and for
each agent, the gossip key, and prints the admin token and one token per
tenant; configs store only their hashes. It also writes a client file for
the admin (admin.env) and for each tenant (TENANT.env), readable by their
owner only: ". DIR/TENANT.env" sets GRID_ADDR (the API's https:// URL),
GRID_TOKEN and GRID_CA (ca.pem, the one authority the CLI and the SDK
trust). The API serves HTTPS with the coordinator's certificate, which
names 127.0.0.1, ::1, localhost and every --host.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := os.Stat(filepath.Join(args[0], "ca.pem")); err == nil {
				return fmt.Errorf("%s already holds a cluster (ca.pem): choose another directory", args[0])
			}
			opts.Dir, opts.Agents, opts.Tenants = args[0], agents, tenants
			res, err := grid.InitCluster(opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "cluster files in %s\ncoordinator config: %s\n", args[0], res.Coordinator)
			for _, a := range res.Agents {
				fmt.Fprintf(g.stdout, "agent config: %s\n", a)
			}
			fmt.Fprintf(g.stdout, "admin token: %s\n", res.AdminToken)
			for _, t := range tenants {
				fmt.Fprintf(g.stdout, "tenant %s token: %s\n", t, res.TenantTokens[t])
			}
			fmt.Fprintf(g.stdout, "client files (. FILE): %s", res.EnvFiles["admin"])
			for _, t := range tenants {
				fmt.Fprintf(g.stdout, " %s", res.EnvFiles[t])
			}
			fmt.Fprintln(g.stdout)
			return nil
		},
	}
	cmd.Flags().IntVar(&agents, "agents", 1, "agent certificates and configs to make")
	cmd.Flags().StringArrayVar(&tenants, "tenant", nil, "a tenant to create with a token (repeatable)")
	cmd.Flags().StringVar(&opts.APIAddr, "api-addr", grid.DefaultAPIAddr, "the coordinator's API address (port 0: any)")
	cmd.Flags().StringVar(&opts.ControlAddr, "control-addr", grid.DefaultControlAddr, "the coordinator's control-plane address")
	cmd.Flags().StringVar(&opts.GossipAddr, "gossip-addr", grid.DefaultGossipAddr, "the coordinator's gossip address")
	cmd.Flags().StringArrayVar(&opts.Hosts, "host", nil, "a host name or address the certificates name besides 127.0.0.1, ::1 and localhost: the one clients reach the API by (repeatable)")
	return cmd
}

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Cluster configuration"}
	cmd.AddCommand(&cobra.Command{
		Use:   "example",
		Short: "Print a commented configuration with every default",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprint(g.stdout, grid.ExampleConfig)
			return err
		},
	})
	return cmd
}

func newCoordinatorCmd(g *globals) *cobra.Command {
	var config string
	var insecureHTTP bool
	cmd := &cobra.Command{
		Use:   "coordinator --config FILE",
		Short: "Run a cluster's coordinator: API, schedulers, allocator",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			logger, err := g.logger()
			if err != nil {
				return err
			}
			cfg, err := grid.LoadCoordinatorConfig(config)
			if err != nil {
				return err
			}
			cfg.InsecureHTTP = cfg.InsecureHTTP || insecureHTTP
			c, err := grid.NewCoordinator(*cfg, logger, nil)
			if err != nil {
				return err
			}
			path, err := c.WriteAddresses()
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "coordinator: api %s, control %s, gossip %s (in %s)\n", c.APIURL(), c.ControlAddr(), c.GossipAddr(), path)
			return c.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&config, "config", "coordinator.toml", "the coordinator's config (grid init writes one)")
	cmd.Flags().BoolVar(&insecureHTTP, "insecure-http", false, "serve the API as plain HTTP, tokens in clear (only on a loopback api_addr; also insecure_http in the config)")
	return cmd
}

func newAgentCmd(g *globals) *cobra.Command {
	var config string
	var join []string
	cmd := &cobra.Command{
		Use:   "agent --config FILE [--join HOST:PORT]",
		Short: "Run an agent: joins the cluster and runs its tasks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			logger, err := g.logger()
			if err != nil {
				return err
			}
			cfg, err := grid.LoadAgentConfig(config)
			if err != nil {
				return err
			}
			if len(join) > 0 {
				cfg.Join = join
			}
			a, err := grid.NewAgent(*cfg, logger)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "agent %s: blocks %s, gossip %s, joining %s\n", cfg.Name, a.BlockAddr(), a.GossipAddr(), strings.Join(cfg.Join, ","))
			return a.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&config, "config", "agent.toml", "the agent's config (grid init writes one)")
	cmd.Flags().StringArrayVar(&join, "join", nil, "gossip address of the coordinator or any node (overrides the config)")
	return cmd
}

func newUpCmd(g *globals) *cobra.Command {
	var agents int
	var stateDir string
	cmd := &cobra.Command{
		Use:   "up [--agents N]",
		Short: "Run a coordinator and N agents as child processes on loopback",
		Long: `up starts a whole cluster on this machine: a coordinator and N agents, each
its own process, talking over real QUIC and serf on loopback with ports
chosen by the system. It prints the API address and the admin token and
writes them, with the cluster's certificate authority, to grid.env in the
state directory (". grid.env" points the CLI at it; the API serves HTTPS).
Ctrl-C stops them all.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return up(cmd.Context(), g, agents, stateDir)
		},
	}
	cmd.Flags().IntVar(&agents, "agents", 3, "agents to start")
	cmd.Flags().StringVar(&stateDir, "state-dir", "grid-state", "where the cluster's files live")
	return cmd
}

// up runs a cluster of child processes until ctx ends.
func up(ctx context.Context, g *globals, agents int, stateDir string) error {
	if agents < 1 {
		return errors.New("--agents must be at least 1")
	}
	dir, err := filepath.Abs(stateDir)
	if err != nil {
		return err
	}
	// A fresh cluster each time: certificates, keys and tokens are cheap.
	if err := os.RemoveAll(filepath.Join(dir, "cluster")); err != nil {
		return err
	}
	res, err := grid.InitCluster(grid.InitOptions{
		Dir: filepath.Join(dir, "cluster"), Agents: agents,
		APIAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
	})
	if err != nil {
		return err
	}
	// A cluster on this machine is the local user's: their jobs (the admin
	// token submits as tenant "default") read and write their files, as
	// grid run's do.
	cfg, err := grid.LoadCoordinatorConfig(res.Coordinator)
	if err != nil {
		return err
	}
	cfg.Volumes = append(cfg.Volumes, storage.Volume{Name: grid.LocalVolume, URL: "file:///"})
	cfg.Tenants = append(cfg.Tenants, grid.TenantConfig{Name: "default", Weight: 1, Grants: map[string]string{grid.LocalVolume: "read-write"}})
	if err := grid.WriteConfig(res.Coordinator, cfg); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	type child struct {
		cmd  *exec.Cmd
		done chan struct{} // closed when it has exited
	}
	var children []child
	died := make(chan string, agents+1)
	defer func() {
		for _, c := range children {
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, c := range children {
			select {
			case <-c.done:
			case <-time.After(10 * time.Second):
				_ = c.cmd.Process.Kill()
				<-c.done
			}
		}
	}()
	start := func(args ...string) error {
		c := exec.Command(exe, append(args, "--log-level", g.logLevel)...)
		c.Stdout, c.Stderr = g.stderr, g.stderr
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
		if err := c.Start(); err != nil {
			return err
		}
		ch := child{cmd: c, done: make(chan struct{})}
		children = append(children, ch)
		go func() {
			err := c.Wait()
			close(ch.done)
			died <- fmt.Sprintf("%s %s exited: %v", args[0], args[2], err)
		}()
		return nil
	}
	addrFile := filepath.Join(dir, "cluster", "coordinator-state", "addresses.json")
	if err := start("coordinator", "--config", res.Coordinator); err != nil {
		return err
	}
	var addrs grid.Addresses
	for deadline := time.Now().Add(30 * time.Second); ; {
		if b, err := os.ReadFile(addrFile); err == nil && json.Unmarshal(b, &addrs) == nil {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the coordinator did not start within 30 s; see its log above")
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, cfg := range res.Agents {
		if err := start("agent", "--config", cfg, "--join", addrs.Gossip); err != nil {
			return err
		}
	}
	envPath := filepath.Join(dir, "grid.env")
	ca := filepath.Join(dir, "cluster", "ca.pem")
	if err := grid.WriteClientEnv(envPath, grid.ClientEnv{Addr: addrs.APIURL, Token: res.AdminToken, CA: ca}); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "grid up: coordinator and %d agents\nGRID_ADDR=%s\nGRID_TOKEN=%s\nGRID_CA=%s\n(. %s points the CLI at it; Ctrl-C stops the grid)\n", agents, addrs.APIURL, res.AdminToken, ca, envPath)
	// Run until interrupted. A dead agent is reported and left dead (the
	// coordinator declares it lost and the cluster carries on); a dead
	// coordinator ends the grid.
	for {
		select {
		case <-ctx.Done():
			// The deferred function stops the children; the exit status
			// is the signal's (130, 143).
			fmt.Fprintf(g.stdout, "grid up: stopping (%v)\n", context.Cause(ctx))
			return context.Cause(ctx)
		case msg := <-died:
			fmt.Fprintf(g.stderr, "grid up: %s\n", msg)
			if strings.HasPrefix(msg, "coordinator") {
				return errors.New(msg)
			}
		}
	}
}
