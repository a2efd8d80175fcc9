// Package s3test starts a real S3-compatible server for tests: SeaweedFS's
// weed, on loopback, with authentication, its data in a temporary
// directory. One server serves a whole test binary: the first Start starts
// it, later ones share it, and Main stops it when the tests are done. Each
// Start makes a new bucket, so tests do not see each other's objects.
//
// The weed binary is found through $WASMGRID_WEED, then PATH. Without it,
// Start skips the test, unless $WASMGRID_REQUIRE_S3 is 1 (as in CI), when
// it fails. .ci/run builds weed from the Go module proxy; docs/storage.md
// says how to build it by hand.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Server is a running S3 server and a bucket made for one test.
type Server struct {
	// Endpoint is http://127.0.0.1:PORT (plain HTTP).
	Endpoint  string
	AccessKey string
	SecretKey string
	Region    string
	Bucket    string
}

// Env variables that find weed and say whether a missing weed fails tests.
const (
	EnvWeed    = "WASMGRID_WEED"
	EnvRequire = "WASMGRID_REQUIRE_S3"
)

// readyTimeout bounds the wait for a started server to serve S3 requests.
// weed starts in ~2 s on an idle machine; a loaded CI machine is slower.
const readyTimeout = 90 * time.Second

var (
	mu sync.Mutex // protects the four below
	// started says whether the server was started: it is not started
	// again, and a failure to start (startErr) fails every later Start.
	started    bool
	shared     *process
	startErr   error
	mainCalled bool

	buckets atomic.Int64 // numbers the buckets
)

// Main runs the tests of a package that uses Start, then stops the server.
// Call it from TestMain:
//
//	func TestMain(m *testing.M) { s3test.Main(m) }
func Main(m *testing.M) {
	mu.Lock()
	mainCalled = true
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	if shared != nil {
		shared.stop()
		shared = nil
	}
	mu.Unlock()
	os.Exit(code)
}

// Weed finds the weed binary: $WASMGRID_WEED, then PATH.
func Weed() (string, error) {
	if p := os.Getenv(EnvWeed); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("$%s: %w", EnvWeed, err)
		}
		return p, nil
	}
	p, err := exec.LookPath("weed")
	if err != nil {
		return "", fmt.Errorf("no weed (SeaweedFS) in $%s or PATH", EnvWeed)
	}
	return p, nil
}

// Start returns the test binary's S3 server, starting it on first use,
// with a new bucket for t. It skips t if there is no weed binary, unless
// $WASMGRID_REQUIRE_S3=1.
func Start(t testing.TB) Server {
	t.Helper()
	weed, err := Weed()
	if err != nil {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%v, and $%s=1: build it as .ci/run does", err, EnvRequire)
		}
		t.Skipf("%v: S3 tests skipped (set $%s=1 to fail instead)", err, EnvRequire)
	}
	mu.Lock()
	if !mainCalled {
		mu.Unlock()
		t.Fatal("s3test: call s3test.Main(m) from the package's TestMain, which stops the server after the tests")
	}
	if !started {
		started = true
		t0 := time.Now()
		shared, startErr = start(weed)
		if startErr == nil {
			t.Logf("s3test: %s serves S3 at %s, started in %v", weed, shared.server.Endpoint, time.Since(t0).Round(time.Millisecond))
		}
	}
	p, err := shared, startErr
	mu.Unlock()
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	select {
	case <-p.exited:
		t.Fatalf("s3test: weed exited during the tests: %v\n%s", p.err, p.logTail())
	default:
	}
	s := p.server
	s.Bucket = fmt.Sprintf("wasmgrid-test-%d", buckets.Add(1))
	c, err := p.client()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		t.Fatalf("s3test: make bucket %s: %v", s.Bucket, err)
	}
	return s
}

// process is a running weed server.
type process struct {
	server Server
	cmd    *exec.Cmd
	dir    string
	log    string
	ports  []int
	exited chan struct{} // closed when cmd has been waited for
	err    error         // cmd's exit, once exited is closed
}

// start starts weed with fresh ports and a fresh directory, and waits until
// it serves S3. A port taken between choosing it and weed binding it makes
// weed exit: start tries again with other ports.
func start(weed string) (*process, error) {
	var err error
	for range 3 {
		var p *process
		p, err = startOnce(weed)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, errExited) {
			return nil, err
		}
	}
	return nil, err
}

var errExited = errors.New("weed exited")

func startOnce(weed string) (*process, error) {
	dir, err := os.MkdirTemp("", "wasmgrid-s3test-")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(8)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &process{dir: dir, ports: ports, log: filepath.Join(dir, "weed.log"), exited: make(chan struct{})}
	p.server = Server{
		Endpoint:  fmt.Sprintf("http://127.0.0.1:%d", ports[6]),
		AccessKey: "wasmgrid-" + randHex(6),
		SecretKey: randHex(20),
		Region:    "us-east-1",
	}
	config := filepath.Join(dir, "s3.json")
	if err := writeConfig(config, p.server); err != nil {
		p.remove()
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "master.toml"), []byte(masterTOML), 0o644); err != nil {
		p.remove()
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		p.remove()
		return nil, err
	}
	logf, err := os.Create(p.log)
	if err != nil {
		p.remove()
		return nil, err
	}
	defer logf.Close()
	p.cmd = exec.Command(weed, serverArgs(data, config, dir, ports)...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	// Its own process group, killed as one; and killed with this process
	// if a test binary dies before Main stops it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		p.remove()
		return nil, fmt.Errorf("start %s: %w", weed, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	if err := p.waitReady(); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// serverArgs is the smallest weed setup that serves S3: one process with a
// master, a volume server, a filer (metadata in leveldb) and the S3
// gateway, all on loopback; nothing else listens, nothing phones home.
func serverArgs(data, config, dir string, ports []int) []string {
	return []string{
		"-config_dir=" + dir, // master.toml
		"server",
		"-dir=" + data,
		"-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port=" + strconv.Itoa(ports[0]), "-master.port.grpc=" + strconv.Itoa(ports[1]),
		"-master.telemetry=false",
		// Each bucket is a collection of its own volumes (one, by
		// master.toml), sparse files of at most 256 MiB. The limit is
		// explicit: weed's default (0) divides the free disk by the volume
		// size, and a run of tests that makes many buckets on a small disk
		// found no free volume for the next.
		"-master.volumeSizeLimitMB=256", "-volume.max=10000",
		"-volume.port=" + strconv.Itoa(ports[2]), "-volume.port.grpc=" + strconv.Itoa(ports[3]),
		"-volume.preStopSeconds=0",
		"-filer", "-filer.port=" + strconv.Itoa(ports[4]), "-filer.port.grpc=" + strconv.Itoa(ports[5]),
		"-filer.localSocket=" + filepath.Join(dir, "filer.sock"),
		"-s3", "-s3.port=" + strconv.Itoa(ports[6]), "-s3.port.grpc=" + strconv.Itoa(ports[7]),
		"-s3.localSocket=" + filepath.Join(dir, "s3.sock"),
		"-s3.port.iceberg=0", "-s3.port.lance=0",
		"-s3.config=" + config,
		// As on AWS, a write into a missing bucket fails.
		"-s3.autoCreateBucket=false",
	}
}

// masterTOML makes the master grow one volume per bucket (collection) at a
// time, not 7, and at once after it starts: a test server holds little
// data, and makes a bucket per test.
const masterTOML = `[master.volume_growth]
copy_1 = 1
copy_2 = 1
copy_3 = 1
copy_other = 1
allocation_deferral = "0s"
`

// writeConfig writes the identities file: one identity, all rights.
func writeConfig(name string, s Server) error {
	type cred struct {
		AccessKey string `json:"accessKey"`
		SecretKey string `json:"secretKey"`
	}
	type identity struct {
		Name        string   `json:"name"`
		Credentials []cred   `json:"credentials"`
		Actions     []string `json:"actions"`
	}
	b, err := json.Marshal(struct {
		Identities []identity `json:"identities"`
	}{[]identity{{
		Name:        "wasmgrid",
		Credentials: []cred{{s.AccessKey, s.SecretKey}},
		Actions:     []string{"Admin", "Read", "Write", "List", "Tagging"},
	}}})
	if err != nil {
		return err
	}
	return os.WriteFile(name, b, 0o600)
}

func (p *process) client() (*minio.Client, error) {
	return minio.New(strings.TrimPrefix(p.server.Endpoint, "http://"), &minio.Options{
		Creds:      credentials.NewStaticV4(p.server.AccessKey, p.server.SecretKey, ""),
		Region:     p.server.Region,
		MaxRetries: 1,
		Transport:  &http.Transport{DisableKeepAlives: true},
	})
}

// waitReady polls until an authenticated write and read back succeed (the
// S3 gateway answers before the volume server has registered, when writes
// still fail), weed exits, or readyTimeout passes.
func (p *process) waitReady() error {
	c, err := p.client()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err = p.probe(c, deadline)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("weed did not serve S3 at %s within %v: %v\n%s", p.server.Endpoint, readyTimeout, err, p.logTail())
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%w: %v\n%s", errExited, p.err, p.logTail())
		case <-tick.C:
		}
	}
}

// probe makes a bucket, and writes and reads an object in it. The first
// write takes seconds: weed's filer registers with its master, and the
// master grows the bucket's first volumes.
func (p *process) probe(c *minio.Client, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	const bucket = "wasmgrid-ready"
	if err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: p.server.Region}); err != nil {
		if code := minio.ToErrorResponse(err).Code; code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
			return err
		}
	}
	if _, err := c.PutObject(ctx, bucket, "probe", bytes.NewReader([]byte("ok")), 2, minio.PutObjectOptions{}); err != nil {
		return err
	}
	_, err := c.StatObject(ctx, bucket, "probe", minio.StatObjectOptions{})
	return err
}

// logTail is the end of weed's log, for failure messages.
func (p *process) logTail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "weed's log ends:\n" + string(b)
}

// stop kills weed's process group, waits for it, and removes its files:
// its directory, and the gRPC sockets that `weed server` always makes in
// /tmp, named by the ports this process chose.
func (p *process) stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
	p.remove()
}

func (p *process) remove() {
	for _, port := range []int{p.ports[1], p.ports[3], p.ports[5], p.ports[7]} {
		for _, svc := range []string{"master", "volume", "filer", "s3"} {
			name := fmt.Sprintf("/tmp/seaweedfs-%s-grpc-%d.sock", svc, port)
			if fi, err := os.Lstat(name); err == nil && fi.Mode()&os.ModeSocket != 0 {
				os.Remove(name)
			}
		}
	}
	os.RemoveAll(p.dir)
}

// freePorts picks n distinct free loopback ports, all held open until all
// are chosen.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
