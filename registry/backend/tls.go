package backend

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// newTLSConfig builds the client TLS configuration for the registry from
// the TLS fields of cfg. The result always verifies the server's
// certificate: InsecureSkipVerify is false, RootCAs contains the
// certificates of TLSCAFile (nil, meaning the system's roots, when
// TLSCAFile is empty), and MinVersion is TLS 1.2.
func newTLSConfig(cfg Config) (*tls.Config, error) {
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		set, unset := EnvTLSCertFile, EnvTLSKeyFile
		if cfg.TLSCertFile == "" {
			set, unset = unset, set
		}
		return nil, fmt.Errorf("backend: %s is set but %s is not; a client certificate needs both %s and %s, so set both or neither",
			set, unset, EnvTLSCertFile, EnvTLSKeyFile)
	}

	config := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: cfg.TLSServerName,
	}

	if cfg.TLSCAFile != "" {
		pem, err := os.ReadFile(cfg.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("backend: %s: cannot read the CA file: %w", EnvTLSCAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("backend: %s %q contains no PEM certificate; give the PEM file of the CA that signed the registry server's certificate", EnvTLSCAFile, cfg.TLSCAFile)
		}
		config.RootCAs = pool
	}

	if cfg.TLSCertFile != "" {
		// The errors of tls.LoadX509KeyPair (Go 1.26) name the file or the
		// PEM block types and contain no key material.
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("backend: %s %q and %s %q: cannot load the client certificate and key: %w",
				EnvTLSCertFile, cfg.TLSCertFile, EnvTLSKeyFile, cfg.TLSKeyFile, err)
		}
		config.Certificates = []tls.Certificate{cert}
	}
	return config, nil
}

// probeTimeout bounds the connection that probeServer makes, and
// probeReadWait how long it waits for the server to reject the handshake.
const (
	probeTimeout  = 3 * time.Second
	probeReadWait = 500 * time.Millisecond
)

// probeServer connects to addr, with a TLS handshake when config is not
// nil, and describes the result. The etcd client reports a failed TLS
// handshake only as a timeout, so New adds this description to name the
// cause, such as an unknown certificate authority.
func probeServer(addr string, config *tls.Config) string {
	dialer := &net.Dialer{Timeout: probeTimeout}
	if config == nil {
		conn, err := dialer.Dial("tcp", addr)
		if err != nil {
			return fmt.Sprintf("a TCP connection to %s failed: %v", addr, err)
		}
		_ = conn.Close()
		return fmt.Sprintf("a TCP connection to %s works, so the server may require TLS or be no etcd server", addr)
	}

	probe := config.Clone()
	probe.NextProtos = []string{"h2"}
	conn, err := tls.DialWithDialer(dialer, "tcp", addr, probe)
	if err != nil {
		return fmt.Sprintf("a TLS handshake with %s failed: %v", addr, err)
	}
	defer conn.Close()

	// With TLS 1.3 the client finishes its handshake before the server has
	// checked the client certificate, so a rejection ("certificate
	// required") arrives as the first read. A gRPC server sends nothing
	// before the client's preface, so a read that times out means the
	// server accepted the connection.
	_ = conn.SetReadDeadline(time.Now().Add(probeReadWait))
	if _, err := conn.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
		return fmt.Sprintf("the server at %s closed the TLS connection: %v", addr, err)
	}
	return fmt.Sprintf("a TLS handshake with %s works, so the server may be slow or no etcd server", addr)
}

func isTimeout(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}
