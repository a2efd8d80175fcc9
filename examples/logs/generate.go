package logs

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Generate writes n lines of a synthetic access log to w: the same lines
// for the same seed, on every machine and Go version (its randomness is
// splitmix64 and integer arithmetic). Most lines are in Combined Log
// Format and some in Common; path popularity is skewed (Zipf-like: the
// k-th most popular of about 120 paths gets a share proportional to 1/k),
// some requests carry query strings, and the status codes mix 200, 301
// (directories without their trailing slash), 304 (cached static files),
// 404 (scanners and stale links) and 500 (the API, now and then). About one
// line in a hundred is malformed: cut short, empty, not a log line, a
// request that is not "METHOD TARGET [PROTOCOL]" (a TLS handshake sent to
// the HTTP port, Apache's "-" for a connection that sent nothing), or a
// bad status.
func Generate(w io.Writer, n int, seed uint64) error {
	g := &generator{rng: splitmix{seed}, t: time.Date(2024, 3, 10, 6, 0, 0, 0, time.UTC)}
	bw := bufio.NewWriterSize(w, 64<<10)
	var line []byte
	for range n {
		line = g.line(line[:0])
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// splitmix is splitmix64: a fixed sequence for a seed, unlike math/rand's
// methods, whose algorithms may change between Go versions.
type splitmix struct{ state uint64 }

func (s *splitmix) next() uint64 {
	s.state += 0x9e3779b97f4a7c15
	z := s.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn is a number in [0, n).
func (s *splitmix) intn(n int) int { return int(s.next() % uint64(n)) }

// percent reports true p times in a hundred.
func (s *splitmix) percent(p int) bool { return s.intn(100) < p }

func pick[T any](s *splitmix, xs []T) T { return xs[s.intn(len(xs))] }

// paths are the site's pages, most popular first.
var paths = func() []string {
	ps := []string{
		"/", "/static/app.js", "/static/style.css", "/img/logo.png", "/favicon.ico",
		"/products/", "/api/v1/search", "/blog/", "/docs/", "/pricing/", "/about/",
		"/login", "/cart", "/docs/install/", "/docs/api/", "/robots.txt", "/img/hero.jpg",
		"/api/v1/cart", "/contact/", "/sitemap.xml",
	}
	for i := 1; i <= 50; i++ {
		ps = append(ps, fmt.Sprintf("/products/%d", 1000+i*37%500))
		ps = append(ps, fmt.Sprintf("/blog/2024/post-%02d/", i))
	}
	return ps
}()

// popularity[i] is the cumulative weight of paths[:i+1]; path i weighs
// about 1/(i+1).
var popularity = func() []uint64 {
	c := make([]uint64, len(paths))
	var sum uint64
	for i := range paths {
		sum += 1_000_000 / uint64(i+1)
		c[i] = sum
	}
	return c
}()

func (g *generator) popularPath() string {
	x := g.rng.next() % popularity[len(popularity)-1]
	return paths[sort.Search(len(popularity), func(i int) bool { return popularity[i] > x })]
}

var (
	missing = []string{
		"/wp-login.php", "/.env", "/admin.php", "/old/index.html", "/products/99999",
		"/.git/config", "/blog/2019/gone/", "/xmlrpc.php",
	}
	redirected = []string{"/docs", "/blog", "/about", "/pricing", "/products"}
	words      = []string{"wasm", "rust", "go", "grid", "shuffle", "sort", "join", "logs"}
	referers   = []string{
		"https://www.example.com/", "https://search.example/?q=wasm+grid",
		"https://www.example.com/blog/", "https://news.example/item?id=4242",
	}
	agents = []string{
		"Mozilla/5.0 (X11; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36",
		"curl/8.5.0", "Googlebot/2.1 (+http://www.google.com/bot.html)",
	}
)

type generator struct {
	rng splitmix
	t   time.Time
}

// request is one well-formed line's parts.
type request struct {
	host, user, method, target, protocol, size string
	status                                     int
}

// line appends one log line, without its line break, to b.
func (g *generator) line(b []byte) []byte {
	g.t = g.t.Add(time.Duration(g.rng.intn(3)) * time.Second)
	if g.rng.intn(1000) < 12 {
		return g.malformed(b)
	}
	r := g.request()
	b = g.common(b, r)
	if g.rng.percent(90) { // Combined: referer and user agent
		ref := "-"
		if g.rng.percent(60) {
			ref = pick(&g.rng, referers)
		}
		b = fmt.Appendf(b, " \"%s\" \"%s\"", ref, pick(&g.rng, agents))
	}
	return b
}

func (g *generator) request() request {
	r := request{host: g.host(), user: "-", method: "GET", protocol: "HTTP/1.1", status: 200}
	if g.rng.percent(2) {
		r.user = "alice"
	}
	switch p := g.rng.intn(100); {
	case p < 15:
		r.protocol = "HTTP/2.0"
	case p < 17:
		r.protocol = "HTTP/1.0"
	case p < 18:
		r.protocol = "" // HTTP/0.9: no protocol
	}
	path := g.popularPath()
	query := ""
	switch {
	case g.rng.percent(4):
		path, r.status = pick(&g.rng, missing), 404
	case g.rng.percent(3):
		path, r.status = pick(&g.rng, redirected), 301
	case path == "/api/v1/search":
		query = fmt.Sprintf("?q=%s&page=%d", pick(&g.rng, words), 1+g.rng.intn(5))
	case g.rng.percent(10):
		query = pick(&g.rng, []string{"?utm_source=newsletter", "?ref=42", "?lang=en", "?"})
	}
	if g.rng.intn(500) == 0 {
		// An escaped quote in the path, as Apache writes one.
		path += `\"quoted\"`
	}
	switch {
	case r.status != 200:
	case strings.HasPrefix(path, "/api/") && g.rng.percent(12):
		r.status = 500
	case (strings.HasPrefix(path, "/api/") || path == "/login" || path == "/cart") && g.rng.percent(20):
		r.method = "POST"
	case strings.HasPrefix(path, "/img/") || strings.HasPrefix(path, "/static/") || path == "/favicon.ico":
		if g.rng.percent(35) {
			r.status = 304
		}
	case g.rng.intn(200) == 0:
		r.status = 500 // anywhere, now and then
	case g.rng.percent(3):
		r.method = "HEAD"
	}
	r.target = path + query
	switch r.status {
	case 200:
		r.size = fmt.Sprint(200 + g.rng.intn(60000))
	case 304:
		r.size = "-"
	default:
		r.size = fmt.Sprint(150 + g.rng.intn(400))
	}
	return r
}

func (g *generator) host() string {
	if g.rng.percent(5) {
		return fmt.Sprintf("2001:db8::%x", 1+g.rng.intn(0xfff))
	}
	return fmt.Sprintf("%s.%d", pick(&g.rng, []string{"192.0.2", "198.51.100", "203.0.113"}), 1+g.rng.intn(254))
}

// timeLayout is the time of a log line, as Apache writes it.
const timeLayout = "02/Jan/2006:15:04:05 -0700"

// common appends a line in Common Log Format.
func (g *generator) common(b []byte, r request) []byte {
	b = fmt.Appendf(b, "%s - %s [%s] \"%s %s", r.host, r.user, g.t.Format(timeLayout), r.method, r.target)
	if r.protocol != "" {
		b = append(b, ' ')
		b = append(b, r.protocol...)
	}
	return fmt.Appendf(b, "\" %d %s", r.status, r.size)
}

// malformed appends a line that is not a well-formed log line.
func (g *generator) malformed(b []byte) []byte {
	r := g.request()
	switch g.rng.intn(6) {
	case 0: // cut short before the request's closing quote
		full := g.common(nil, r)
		cut := len(full) - len(fmt.Sprintf("\" %d %s", r.status, r.size))
		return append(b, full[:g.rng.intn(cut)]...)
	case 1: // empty
		return b
	case 2: // not a log line
		return append(b, pick(&g.rng, []string{"GET / HTTP/1.1", "-", "Connection reset by peer", "garbage \xff\xfe"})...)
	case 3: // a TLS handshake on the HTTP port
		return fmt.Appendf(b, `%s - - [%s] "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" 400 226 "-" "-"`, r.host, g.t.Format(timeLayout))
	case 4: // a connection that sent no request
		return fmt.Appendf(b, `%s - - [%s] "-" 408 - "-" "-"`, r.host, g.t.Format(timeLayout))
	default: // a status that is not three digits
		r.status *= 10
		return g.common(b, r)
	}
}
