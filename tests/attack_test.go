package tests

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/grid"
	"github.com/wasmgrid/wasmgrid/internal/storage"
)

// attackLab is a cluster of processes with two tenants: mallory, the
// attacker, and bob, whose files she is after. Each has a volume of its
// own, and both share a third.
type attackLab struct {
	*cluster
	root   string // the volumes' directories: root/mallory, root/bob, root/shared
	guest  string // a prebuilt module that the attacks' specs name
	specs  string // where the attacks' specs are written
	before map[string]string
}

func startAttackLab(t *testing.T) *attackLab {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"mallory/in", "bob/in", "shared"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("bob/in/secret.txt", "bob's secret words\n")
	write("mallory/in/mine.txt", "mallory's own words\n")
	c := startClusterCfg(t, 2, func(cfg *grid.CoordinatorConfig) {
		// Hundreds of attacks in a few seconds: past the default request
		// rate, which has its own test.
		cfg.Limits.RequestsPerSecond, cfg.Limits.RequestBurst = 10000, 10000
		cfg.Volumes = []storage.Volume{
			{Name: "mallory", URL: "file://" + filepath.Join(root, "mallory")},
			{Name: "bob", URL: "file://" + filepath.Join(root, "bob")},
			{Name: "shared", URL: "file://" + filepath.Join(root, "shared")},
		}
		for i, tn := range cfg.Tenants {
			switch tn.Name {
			case "mallory", "bob":
				cfg.Tenants[i].Grants = map[string]string{tn.Name: "read-write", "shared": "read-write"}
			default:
				cfg.Tenants[i].Grants = nil
			}
		}
	}, nil, "mallory", "bob")
	lab := &attackLab{cluster: c, root: root, guest: absRepoPath(t, "examples/wordcount/guest/c/guest.wasm"), specs: t.TempDir()}
	// Bob's outputs, committed by his own jobs: one in his volume, one in
	// the shared one.
	for _, out := range []string{"bob:out", "shared:bob-out"} {
		if _, err := lab.submit(c.tokens["bob"], "bob:in/*.txt", out, "text"); err != nil {
			t.Fatalf("bob's own job writing %s: %v", out, err)
		}
	}
	// Mallory plants links in her own volume that lead to bob's files and
	// the host's.
	for name, target := range map[string]string{
		"mallory/in/passwd":    "/etc/passwd",
		"mallory/in/bobs":      "../../bob/in/secret.txt",
		"mallory/bobdir":       "../bob/in",
		"mallory/bobout":       "../bob/out",
		"mallory/in/agentkey":  filepath.Join(c.dir, "agent-1-key.pem"),
		"mallory/in/relsecret": "../../../" + filepath.Base(c.dir) + "/gossip.key",
	} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	lab.before = lab.fingerprint(t)
	return lab
}

// submit runs a job of the given source kind and location and sink
// location as the token's tenant and waits for it.
func (l *attackLab) submit(token, source, sink, kind string) (string, error) {
	return l.submitSpec(token, l.spec(source, sink, kind, false))
}

// spec writes a job spec that reads source (of kind, or through a named
// dataset) and writes sink.
func (l *attackLab) spec(source, sink, kind string, viaDataset bool) string {
	src := fmt.Sprintf("[source]\n%s = %q\n", kind, source)
	if kind == "records" {
		src += "record_size = 10\n"
	}
	if viaDataset {
		extra := ""
		if kind == "records" {
			extra = ", record_size = 10"
		}
		src = fmt.Sprintf("[source]\ndataset = \"side\"\n\n[datasets.side]\nsource = { %s = %q%s }\n", kind, source, extra)
	}
	sinkLine := fmt.Sprintf("text = %q", sink)
	if sink == "" {
		sinkLine = `text = "-"`
	}
	return fmt.Sprintf("name = \"attack\"\n\n[modules.wc]\npath = %q\n\n%s\n[[steps]]\nflat_map = \"wc.split\"\n\n[sink]\n%s\n", l.guest, src, sinkLine)
}

func (l *attackLab) submitSpec(token, spec string, extra ...string) (string, error) {
	f, err := os.CreateTemp(l.specs, "attack-*.toml")
	if err != nil {
		return "", err
	}
	f.WriteString(spec)
	f.Close()
	return l.cli(token, append([]string{"submit", f.Name(), "--wait", "--progress", "none"}, extra...)...)
}

// fingerprint hashes every file and link under bob's and the shared
// volume, and the host files the attacks name.
func (l *attackLab) fingerprint(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, dir := range []string{filepath.Join(l.root, "bob"), filepath.Join(l.root, "shared")} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			out[p] = hex.EncodeToString(sum[:])
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestAttackSuite is a tenant of a real cluster trying, through every
// source kind, a named dataset, globs and planted symbolic links, to read
// the host's files, the coordinator's state, an agent's key and another
// tenant's inputs and outputs, and to write outside its volumes and into
// another tenant's output. Every attempt must be refused with the rule it
// breaks, and the other tenant's files must be byte-identical afterwards.
func TestAttackSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	l := startAttackLab(t)
	mallory := l.tokens["mallory"]
	bobIn := filepath.Join(l.root, "bob", "in", "secret.txt")
	reads := []struct{ source, want string }{
		{"/etc/passwd", "is in no volume granted to tenant mallory"},
		{"file:///etc/shadow", "is in no volume granted to tenant mallory"},
		{filepath.Join(l.dir, "coordinator-state", "*"), "is in no volume granted"},
		{filepath.Join(l.dir, "coordinator-state", "results", "*", "part-*"), "is in no volume granted"},
		{filepath.Join(l.dir, "agent-1-key.pem"), "is in no volume granted"},
		{filepath.Join(l.dir, "gossip.key"), "is in no volume granted"},
		{bobIn, "is in no volume granted"},
		{filepath.Join(l.root, "mallory", "..", "bob", "in", "*.txt"), "is in no volume granted"},
		{"bob:in/secret.txt", `no volume "bob" is granted to tenant mallory`},
		{"mallory:../bob/in/secret.txt", "climbs above the root of volume mallory"},
		{"mallory:in/*/../../../bob/in/*", "climbs above the root of volume mallory"},
		{"mallory:in/passwd", "leads out of volume mallory"},
		{"mallory:in/bobs", "leads out of volume mallory"},
		{"mallory:bobdir/*", "leads out of volume mallory"},
		{"mallory:in/*", "leads out of volume mallory"}, // the glob meets the planted links
		{"mallory:in/agentkey", "leads out of volume mallory"},
		{"mallory:in/relsecret", "leads out of volume mallory"},
		{"s3://bobs-bucket/in/*", "bucket bobs-bucket holds no volume granted to tenant mallory"},
		{"shared:../bob/in/secret.txt", "climbs above the root of volume shared"},
	}
	// The attacks go to the API as they are: the CLI's checks run on the
	// client's machine, and an attacker skips them.
	ctx := context.Background()
	client := l.remote(mallory)
	wasm, err := os.ReadFile(l.guest)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := client.PushModule(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	attack := func(spec string, conf map[string]string) error {
		_, err := client.SubmitRequest(ctx, api.SubmitRequest{Spec: spec, File: filepath.Join(l.specs, "attack.toml"), Modules: map[string]string{"wc": hash}, Conf: conf})
		return err
	}
	for _, kind := range []string{"text", "csv", "json", "records"} {
		for _, viaDataset := range []bool{false, true} {
			for _, r := range reads {
				err := attack(l.spec(r.source, "", kind, viaDataset), nil)
				if err == nil || !strings.Contains(err.Error(), r.want) {
					t.Errorf("mallory reading %s (%s, dataset %v): %v; want a refusal saying %q", r.source, kind, viaDataset, err, r.want)
				}
			}
		}
	}
	writes := []struct {
		sink      string
		overwrite bool
		want      string
	}{
		{"/tmp/mallory-escape", false, "is in no volume granted to tenant mallory"},
		{filepath.Join(l.root, "bob", "out"), true, "is in no volume granted"},
		{filepath.Join(l.dir, "coordinator-state", "results"), true, "is in no volume granted"},
		{"bob:out", true, `no volume "bob" is granted to tenant mallory`},
		{"mallory:../bob/out", true, "climbs above the root of volume mallory"},
		{"mallory:bobout", true, "leads out of volume mallory"},
		{"mallory:bobdir/planted", false, "leads out of volume mallory"},
		{"mallory:", false, "not its root"},
		{"shared:bob-out", false, "holds another tenant's output"},
		{"shared:bob-out", true, "holds another tenant's output"},
		{"shared:", true, "not its root"},
	}
	for _, w := range writes {
		conf := map[string]string{"sink.overwrite": fmt.Sprint(w.overwrite)}
		err := attack(l.spec("mallory:in/mine.txt", w.sink, "text", false), conf)
		if err == nil || !strings.Contains(err.Error(), w.want) {
			t.Errorf("mallory writing %s (overwrite %v): %v; want a refusal saying %q", w.sink, w.overwrite, err, w.want)
		}
	}
	// What mallory may do still works: her own volume, and the shared one.
	if _, err := l.submit(mallory, "mallory:in/mine.txt", "mallory:out", "text"); err != nil {
		t.Errorf("mallory's own job: %v", err)
	}
	if _, err := l.submit(mallory, "mallory:in/mine.txt", "shared:mallory-out", "text"); err != nil {
		t.Errorf("mallory writing the shared volume: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(l.root, "mallory", "out", "part-00000")); err != nil || !strings.Contains(string(b), "mallory\t1") {
		t.Errorf("mallory's output: %q, %v", b, err)
	}
	after := l.fingerprint(t)
	for p, h := range l.before {
		if after[p] != h {
			t.Errorf("%s changed (or went) under the attacks", p)
		}
	}
	var added []string
	for p := range after {
		if _, ok := l.before[p]; !ok && !strings.HasPrefix(p, filepath.Join(l.root, "shared", "mallory-out")) {
			added = append(added, p)
		}
	}
	sort.Strings(added)
	if len(added) > 0 {
		t.Errorf("files appeared in bob's or the shared volume: %q", added)
	}
	if _, err := os.Stat("/tmp/mallory-escape"); err == nil {
		t.Error("/tmp/mallory-escape was written")
	}
	// Bob replaces his own output, as before.
	if _, err := l.submitSpec(l.tokens["bob"], l.spec("bob:in/*.txt", "shared:bob-out", "text", false), "--conf", "sink.overwrite=true"); err != nil {
		t.Errorf("bob replacing his own output: %v", err)
	}
}

func absRepoPath(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(repoPath(rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
