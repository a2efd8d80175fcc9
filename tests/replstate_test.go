package tests

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/sdk"
)

// TestClusterReplicatedState: tokens and modules survive the leader's
// death. On three coordinator servers, a token is created, another
// revoked and a module uploaded; the leader is killed (SIGKILL, never
// restarted); on the new leader the created token works, the revoked
// one is refused (401), and a job naming the uploaded module by its hash
// runs to an exact result.
func TestClusterReplicatedState(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	bin := buildGrid(t)
	wasm := buildGuest(t, "go", "examples/wordcount/guest/go")
	dir := t.TempDir()
	env := startGridUp(t, bin, filepath.Join(dir, "grid"), "--coordinators", "3", "--agents", "2")
	remote := func(token string) *sdk.Remote {
		r, err := sdk.NewRemote(sdk.RemoteConfig{Addr: env["GRID_ADDR"], Token: token, CAFile: env["GRID_CA"]})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	admin := remote(env["GRID_TOKEN"])
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	waitFor(t, time.Minute, "two alive agents", func() bool {
		ags, err := admin.Agents(ctx)
		return err == nil && len(ags) == 2 && ags[0].Status == "alive" && ags[1].Status == "alive"
	})

	kept, err := admin.CreateToken(ctx, "default", api.RoleSubmit)
	if err != nil {
		t.Fatal(err)
	}
	gone, err := admin.CreateToken(ctx, "default", api.RoleSubmit)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RevokeToken(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	tenant, revoked := remote(kept.Token), remote(gone.Token)
	if _, err := revoked.Jobs(ctx); !unauthorized(err) {
		t.Fatalf("the revoked token before the failover: %v", err)
	}
	mod, err := tenant.PushModuleFrom(ctx, bytes.NewReader(wasm))
	if err != nil {
		t.Fatal(err)
	}

	var leader api.ServerInfo
	for _, s := range admin.Servers(ctx) {
		if s.Leader {
			leader = s
		}
	}
	if leader.PID == 0 {
		t.Fatalf("no server leads: %+v", admin.Servers(ctx))
	}
	if err := syscall.Kill(leader.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var newLeader string
	waitFor(t, time.Minute, "another server to lead", func() bool {
		for _, s := range admin.Servers(ctx) {
			if s.Leader && s.Name != leader.Name {
				newLeader = s.Name
				return true
			}
		}
		return false
	})
	t.Logf("%s (pid %d) killed; %s leads", leader.Name, leader.PID, newLeader)

	if _, err := tenant.Jobs(ctx); err != nil {
		t.Errorf("the token created before the failover: %v", err)
	}
	if _, err := revoked.Jobs(ctx); !unauthorized(err) {
		t.Errorf("the token revoked before the failover: %v, want 401", err)
	}
	mods, err := tenant.Modules(ctx)
	if err != nil || len(mods) != 1 || mods[0].Hash != mod.Hash {
		t.Errorf("the tenant's modules on the new leader: %v %+v", err, mods)
	}

	// Every server holds the module's file: the dead leader's and the
	// two others' (pushed before the acknowledgement, or fetched when
	// they applied its record).
	waitFor(t, time.Minute, "the module's file on every server", func() bool {
		files, _ := filepath.Glob(filepath.Join(dir, "grid", "cluster", "coordinator-*-state", "coordinator", "modules", mod.Hash+".wasm"))
		return len(files) == 3
	})

	input := filepath.Join(dir, "corpus.txt")
	if err := writeCorpus(input, 1<<20, 5); err != nil {
		t.Fatal(err)
	}
	output := filepath.Join(dir, "counts")
	job := repoPath("examples/wordcount/job.toml")
	spec, err := os.ReadFile(job)
	if err != nil {
		t.Fatal(err)
	}
	// The admin submits for the tenant (its volumes are the admin's), with
	// the module the tenant uploaded to the dead leader, by hash.
	id, err := admin.SubmitRequest(ctx, api.SubmitRequest{Spec: string(spec), File: job, Tenant: "default",
		Params: map[string]string{"input": input, "output": output}, Modules: map[string]string{"wc": mod.Hash}})
	if err != nil {
		t.Fatalf("a job naming the module uploaded before the failover: %v", err)
	}
	if _, err := admin.Watch(ctx, id, nil); err != nil {
		t.Fatalf("job %s: %v", id, err)
	}
	sameCounts(t, readCounts(t, output), referenceCounts(t, input))
}

func unauthorized(err error) bool {
	var ae *sdk.APIError
	return errors.As(err, &ae) && ae.Status == 401
}
