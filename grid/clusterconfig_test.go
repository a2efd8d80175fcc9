package grid

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmgrid/wasmgrid/internal/jobspec"
	"github.com/wasmgrid/wasmgrid/internal/storage"
)

// TestExampleConfigIsValidTOML: every key grid config example prints is a
// real setting (the decoder refuses unknown keys), and the agent part,
// uncommented, is too.
func TestExampleConfigIsValidTOML(t *testing.T) {
	dir := t.TempDir()
	coord, agent, ok := strings.Cut(ExampleConfig, "# ---- agent.toml ----")
	if !ok {
		t.Fatal("the example has no agent part")
	}
	var c CoordinatorConfig
	path := filepath.Join(dir, "c.toml")
	os.WriteFile(path, []byte(coord), 0o600)
	if err := decodeConfig(path, &c); err != nil {
		t.Fatal(err)
	}
	if c.APIAddr != DefaultAPIAddr || c.ControlAddr != DefaultControlAddr || c.GossipAddr != DefaultGossipAddr || len(c.Tenants) != 1 {
		t.Errorf("the example's defaults differ from the code's: %+v", c)
	}
	if c.Audit != (AuditConfig{MaxSize: DefaultAuditMaxSize, MaxBackups: DefaultAuditMaxBackups, MaxAge: jobspec.Duration(DefaultAuditMaxAge)}) {
		t.Errorf("the example's audit settings differ from the code's defaults: %+v", c.Audit)
	}
	if c.Limits != DefaultLimits() {
		t.Errorf("the example's limits differ from the code's:\n%+v\n%+v", c.Limits, DefaultLimits())
	}
	var uncommented []string
	for line := range strings.Lines(agent) {
		uncommented = append(uncommented, strings.TrimPrefix(line, "# "))
	}
	var a AgentConfig
	path = filepath.Join(dir, "a.toml")
	os.WriteFile(path, []byte(strings.Join(uncommented, "")), 0o600)
	if err := decodeConfig(path, &a); err != nil {
		t.Fatal(err)
	}
	if a.Name != "agent-1" || len(a.Join) != 1 {
		t.Errorf("agent part: %+v", a)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	base := "state_dir = \"s\"\ngossip_key = \"k\"\nadmin_token_sha256 = \"" + strings.Repeat("ab", 32) + "\"\n[tls]\nca=\"a\"\ncert=\"b\"\nkey=\"c\"\n"
	tests := []struct {
		name, text, want string
	}{
		{"unknown key", "state_dir = \"s\"\napi_adr = \"x\"\n", "api_adr"},
		{"bad size", "name = \"a\"\nmemory = \"lots\"\n", "lots"},
		{"missing tls", "state_dir = \"s\"\ngossip_key = \"k\"\nadmin_token_sha256 = \"" + strings.Repeat("ab", 32) + "\"\n", "tls.ca"},
		{"bad token hash", base + "[[tenants]]\nname = \"t\"\ntoken_sha256 = \"secret\"\n", "64 hex digits"},
		{"unknown volume", base + "[[tenants]]\nname = \"t\"\ngrants = { lake = \"read\" }\n", `tenant "t" is granted volume "lake", which no [[volumes]] defines`},
		{"bad access", base + "[[volumes]]\nname = \"lake\"\nurl = \"file:///srv\"\n[[tenants]]\nname = \"t\"\ngrants = { lake = \"all\" }\n", `access "all" must be "read" or "read-write"`},
		{"relative volume", base + "[[volumes]]\nname = \"lake\"\nurl = \"file://srv\"\n", "absolute, clean directory"},
		{"grid volume", base + "[[volumes]]\nname = \"grid.results\"\nurl = \"file:///srv\"\n", "the grid's own"},
		{"unknown results volume", "results_volume = \"shared\"\n" + base, `results_volume "shared" is not one of the [[volumes]]`},
		{"granted results volume", "results_volume = \"shared\"\n" + base + "[[volumes]]\nname = \"shared\"\nurl = \"file:///srv\"\n[[tenants]]\nname = \"t\"\ngrants = { shared = \"read\" }\n", `results_volume "shared" is granted to tenant "t"`},
		{"twice", base + "[[volumes]]\nname = \"a1\"\nurl = \"file:///srv\"\n[[volumes]]\nname = \"a1\"\nurl = \"file:///x\"\n", "defined twice"},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, tt.name+".toml")
		os.WriteFile(path, []byte(tt.text), 0o600)
		var err error
		if strings.Contains(tt.text, "memory") {
			_, err = LoadAgentConfig(path)
		} else {
			_, err = LoadCoordinatorConfig(path)
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tt.name, err, tt.want)
		}
	}
}

func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte(ExampleConfig))
	f.Add([]byte("name = \"a\"\njoin = [\"x:1\"]\ncpus = 2.5\nmemory = \"1GiB\"\n"))
	f.Add([]byte("[[tenants]]\nname = 1\n"))
	f.Add([]byte("state_dir = \"s\"\ninsecure_http = true\napi_addr = \"0.0.0.0:1\"\n[limits]\npartitions = -1\ninspector_memory = \"1KiB\"\n[audit]\nmax_size = \"1B\"\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "c.toml")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Skip()
		}
		_, _ = LoadCoordinatorConfig(path)
		_, _ = LoadAgentConfig(path)
	})
}

func TestVolumesExposingState(t *testing.T) {
	vols := []storage.Volume{{Name: "all", URL: "file:///"}, {Name: "data", URL: "file:///srv/data"}, {Name: "lake", URL: "s3://lake"}}
	got := exposed(vols, "/var/lib/wasmgrid/state", "/srv/data/../keys/coordinator-key.pem")
	if len(got) != 2 || !strings.Contains(got[0], "volume all") || !strings.Contains(got[1], "/srv/keys/coordinator-key.pem") {
		t.Errorf("exposed = %q; want volume all holding both files", got)
	}
	if got := exposed(vols[1:], "/var/lib/wasmgrid/state"); len(got) != 0 {
		t.Errorf("exposed = %q; want nothing", got)
	}
}
