package jobspec

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Size is a number of bytes. In a spec it is written as a bare TOML integer
// (bytes) or as a string with an optional unit: "4096", "512KiB", "64MiB",
// "1GiB", "1GB". KiB, MiB, GiB and TiB are powers of 1024; KB, MB, GB and TB
// are powers of 1000.
type Size int64

// Byte multiples understood by ParseSize.
const (
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
	TiB Size = 1 << 40
)

// sizeUnit returns the multiplier of a unit suffix.
func sizeUnit(unit string) (Size, bool) {
	switch unit {
	case "", "B":
		return 1, true
	case "KiB":
		return KiB, true
	case "MiB":
		return MiB, true
	case "GiB":
		return GiB, true
	case "TiB":
		return TiB, true
	case "KB":
		return 1e3, true
	case "MB":
		return 1e6, true
	case "GB":
		return 1e9, true
	case "TB":
		return 1e12, true
	}
	return 0, false
}

// ParseSize parses a size: a whole number of bytes, optionally followed by a
// unit (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB), like "64MiB" or "4096".
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 || (i < len(t) && (t[i] == '.' || t[i] == ',')) {
		return 0, fmt.Errorf("%q is not a size: use a whole number of bytes, or one with a unit, like \"64MiB\", \"512KiB\" or \"1GB\"", s)
	}
	unit := strings.TrimSpace(t[i:])
	mult, ok := sizeUnit(unit)
	if !ok {
		return 0, fmt.Errorf("%q is not a size: unknown unit %q; units are B, KiB, MiB, GiB, TiB (powers of 1024) and KB, MB, GB, TB (powers of 1000)", s, unit)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > math.MaxInt64/int64(mult) {
		return 0, fmt.Errorf("%q is too large a size", s)
	}
	return Size(n) * mult, nil
}

// String renders the size in the largest binary unit that divides it
// exactly, like "64MiB", or in bytes, like "1000B". ParseSize reads it back.
func (s Size) String() string {
	for _, u := range []struct {
		n    Size
		name string
	}{{TiB, "TiB"}, {GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if s != 0 && s%u.n == 0 {
			return strconv.FormatInt(int64(s/u.n), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseSize.
func (s *Size) UnmarshalText(text []byte) error {
	v, err := ParseSize(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalText implements encoding.TextMarshaler with String.
func (s Size) MarshalText() ([]byte, error) {
	return []byte(s.String()), nil
}

// Duration is a time.Duration written in Go syntax in a spec ("90s", "10m",
// "1h30m"): go-toml does not decode strings into time.Duration.
type Duration time.Duration

// ParseDuration parses a duration in Go syntax, like "90s" or "10m".
func ParseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: use Go syntax, like \"90s\", \"10m\" or \"1h30m\"", s)
	}
	return Duration(d), nil
}

// String renders the duration like time.Duration does ("10m0s").
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalText implements encoding.TextUnmarshaler with ParseDuration.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := ParseDuration(string(text))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalText implements encoding.TextMarshaler with String.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.String()), nil
}
