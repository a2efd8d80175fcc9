package jobspec

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Conf holds a job's settings: the [conf] table of the spec, overridden by
// --conf key=value pairs. Its keys are listed by ConfKeys and documented in
// docs/jobspec.md.
type Conf struct {
	Partitions       int      // partitions: reduce partitions per shuffle; 0 = the grid's task slots
	SplitSize        Size     // source.split_size: bytes of input per map task; 0 = sized to the grid (see docs)
	MaxRecord        Size     // source.max_record: longest line accepted
	TaskMemory       Size     // task.memory: memory limit of a task's wasm instance
	TaskTimeout      Duration // task.timeout: deadline of one task attempt
	MaxAttempts      int      // task.max_attempts: attempts per task before the job fails
	MaxOutput        Size     // task.max_output: bytes of records one task may produce
	BatchSize        Size     // batch.size: bytes of records per call into the guest
	ShuffleMemory    Size     // shuffle.memory: map-side buffer before records are combined
	CompressionLevel int      // shuffle.compression_level: zstd level of shuffle blocks, 1..4
	SinkOverwrite    bool     // sink.overwrite: replace an existing output directory
	// BroadcastThreshold is join.broadcast_threshold: a join whose right
	// side's input is at most this many bytes is a broadcast join; 0
	// turns broadcast joins off.
	BroadcastThreshold Size
}

// DefaultConf returns the settings of a spec without a [conf] table.
func DefaultConf() Conf {
	return Conf{
		Partitions:       0,
		SplitSize:        0,
		MaxRecord:        64 * MiB,
		TaskMemory:       512 * MiB,
		TaskTimeout:      Duration(10 * time.Minute),
		MaxAttempts:      3,
		MaxOutput:        16 * GiB,
		BatchSize:        256 * KiB,
		ShuffleMemory:    64 * MiB,
		CompressionLevel: 1,
		SinkOverwrite:    false,
		// Spark's spark.sql.autoBroadcastJoinThreshold.
		BroadcastThreshold: 10 * MiB,
	}
}

// ConfKeys returns the keys that Set accepts, in documentation order.
func ConfKeys() []string {
	return []string{
		"partitions",
		"source.split_size",
		"source.max_record",
		"task.memory",
		"task.timeout",
		"task.max_attempts",
		"task.max_output",
		"batch.size",
		"shuffle.memory",
		"shuffle.compression_level",
		"sink.overwrite",
		"join.broadcast_threshold",
	}
}

// Limits of the settings. A wasm32 instance addresses at most 4GiB, in
// pages of 64KiB.
const (
	minTaskMemory = 64 * KiB
	maxTaskMemory = 4 * GiB
)

// Set sets one setting from its text, as given by --conf key=value. It
// checks the value's type and range and leaves c unchanged on error.
func (c *Conf) Set(key, value string) error {
	return c.set(key, value)
}

// set sets one setting from a decoded TOML value (string, int64 or bool) or
// from the text of a --conf pair.
func (c *Conf) set(key string, v any) error {
	var err error
	switch key {
	case "partitions":
		c.Partitions, err = setInt(c.Partitions, key, v, 0, math.MaxInt32)
	case "source.split_size":
		c.SplitSize, err = setSize(c.SplitSize, key, v, 0, math.MaxInt64)
	case "source.max_record":
		c.MaxRecord, err = setSize(c.MaxRecord, key, v, 1, math.MaxInt64)
	case "task.memory":
		c.TaskMemory, err = setSize(c.TaskMemory, key, v, minTaskMemory, maxTaskMemory)
	case "task.timeout":
		c.TaskTimeout, err = setDuration(c.TaskTimeout, key, v)
	case "task.max_attempts":
		c.MaxAttempts, err = setInt(c.MaxAttempts, key, v, 1, math.MaxInt32)
	case "task.max_output":
		c.MaxOutput, err = setSize(c.MaxOutput, key, v, 1, math.MaxInt64)
	case "batch.size":
		c.BatchSize, err = setSize(c.BatchSize, key, v, 1, math.MaxInt64)
	case "shuffle.memory":
		c.ShuffleMemory, err = setSize(c.ShuffleMemory, key, v, 1, math.MaxInt64)
	case "shuffle.compression_level":
		c.CompressionLevel, err = setInt(c.CompressionLevel, key, v, 1, 4)
	case "sink.overwrite":
		c.SinkOverwrite, err = setBool(c.SinkOverwrite, key, v)
	case "join.broadcast_threshold":
		c.BroadcastThreshold, err = setSize(c.BroadcastThreshold, key, v, 0, math.MaxInt64)
	default:
		keys := ConfKeys()
		hint := ""
		if s := suggest(key, keys); s != "" {
			hint = fmt.Sprintf(" (did you mean %q?)", s)
		}
		return fmt.Errorf("%s: unknown conf key%s; known keys are: %s", key, hint, strings.Join(keys, ", "))
	}
	return err
}

func setInt(old int, key string, v any, lo, hi int64) (int, error) {
	var n int64
	switch v := v.(type) {
	case int64:
		n = v
	case string:
		var err error
		n, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return old, fmt.Errorf("%s: %s is out of range: %s", key, v, rangeText(lo, hi, strconv.FormatInt))
			}
			return old, fmt.Errorf("%s: %q is not an integer", key, v)
		}
	default:
		return old, fmt.Errorf("%s: expected an integer, found %s", key, tomlKind(v))
	}
	if n < lo || n > hi {
		return old, fmt.Errorf("%s: %d is out of range: %s", key, n, rangeText(lo, hi, strconv.FormatInt))
	}
	return int(n), nil
}

func setSize(old Size, key string, v any, lo, hi Size) (Size, error) {
	var n Size
	switch v := v.(type) {
	case int64:
		n = Size(v)
	case string:
		var err error
		n, err = ParseSize(v)
		if err != nil {
			return old, fmt.Errorf("%s: %w", key, err)
		}
	default:
		return old, fmt.Errorf("%s: expected a size like \"64MiB\" or an integer number of bytes, found %s", key, tomlKind(v))
	}
	if n < lo || n > hi {
		format := func(n int64, _ int) string { return Size(n).String() }
		return old, fmt.Errorf("%s: %v is out of range: %s", key, n, rangeText(int64(lo), int64(hi), format))
	}
	return n, nil
}

func setDuration(old Duration, key string, v any) (Duration, error) {
	s, ok := v.(string)
	if !ok {
		return old, fmt.Errorf("%s: expected a duration string like \"10m\" or \"90s\", found %s", key, tomlKind(v))
	}
	d, err := ParseDuration(s)
	if err != nil {
		return old, fmt.Errorf("%s: %w", key, err)
	}
	if d <= 0 {
		return old, fmt.Errorf("%s: %v is out of range: must be more than 0s", key, d)
	}
	return d, nil
}

func setBool(old bool, key string, v any) (bool, error) {
	switch v := v.(type) {
	case bool:
		return v, nil
	case string:
		switch strings.TrimSpace(v) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return old, fmt.Errorf("%s: %q is not a boolean: use true or false", key, v)
	}
	return old, fmt.Errorf("%s: expected true or false, found %s", key, tomlKind(v))
}

// rangeText describes the range lo..hi; an upper bound of MaxInt32 or
// MaxInt64 only guards against overflow and is not worth mentioning.
func rangeText(lo, hi int64, format func(int64, int) string) string {
	if hi == math.MaxInt32 || hi == math.MaxInt64 {
		return "must be at least " + format(lo, 10)
	}
	return "must be " + format(lo, 10) + " to " + format(hi, 10)
}
