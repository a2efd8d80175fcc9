package main

import (
	"context"
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
			fmt.Fprintf(g.stdout, "cluster files in %s\n", args[0])
			for _, c := range res.Coordinators {
				fmt.Fprintf(g.stdout, "coordinator config: %s\n", c)
			}
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
	cmd.Flags().IntVar(&opts.Coordinators, "coordinators", 1, "coordinator servers sharing the job state: 1, 3 or 5")
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
	var insecureHTTP, joinCluster bool
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
			cfg.JoinCluster = cfg.JoinCluster || joinCluster
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
	cmd.Flags().BoolVar(&joinCluster, "join-cluster", false, "a server grid servers add just added: an empty state_dir takes the leader's state (also join_cluster in the config)")
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
	var o upOptions
	cmd := &cobra.Command{
		Use:   "up [--coordinators N] [--agents M] [--restart]",
		Short: "Run coordinator servers and agents as child processes on loopback",
		Long: `up starts a whole cluster on this machine: N coordinator servers (1, 3 or 5,
sharing the job state through a replicated log) and M agents, each its own
process, talking over real QUIC and serf on loopback. It prints the API
addresses and the admin token and writes them, with the cluster's
certificate authority, to grid.env in the state directory (". grid.env"
points the CLI at it; the API serves HTTPS).

A process that dies is reported; the grid goes on with the others (a
majority of the coordinator servers keeps it working). With --restart, a
dead process is started again after a back-off, as a service manager
would. Ctrl-C stops them all.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return up(cmd.Context(), g, o)
		},
	}
	cmd.Flags().IntVar(&o.agents, "agents", 3, "agents to start")
	cmd.Flags().IntVar(&o.coordinators, "coordinators", 1, "coordinator servers to start: 1, 3 or 5")
	cmd.Flags().BoolVar(&o.restart, "restart", false, "start a coordinator or agent that dies again, after a back-off")
	cmd.Flags().StringVar(&o.stateDir, "state-dir", "grid-state", "where the cluster's files live")
	return cmd
}

type upOptions struct {
	agents, coordinators int
	restart              bool
	stateDir             string
}

// upChild is a process grid up runs.
type upChild struct {
	name string
	args []string
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
	// crashes counts its deaths in a row, for the restart back-off.
	crashes int
}

// up runs a cluster of child processes until ctx ends.
func up(ctx context.Context, g *globals, o upOptions) error {
	if o.agents < 1 {
		return errors.New("--agents must be at least 1")
	}
	dir, err := filepath.Abs(o.stateDir)
	if err != nil {
		return err
	}
	// A fresh cluster each time: certificates, keys and tokens are cheap.
	if err := os.RemoveAll(filepath.Join(dir, "cluster")); err != nil {
		return err
	}
	// Ports are chosen now and kept: a coordinator that restarts is found
	// where agents and clients left it.
	res, err := grid.InitCluster(grid.InitOptions{
		Dir: filepath.Join(dir, "cluster"), Agents: o.agents, Coordinators: o.coordinators,
		APIAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0", FixedPorts: true,
	})
	if err != nil {
		return err
	}
	// A cluster on this machine is the local user's: their jobs (the admin
	// token submits as tenant "default") read and write their files, as
	// grid run's do.
	var apis, gossips []string
	for _, path := range res.Coordinators {
		cfg, err := grid.LoadCoordinatorConfig(path)
		if err != nil {
			return err
		}
		cfg.Volumes = append(cfg.Volumes, storage.Volume{Name: grid.LocalVolume, URL: "file:///"})
		cfg.Tenants = append(cfg.Tenants, grid.TenantConfig{Name: "default", Weight: 1, Grants: map[string]string{grid.LocalVolume: "read-write"}})
		if err := grid.WriteConfig(path, cfg); err != nil {
			return err
		}
		apis = append(apis, "https://"+cfg.APIAddr)
		gossips = append(gossips, cfg.GossipAddr)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var children []*upChild
	died := make(chan *upChild, 2*(o.agents+o.coordinators))
	defer func() {
		for _, c := range children {
			if c.cmd != nil {
				_ = c.cmd.Process.Signal(syscall.SIGTERM)
			}
		}
		for _, c := range children {
			if c.cmd == nil {
				continue
			}
			select {
			case <-c.done:
			case <-time.After(10 * time.Second):
				_ = c.cmd.Process.Kill()
				<-c.done
			}
		}
	}()
	start := func(c *upChild) error {
		cmd := exec.Command(exe, append(c.args, "--log-level", g.logLevel)...)
		cmd.Stdout, cmd.Stderr = g.stderr, g.stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
		if err := cmd.Start(); err != nil {
			return err
		}
		c.cmd, c.done = cmd, make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(c.done)
			died <- c
		}()
		return nil
	}
	for _, path := range res.Coordinators {
		c := &upChild{name: strings.TrimSuffix(filepath.Base(path), ".toml"), args: []string{"coordinator", "--config", path}}
		children = append(children, c)
		if err := start(c); err != nil {
			return err
		}
	}
	for _, path := range res.Agents {
		args := []string{"agent", "--config", path}
		for _, gsp := range gossips {
			args = append(args, "--join", gsp)
		}
		c := &upChild{name: strings.TrimSuffix(filepath.Base(path), ".toml"), args: args}
		children = append(children, c)
		if err := start(c); err != nil {
			return err
		}
	}
	envPath := filepath.Join(dir, "grid.env")
	ca := filepath.Join(dir, "cluster", "ca.pem")
	addr := strings.Join(apis, ",")
	if err := grid.WriteClientEnv(envPath, grid.ClientEnv{Addr: addr, Token: res.AdminToken, CA: ca}); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "grid up: %d coordinator server(s) and %d agents\nGRID_ADDR=%s\nGRID_TOKEN=%s\nGRID_CA=%s\n(. %s points the CLI at it; Ctrl-C stops the grid)\n", o.coordinators, o.agents, addr, res.AdminToken, ca, envPath)
	restarts := make(chan *upChild)
	for {
		select {
		case <-ctx.Done():
			// The deferred function stops the children; the exit status
			// is the signal's (130, 143).
			fmt.Fprintf(g.stdout, "grid up: stopping (%v)\n", context.Cause(ctx))
			return context.Cause(ctx)
		case c := <-died:
			fmt.Fprintf(g.stderr, "grid up: %s exited: %v\n", c.name, c.cmd.ProcessState)
			if !o.restart {
				fmt.Fprintf(g.stderr, "grid up: %s stays down (--restart starts it again); the grid goes on with the others\n", c.name)
				continue
			}
			c.crashes++
			wait := min(time.Duration(1<<min(c.crashes-1, 5))*time.Second, 30*time.Second)
			fmt.Fprintf(g.stderr, "grid up: starting %s again in %s\n", c.name, wait)
			time.AfterFunc(wait, func() {
				select {
				case restarts <- c:
				case <-ctx.Done():
				}
			})
		case c := <-restarts:
			if err := start(c); err != nil {
				fmt.Fprintf(g.stderr, "grid up: start %s again: %v\n", c.name, err)
			}
		}
	}
}
