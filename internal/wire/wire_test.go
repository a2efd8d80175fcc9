package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/wasmgrid/wasmgrid/planner"
)

func TestRoundTrip(t *testing.T) {
	msgs := []struct {
		typ  string
		body any
		into any
	}{
		{TypeRegister, &Register{Agent: "a1", Version: "dev", Resources: Resources{CPU: 2000, Mem: 1024}, BlockAddr: "127.0.0.1:1", Running: []Attempt{{Job: "j", Task: planner.TaskKey{Stage: 1, Partition: 2}, Attempt: 3}}}, &Register{}},
		{TypeRegistered, &Registered{Epoch: 7}, &Registered{}},
		{TypeStatus, &Status{Epoch: 7, Attempt: Attempt{Job: "j"}, Failure: &planner.Failure{Kind: planner.TaskError, Msg: "boom"}, Err: "boom"}, &Status{}},
		{TypeFetchModule, &FetchModule{Hash: "ab"}, &FetchModule{}},
	}
	var buf bytes.Buffer
	for _, m := range msgs {
		if err := Write(&buf, m.typ, m.body); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range msgs {
		if err := Expect(&buf, m.typ, m.into); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m.into, m.body) {
			t.Errorf("%s: got %+v, want %+v", m.typ, m.into, m.body)
		}
	}
	if _, err := Read(&buf); err != io.EOF {
		t.Errorf("after the last frame: %v, want EOF", err)
	}
}

func TestReadRejects(t *testing.T) {
	frame := func(s string) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(s)))
		return append(b, s...)
	}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"huge length", binary.BigEndian.AppendUint32(nil, MaxFrame+1), "limit"},
		{"zero length", binary.BigEndian.AppendUint32(nil, 0), "limit"},
		{"cut short", append(binary.BigEndian.AppendUint32(nil, 100), "{}"...), "cut short"},
		{"not json", frame("nope"), "malformed"},
		{"other version", frame(`{"v":2,"type":"register","body":{}}`), "version 2"},
		{"no type", frame(`{"v":1,"body":{}}`), "without a type"},
	}
	for _, tt := range tests {
		_, err := Read(bytes.NewReader(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.want)
		}
	}
	var buf bytes.Buffer
	Write(&buf, TypeError, &Error{Msg: "unknown agent"})
	if err := Expect(&buf, TypeRegistered, &Registered{}); err == nil || !strings.Contains(err.Error(), "unknown agent") {
		t.Errorf("error frame: %v", err)
	}
	if _, err := Read(bytes.NewReader(frame(`{"v":2,"type":"x"}`))); !errors.Is(err, ErrVersion) {
		t.Errorf("version error %v is not ErrVersion", err)
	}
}

func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	Write(&buf, TypeLaunch, &Launch{Job: "j", Epoch: 1})
	f.Add(buf.Bytes())
	buf.Reset()
	Write(&buf, TypeStatus, &Status{Attempt: Attempt{Job: "j"}})
	f.Add(buf.Bytes())
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			env, err := Read(r)
			if err != nil {
				return
			}
			var l Launch
			var s Status
			var reg Register
			switch env.Type {
			case TypeLaunch:
				_ = env.Decode(&l)
			case TypeStatus:
				_ = env.Decode(&s)
			default:
				_ = env.Decode(&reg)
			}
		}
	})
}
