package apilimit

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxTrackedAddrs bounds the client addresses whose failed
// authentications are counted one by one; beyond them, addresses share
// one budget.
const maxTrackedAddrs = 10000

// Config is the limits Limits enforces; grid's LimitsConfig holds
// them, under the same names, with their defaults.
type Config struct {
	// RequestsPerSecond and RequestBurst rate-limit each token.
	RequestsPerSecond float64
	RequestBurst      int
	// AuthFailuresPerMinute and AuthFailureBurst throttle failed
	// authentications per client address.
	AuthFailuresPerMinute float64
	AuthFailureBurst      int
	// StreamsPerToken bounds a token's open event streams, and
	// UploadsPerTenant a tenant's uploads in progress.
	StreamsPerToken  int
	UploadsPerTenant int
}

// Limits enforces the per-token, per-address and per-tenant limits of
// the API. Its clock is injected: tests move it.
type Limits struct {
	cfg Config
	now func() time.Time

	mu       sync.Mutex               // protects the maps below
	tokens   map[string]*rate.Limiter // requests, by token id
	failures map[string]*rate.Limiter // failed authentications, by client address
	overflow *rate.Limiter            // shared by addresses past maxTrackedAddrs
	streams  map[string]int           // open event streams, by token id
	uploads  map[string]int           // uploads in progress, by tenant
}

// New is the limits of cfg, on the clock now; nothing is spent yet.
func New(cfg Config, now func() time.Time) *Limits {
	return &Limits{
		cfg: cfg, now: now,
		tokens: map[string]*rate.Limiter{}, failures: map[string]*rate.Limiter{},
		overflow: rate.NewLimiter(rate.Limit(cfg.AuthFailuresPerMinute/60), cfg.AuthFailureBurst),
		streams:  map[string]int{}, uploads: map[string]int{},
	}
}

// AllowRequest takes one request from a token's budget, or says how long
// to wait for one.
func (l *Limits) AllowRequest(tokenID string) (time.Duration, bool) {
	now := l.now()
	l.mu.Lock()
	lim := l.tokens[tokenID]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(l.cfg.RequestsPerSecond), l.cfg.RequestBurst)
		l.tokens[tokenID] = lim
	}
	l.mu.Unlock()
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return time.Minute, false
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}

// failureLimiter is addr's budget of failed authentications; with mu held.
func (l *Limits) failureLimiter(addr string, now time.Time) *rate.Limiter {
	if lim := l.failures[addr]; lim != nil {
		return lim
	}
	if len(l.failures) >= maxTrackedAddrs {
		// Forget the addresses whose budget is whole again.
		for a, lim := range l.failures {
			if lim.TokensAt(now) >= float64(l.cfg.AuthFailureBurst) {
				delete(l.failures, a)
			}
		}
		if len(l.failures) >= maxTrackedAddrs {
			return l.overflow
		}
	}
	lim := rate.NewLimiter(rate.Limit(l.cfg.AuthFailuresPerMinute/60), l.cfg.AuthFailureBurst)
	l.failures[addr] = lim
	return lim
}

// AuthThrottled says whether addr has spent its failed authentications,
// and how long until it may try again.
func (l *Limits) AuthThrottled(addr string) (time.Duration, bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.failures[addr]
	if !ok {
		if len(l.failures) < maxTrackedAddrs {
			return 0, false
		}
		lim = l.overflow
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0, false
	}
	per := float64(lim.Limit())
	if per <= 0 {
		return time.Hour, true
	}
	return time.Duration((1 - tokens) / per * float64(time.Second)), true
}

// AuthFailed spends one of addr's failed authentications.
func (l *Limits) AuthFailed(addr string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failureLimiter(addr, now).AllowN(now, 1)
}

// OpenStream counts an event stream of a token, if it may open one; the
// caller calls release when it ends.
func (l *Limits) OpenStream(tokenID string) (release func(), ok bool) {
	return l.hold(l.streams, tokenID, l.cfg.StreamsPerToken)
}

// StartUpload counts an upload of a tenant, if it may start one.
func (l *Limits) StartUpload(tenant string) (release func(), ok bool) {
	return l.hold(l.uploads, tenant, l.cfg.UploadsPerTenant)
}

func (l *Limits) hold(m map[string]int, key string, limit int) (func(), bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m[key] >= limit {
		return nil, false
	}
	m[key]++
	return sync.OnceFunc(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if m[key]--; m[key] <= 0 {
			delete(m, key)
		}
	}), true
}

// ClientAddr is who a request comes from, as failed authentications are
// counted: its IP address, or its /64 for IPv6 (one host's share). A
// proxy's X-Forwarded-For is not trusted.
func ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}

// Now is the time on the limits' clock.
func (l *Limits) Now() time.Time { return l.now() }
