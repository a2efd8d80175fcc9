package apilimit

import (
	"net/http"
	"testing"
	"time"
)

// TestClientAddr: failed authentications are counted by IPv4 address
// and by IPv6 /64, whatever the port.
func TestClientAddr(t *testing.T) {
	for remote, want := range map[string]string{
		"192.0.2.7:4321":                "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:80":     "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443":    "2001:db8:1:2::/64",
		"not-an-address":                "not-an-address",
		"[::ffff:192.0.2.7]:1":          "192.0.2.7",
		"unix-socket-peer:no-port:here": "unix-socket-peer:no-port:here",
	} {
		if got := ClientAddr(&http.Request{RemoteAddr: remote}); got != want {
			t.Errorf("ClientAddr(%q) = %q, want %q", remote, got, want)
		}
	}
}

// TestHolds: a token's streams and a tenant's uploads are bounded, a
// release frees one slot however often it is called, and the budgets
// of tokens and of addresses refill with the clock.
func TestHolds(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := New(Config{RequestsPerSecond: 1, RequestBurst: 1, AuthFailuresPerMinute: 60, AuthFailureBurst: 1, StreamsPerToken: 1, UploadsPerTenant: 2}, func() time.Time { return now })
	release, ok := l.OpenStream("tok")
	if !ok {
		t.Fatal("no first stream")
	}
	if _, ok := l.OpenStream("tok"); ok {
		t.Error("a second stream past StreamsPerToken")
	}
	if _, ok := l.OpenStream("other"); !ok {
		t.Error("another token's stream refused")
	}
	release()
	release()
	r1, ok1 := l.StartUpload("etl")
	_, ok2 := l.StartUpload("etl")
	if _, ok3 := l.StartUpload("etl"); !ok1 || !ok2 || ok3 {
		t.Errorf("uploads: %v %v %v, want two of UploadsPerTenant", ok1, ok2, ok3)
	}
	r1()
	if _, ok := l.StartUpload("etl"); !ok {
		t.Error("an upload refused after a release")
	}
	if _, ok := l.AllowRequest("tok"); !ok {
		t.Error("the burst's request refused")
	}
	if retry, ok := l.AllowRequest("tok"); ok || retry != time.Second {
		t.Errorf("past the burst: %v, wait %v", ok, retry)
	}
	l.AuthFailed("192.0.2.7")
	if retry, throttled := l.AuthThrottled("192.0.2.7"); !throttled || retry != time.Second {
		t.Errorf("after the burst of failures: %v, wait %v", throttled, retry)
	}
	now = now.Add(time.Second)
	if _, ok := l.AllowRequest("tok"); !ok {
		t.Error("a request refused after the budget refilled")
	}
	if _, throttled := l.AuthThrottled("192.0.2.7"); throttled {
		t.Error("an address throttled after its budget refilled")
	}
}
