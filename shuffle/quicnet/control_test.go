package quicnet

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/internal/certs"
	"github.com/wasmgrid/wasmgrid/shuffle"
)

func mutualPair(t *testing.T, ca *certs.CA, name string) (server, client *tlsPair) {
	t.Helper()
	cert, err := ca.Issue(name, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s, c, err := certs.Mutual(ca.CertPEM, cert, ControlALPN)
	if err != nil {
		t.Fatal(err)
	}
	return &tlsPair{s}, &tlsPair{c}
}

func TestControlMutualTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ca, _ := certs.NewCA("cluster", time.Hour)
	other, _ := certs.NewCA("other", time.Hour)
	srvTLS, _ := mutualPair(t, ca, "coordinator")
	_, agentTLS := mutualPair(t, ca, "agent-1")
	_, strangerTLS := mutualPair(t, other, "agent-1")

	ln, err := ListenControl("127.0.0.1:0", srvTLS.c, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan string, 2)
	go func() {
		for {
			c, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			s, err := c.AcceptStream(ctx)
			if err != nil {
				accepted <- "no stream: " + err.Error()
				continue
			}
			b, _ := io.ReadAll(s)
			accepted <- certs.PeerName(c.TLS()) + ":" + string(b)
			s.Close()
		}
	}()

	c, err := DialControl(ctx, ln.Addr().String(), agentTLS.c, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("hello"))
	s.Close()
	if got := <-accepted; got != "agent-1:hello" {
		t.Errorf("server saw %q", got)
	}
	c.Close("done")

	// A node whose certificate comes from another authority is refused
	// in the handshake, both ways.
	dctx, dcancel := context.WithTimeout(ctx, 3*time.Second)
	defer dcancel()
	if c, err := DialControl(dctx, ln.Addr().String(), strangerTLS.c, 2*time.Second); err == nil {
		// The client may finish its side before the server refuses.
		s, err := c.OpenStream(dctx)
		if err == nil {
			s.Write([]byte("x"))
			s.Close()
		}
		select {
		case got := <-accepted:
			if got == "agent-1:x" {
				t.Fatal("a certificate from another CA was accepted")
			}
		case <-time.After(2 * time.Second):
		}
		c.Close("done")
	}
}

type tlsPair struct{ c *tls.Config }

// TestForeignAuthorityRefused: a block server and a control client of one
// cluster refuse peers whose certificates come from another authority,
// while a node of the cluster is served.
func TestForeignAuthorityRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ca, _ := certs.NewCA("cluster", time.Hour)
	other, _ := certs.NewCA("other", time.Hour)
	node := func(ca *certs.CA, name, alpn string) (server, client *tls.Config) {
		c, err := ca.Issue(name, []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		s, cl, err := certs.Mutual(ca.CertPEM, c, alpn)
		if err != nil {
			t.Fatal(err)
		}
		return s, cl
	}
	// A block server of the cluster.
	srvTLS, _ := node(ca, "agent-1", alpn)
	dir := t.TempDir()
	srv, err := NewServer(ServerConfig{Addr: "127.0.0.1:0", TLS: srvTLS, Dir: dir, Authorize: func(string, string) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(sctx) }()
	defer func() { scancel(); <-done }()

	fetch := func(client *tls.Config) error {
		f := NewFetcher(FetcherConfig{TLS: client, Timeout: 2 * time.Second})
		defer f.Close()
		_, err := f.Open(ctx, srv.Addr().String(), "job", "token", shuffle.MapOutputID{}, 0)
		return err
	}
	_, member := node(ca, "agent-2", alpn)
	// A member gets past TLS and is told the block does not exist.
	if err := fetch(member); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a member of the cluster fetching a missing block: %v, want not-exist", err)
	}
	_, stranger := node(other, "agent-2", alpn)
	if err := fetch(stranger); err == nil {
		t.Fatal("a node with a certificate from another authority fetched a block")
	}

	// A coordinator from another authority: an agent of this cluster does
	// not talk to it (it would launch tasks).
	fakeSrv, _ := node(other, "coordinator", ControlALPN)
	ln, err := ListenControl("127.0.0.1:0", fakeSrv, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			c.Close("")
		}
	}()
	_, agentTLS := node(ca, "agent-1", ControlALPN)
	dctx, dcancel := context.WithTimeout(ctx, 3*time.Second)
	defer dcancel()
	if c, err := DialControl(dctx, ln.Addr().String(), agentTLS, 2*time.Second); err == nil {
		c.Close("")
		t.Fatal("an agent accepted a coordinator whose certificate comes from another authority")
	} else if !strings.Contains(err.Error(), "authority") {
		t.Logf("refused with: %v", err)
	}
}
