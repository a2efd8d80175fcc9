package grid

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/wasmgrid/wasmgrid/internal/certs"
)

// NewServerOptions says what NewServerFiles makes.
type NewServerOptions struct {
	// Template is a coordinator config of the cluster (grid init's
	// coordinator-1.toml): its tenants, tokens, volumes and limits are
	// copied, and its authority (tls.ca, with ca-key.pem beside it)
	// issues the new certificate.
	Template string
	// Server is the new server: a new id, its name, and its addresses.
	Server ServerConfig
	// ControlAddr is its control plane's address (UDP).
	ControlAddr string
	// Members are the servers of the log once it is added, itself
	// included: its config's [[servers]].
	Members []ServerConfig
	// Hosts the certificate names besides the template certificate's.
	Hosts []string
}

// NewServerFiles writes a new coordinator server's certificate, key and
// config (NAME.toml, with join_cluster = true and state dir NAME-state)
// beside the template, and returns the config's path.
func NewServerFiles(o NewServerOptions) (string, error) {
	tpl, err := LoadCoordinatorConfig(o.Template)
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(o.Template)
	name := o.Server.Name
	if name == "" || filepath.Base(name) != name {
		return "", fmt.Errorf("server name %q: use a plain name (it names its files)", name)
	}
	path := filepath.Join(dir, name+".toml")
	if _, err := os.Stat(path); err == nil {
		return "", fmt.Errorf("%s exists: a new server needs a new name", path)
	}
	caPEM, err := os.ReadFile(tpl.TLS.CA)
	if err != nil {
		return "", err
	}
	caKey, err := os.ReadFile(filepath.Join(filepath.Dir(tpl.TLS.CA), "ca-key.pem"))
	if err != nil {
		return "", fmt.Errorf("the cluster's authority key (ca-key.pem beside %s) issues the new server's certificate: %w", tpl.TLS.CA, err)
	}
	ca, err := certs.LoadCA(caPEM, caKey)
	if err != nil {
		return "", err
	}
	hosts, err := certHosts(tpl.TLS.Cert)
	if err != nil {
		return "", err
	}
	for _, h := range o.Hosts {
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	c, err := ca.Issue(name, hosts, certValidity)
	if err != nil {
		return "", err
	}
	certPEM, keyPEM, err := certs.EncodePEM(c)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".pem"), certPEM, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, name+"-key.pem"), keyPEM, 0o600); err != nil {
		return "", err
	}
	cfg := *tpl
	cfg.Name, cfg.StateDir, cfg.ServerID, cfg.JoinCluster = name, filepath.Join(dir, name+"-state"), o.Server.ID, true
	cfg.APIAddr, cfg.ControlAddr, cfg.GossipAddr, cfg.RaftAddr = o.Server.APIAddr, o.ControlAddr, o.Server.GossipAddr, o.Server.RaftAddr
	cfg.TLS.Cert, cfg.TLS.Key = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	cfg.Audit.Path = ""
	cfg.Servers = o.Members
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return "", err
	}
	return path, WriteConfig(path, cfg)
}

// certHosts are the host names and addresses a certificate names.
func certHosts(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New(path + " holds no PEM certificate")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	hosts := slices.Clone(cert.DNSNames)
	for _, ip := range cert.IPAddresses {
		hosts = append(hosts, ip.String())
	}
	return hosts, nil
}
