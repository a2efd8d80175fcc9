package grid

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmgrid/wasmgrid/internal/jobspec"
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
	tests := []struct {
		name, text, want string
	}{
		{"unknown key", "state_dir = \"s\"\napi_adr = \"x\"\n", "api_adr"},
		{"bad size", "name = \"a\"\nmemory = \"lots\"\n", "lots"},
		{"missing tls", "state_dir = \"s\"\ngossip_key = \"k\"\nadmin_token_sha256 = \"" + strings.Repeat("ab", 32) + "\"\n", "tls.ca"},
		{"bad token hash", "state_dir = \"s\"\ngossip_key = \"k\"\n[tls]\nca=\"a\"\ncert=\"b\"\nkey=\"c\"\n[[tenants]]\nname = \"t\"\ntoken_sha256 = \"secret\"\n", "64 hex digits"},
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
