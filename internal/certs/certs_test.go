package certs

import (
	"crypto/tls"
	"net"
	"testing"
	"time"
)

func TestIssuedCertificateIsTrustedOnlyThroughItsCA(t *testing.T) {
	ca, err := NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewCA("other", time.Hour)
	cert, err := ca.Issue("agent-1", []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ServerConfig(cert, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	dial := func(caPEM []byte) error {
		cfg, err := ClientConfig(caPEM, "t")
		if err != nil {
			return err
		}
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), cfg)
		if err == nil {
			if c.ConnectionState().Version != tls.VersionTLS13 {
				t.Errorf("TLS version %x, want 1.3", c.ConnectionState().Version)
			}
			c.Close()
		}
		return err
	}
	if err := dial(ca.CertPEM); err != nil {
		t.Fatalf("client trusting the CA: %v", err)
	}
	if err := dial(other.CertPEM); err == nil {
		t.Fatal("a client trusting another CA connected")
	}
	if _, err := ClientConfig([]byte("junk"), "t"); err == nil {
		t.Fatal("junk accepted as a CA")
	}
}
