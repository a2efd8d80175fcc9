package grid

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
)

// apiTLS is the HTTPS configuration of the coordinator's API: the node's
// certificate, from the cluster's authority, which clients trust through
// GRID_CA. The certificate must allow server authentication and name the
// host the API listens on (unless it listens on every address), or every
// client would refuse it: better said at start than at the first request.
func apiTLS(id *nodeIdentity, certFile, apiAddr string) (*tls.Config, error) {
	leaf := id.cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(id.cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("grid: node certificate %s: %w", certFile, err)
		}
	}
	if err := checkServerCert(leaf, apiAddr); err != nil {
		return nil, fmt.Errorf("grid: node certificate %s cannot serve the API over HTTPS: %w", certFile, err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{id.cert}}, nil
}

// checkServerCert says why leaf cannot serve HTTPS at addr, if it cannot.
func checkServerCert(leaf *x509.Certificate, addr string) error {
	if len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return errors.New("it does not allow server authentication (extended key usage serverAuth): issue it again with grid init")
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("api_addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return nil // every address: the clients' host names are checked by the clients
	}
	if err := leaf.VerifyHostname(host); err != nil {
		names := slices.Clone(leaf.DNSNames)
		for _, ip := range leaf.IPAddresses {
			names = append(names, ip.String())
		}
		return fmt.Errorf("it names %s, not %s, the host of api_addr: clients would refuse it; issue certificates naming it (grid init --host %s)", strings.Join(names, ", "), host, host)
	}
	return nil
}
