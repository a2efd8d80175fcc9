package quicnet

import (
	"context"
	"crypto/tls"
	"io"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/internal/certs"
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
