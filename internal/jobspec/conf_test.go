package jobspec

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		err  string
	}{
		{in: "0", want: 0},
		{in: "4096", want: 4096},
		{in: "4096B", want: 4096},
		{in: "512KiB", want: 512 << 10},
		{in: "64MiB", want: 64 << 20},
		{in: "1GiB", want: 1 << 30},
		{in: "2TiB", want: 2 << 40},
		{in: "1KB", want: 1000},
		{in: "5MB", want: 5e6},
		{in: "3GB", want: 3e9},
		{in: "1TB", want: 1e12},
		{in: " 64 MiB ", want: 64 << 20},
		{in: "9223372036854775807", want: 1<<63 - 1},
		{in: "", err: `"" is not a size: use a whole number of bytes, or one with a unit, like "64MiB", "512KiB" or "1GB"`},
		{in: "MiB", err: `"MiB" is not a size: use a whole number of bytes, or one with a unit, like "64MiB", "512KiB" or "1GB"`},
		{in: "-1", err: `"-1" is not a size: use a whole number of bytes, or one with a unit, like "64MiB", "512KiB" or "1GB"`},
		{in: "1.5GiB", err: `"1.5GiB" is not a size: use a whole number of bytes, or one with a unit, like "64MiB", "512KiB" or "1GB"`},
		{in: "64mb", err: `"64mb" is not a size: unknown unit "mb"; units are B, KiB, MiB, GiB, TiB (powers of 1024) and KB, MB, GB, TB (powers of 1000)`},
		{in: "64M", err: `"64M" is not a size: unknown unit "M"; units are B, KiB, MiB, GiB, TiB (powers of 1024) and KB, MB, GB, TB (powers of 1000)`},
		{in: "9223372036854775808", err: `"9223372036854775808" is too large a size`},
		{in: "8388608TiB", err: `"8388608TiB" is too large a size`},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseSize(%q) = %v, %v; want error %s", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		// String reads back.
		if back, err := ParseSize(got.String()); err != nil || back != got {
			t.Errorf("ParseSize(%q.String() = %q) = %v, %v", tt.in, got.String(), back, err)
		}
	}
}

func TestSizeString(t *testing.T) {
	for s, want := range map[Size]string{
		0: "0B", 1: "1B", 1000: "1000B", 1024: "1KiB", 1536: "1536B",
		64 * MiB: "64MiB", 3 * GiB: "3GiB", TiB: "1TiB", 1e9: "1000000000B",
	} {
		if got := s.String(); got != want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(s), got, want)
		}
	}
}

func TestDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90s": 90 * time.Second, "10m": 10 * time.Minute, "1h30m": 90 * time.Minute, "250ms": 250 * time.Millisecond,
	} {
		var d Duration
		if err := d.UnmarshalText([]byte(in)); err != nil || time.Duration(d) != want {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", in, d, err, want)
		}
	}
	for _, in := range []string{"", "10", "ten minutes", "1d"} {
		var d Duration
		err := d.UnmarshalText([]byte(in))
		want := `"` + in + `" is not a duration: use Go syntax, like "90s", "10m" or "1h30m"`
		if err == nil || err.Error() != want {
			t.Errorf("UnmarshalText(%q) = %v, want %s", in, err, want)
		}
	}
	if got := Duration(10 * time.Minute).String(); got != "10m0s" {
		t.Errorf("String = %q", got)
	}
}

// TestTextUnmarshal checks that go-toml decodes Size and Duration from
// strings, as the field notes say it must be helped to.
func TestTextUnmarshal(t *testing.T) {
	var v struct {
		S Size     `toml:"s"`
		D Duration `toml:"d"`
	}
	if err := toml.NewDecoder(strings.NewReader("s = \"64MiB\"\nd = \"250ms\"\n")).Decode(&v); err != nil {
		t.Fatal(err)
	}
	if v.S != 64*MiB || v.D != Duration(250*time.Millisecond) {
		t.Errorf("got %+v", v)
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(v); err != nil || !strings.Contains(buf.String(), "64MiB") {
		t.Errorf("Encode = %q, %v", buf.String(), err)
	}
}

func TestConfSet(t *testing.T) {
	tests := []struct {
		key, value string
		check      func(Conf) bool
		err        string
	}{
		{key: "partitions", value: "16", check: func(c Conf) bool { return c.Partitions == 16 }},
		{key: "partitions", value: "0", check: func(c Conf) bool { return c.Partitions == 0 }},
		{key: "source.split_size", value: "128MiB", check: func(c Conf) bool { return c.SplitSize == 128*MiB }},
		{key: "source.max_record", value: "1000", check: func(c Conf) bool { return c.MaxRecord == 1000 }},
		{key: "task.memory", value: "4GiB", check: func(c Conf) bool { return c.TaskMemory == 4*GiB }},
		{key: "task.timeout", value: "90s", check: func(c Conf) bool { return c.TaskTimeout == Duration(90*time.Second) }},
		{key: "task.max_attempts", value: "1", check: func(c Conf) bool { return c.MaxAttempts == 1 }},
		{key: "batch.size", value: "1MB", check: func(c Conf) bool { return c.BatchSize == 1e6 }},
		{key: "shuffle.memory", value: "1GiB", check: func(c Conf) bool { return c.ShuffleMemory == GiB }},
		{key: "shuffle.compression_level", value: "4", check: func(c Conf) bool { return c.CompressionLevel == 4 }},
		{key: "sink.overwrite", value: "true", check: func(c Conf) bool { return c.SinkOverwrite }},
		{key: "partitions", value: "-1", err: `partitions: -1 is out of range: must be at least 0`},
		{key: "partitions", value: "99999999999999999999", err: `partitions: 99999999999999999999 is out of range: must be at least 0`},
		{key: "partitions", value: "4096GiB", err: `partitions: "4096GiB" is not an integer`},
		{key: "source.split_size", value: "0", check: func(c Conf) bool { return c.SplitSize == 0 }},
		{key: "task.memory", value: "1KiB", err: `task.memory: 1KiB is out of range: must be 64KiB to 4GiB`},
		{key: "task.timeout", value: "0s", err: `task.timeout: 0s is out of range: must be more than 0s`},
		{key: "task.timeout", value: "-1m", err: `task.timeout: -1m0s is out of range: must be more than 0s`},
		{key: "task.max_attempts", value: "x", err: `task.max_attempts: "x" is not an integer`},
		{key: "shuffle.compression_level", value: "0", err: `shuffle.compression_level: 0 is out of range: must be 1 to 4`},
		{key: "sink.overwrite", value: "1", err: `sink.overwrite: "1" is not a boolean: use true or false`},
		{key: "task.timout", value: "1m", err: `task.timout: unknown conf key (did you mean "task.timeout"?); known keys are: partitions, source.split_size, source.max_record, task.memory, task.timeout, task.max_attempts, task.max_output, batch.size, shuffle.memory, shuffle.compression_level, sink.overwrite, join.broadcast_threshold`},
		{key: "workers", value: "1", err: `workers: unknown conf key; known keys are: partitions, source.split_size, source.max_record, task.memory, task.timeout, task.max_attempts, task.max_output, batch.size, shuffle.memory, shuffle.compression_level, sink.overwrite, join.broadcast_threshold`},
	}
	for _, tt := range tests {
		c := DefaultConf()
		err := c.Set(tt.key, tt.value)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("Set(%q, %q) = %v, want %s", tt.key, tt.value, err, tt.err)
			}
			if c != DefaultConf() {
				t.Errorf("Set(%q, %q) failed but changed the conf to %+v", tt.key, tt.value, c)
			}
			continue
		}
		if err != nil || !tt.check(c) {
			t.Errorf("Set(%q, %q) = %v, conf %+v", tt.key, tt.value, err, c)
		}
	}
}

// TestConfKeysComplete checks that every key of ConfKeys is accepted by Set
// and by [conf] in a file, with the same effect.
func TestConfKeysComplete(t *testing.T) {
	sample := map[string]string{
		"partitions": "7", "source.split_size": "1MiB", "source.max_record": "2MiB",
		"task.memory": "256MiB", "task.timeout": "1m", "task.max_attempts": "9", "task.max_output": "7MiB",
		"batch.size": "3KiB", "shuffle.memory": "5MiB", "shuffle.compression_level": "2",
		"sink.overwrite": "true", "join.broadcast_threshold": "1MiB",
	}
	want := DefaultConf()
	var file strings.Builder
	file.WriteString(strings.Replace(baseSpec, "partitions = 4\n", "", 1))
	for _, k := range ConfKeys() {
		v, ok := sample[k]
		if !ok {
			t.Fatalf("no sample value for %s", k)
		}
		if err := want.Set(k, v); err != nil {
			t.Fatal(err)
		}
		file.WriteString(k + " = \"" + v + "\"\n")
	}
	if want == DefaultConf() {
		t.Fatal("samples change nothing")
	}
	s, err := Parse([]byte(file.String()), "job.toml", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Conf != want {
		t.Errorf("file conf = %+v, want %+v", s.Conf, want)
	}
	if len(sample) != len(ConfKeys()) {
		t.Errorf("ConfKeys has %d keys, samples %d", len(ConfKeys()), len(sample))
	}
}
