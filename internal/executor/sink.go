package executor

import (
	"bufio"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// recordWriter returns the function that writes one record of a result
// part in format (Settings.OutputFormat) to w.
func recordWriter(w *bufio.Writer, format string) (func(key, value []byte) error, error) {
	switch format {
	case "", "text":
		return func(key, value []byte) error {
			if len(key) > 0 {
				w.Write(key)
				w.WriteByte('\t')
			}
			w.Write(value)
			return w.WriteByte('\n')
		}, nil
	case "records":
		return func(key, value []byte) error {
			w.Write(key)
			_, err := w.Write(value)
			return err
		}, nil
	case "json":
		var line []byte
		return func(key, value []byte) error {
			line = append(line[:0], '{')
			line = appendJSONField(line, "key", key)
			line = append(line, ',')
			line = appendJSONField(line, "value", value)
			line = append(line, '}', '\n')
			_, err := w.Write(line)
			return err
		}, nil
	case "csv", "csv_header":
		cw := csv.NewWriter(w)
		row := make([]string, 2)
		if format == "csv_header" {
			if err := cw.Write([]string{"key", "value"}); err != nil {
				return nil, err
			}
		}
		return func(key, value []byte) error {
			row[0], row[1] = string(key), string(value)
			if err := cw.Write(row); err != nil {
				return err
			}
			// csv.Writer buffers in w itself: flushing it costs a copy,
			// not a write to the file.
			cw.Flush()
			return cw.Error()
		}, nil
	case "count":
		return func(key, value []byte) error { return nil }, nil
	}
	return nil, fmt.Errorf("executor: unknown output format %q", format)
}

// appendJSONField appends "name":"b" to line, or "name_base64":"…" when b
// is not valid UTF-8, which a JSON string cannot hold losslessly.
func appendJSONField(line []byte, name string, b []byte) []byte {
	if !utf8.Valid(b) {
		line = strconv.AppendQuote(line, name+"_base64")
		line = append(line, ':', '"')
		line = base64.StdEncoding.AppendEncode(line, b)
		return append(line, '"')
	}
	line = strconv.AppendQuote(line, name)
	line = append(line, ':')
	return appendJSONString(line, b)
}

// appendJSONString appends b, valid UTF-8, as a JSON string.
func appendJSONString(line, b []byte) []byte {
	const hex = "0123456789abcdef"
	line = append(line, '"')
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			line = append(line, '\\', c)
		case c == '\n':
			line = append(line, '\\', 'n')
		case c == '\r':
			line = append(line, '\\', 'r')
		case c == '\t':
			line = append(line, '\\', 't')
		case c < 0x20 || c == 0x7f:
			line = append(line, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			line = append(line, c)
		}
	}
	return append(line, '"')
}
