package backend

import (
	"crypto/tls"
	"os"
	"strings"
	"testing"
)

func TestNewTLSConfigFields(t *testing.T) {
	pki := newTestPKI(t)

	config, err := newTLSConfig(Config{TLSCAFile: pki.CAFile, TLSCertFile: pki.ClientCertFile, TLSKeyFile: pki.ClientKeyFile, TLSServerName: "etcd.internal"})
	if err != nil {
		t.Fatal(err)
	}
	assertVerifyingTLS(t, config)
	if config.RootCAs == nil {
		t.Error("RootCAs is nil, want the CA file's pool")
	}
	if len(config.Certificates) != 1 {
		t.Errorf("Certificates has %d entries, want the client certificate", len(config.Certificates))
	}
	if config.ServerName != "etcd.internal" {
		t.Errorf("ServerName = %q, want etcd.internal", config.ServerName)
	}

	systemRoots, err := newTLSConfig(Config{TLSServerName: "etcd.internal"})
	if err != nil {
		t.Fatal(err)
	}
	assertVerifyingTLS(t, systemRoots)
	if systemRoots.RootCAs != nil {
		t.Error("RootCAs is set without a CA file, want nil (the system roots)")
	}
	if len(systemRoots.Certificates) != 0 {
		t.Errorf("Certificates has %d entries without a client certificate, want 0", len(systemRoots.Certificates))
	}
}

// TestNewTLSConfigVerifiesServer runs real handshakes with the produced
// configuration against a server certificate from the test CA.
func TestNewTLSConfigVerifiesServer(t *testing.T) {
	pki := newTestPKI(t)
	other := newTestPKI(t)
	serverCert, err := tls.LoadX509KeyPair(pki.ServerCertFile, pki.ServerKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			_ = conn.(*tls.Conn).Handshake()
			_ = conn.Close()
		}
	}()

	cases := []struct {
		name string
		cfg  Config
		want string // "" for a handshake that must succeed
	}{
		{"trusted", Config{TLSCAFile: pki.CAFile}, ""},
		{"other ca", Config{TLSCAFile: other.CAFile}, "certificate signed by unknown authority"},
		{"system roots", Config{TLSServerName: "localhost"}, "certificate signed by unknown authority"},
		{"wrong name", Config{TLSCAFile: pki.CAFile, TLSServerName: "etcd.example"}, "etcd.example"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			config, err := newTLSConfig(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			conn, err := tls.Dial("tcp", l.Addr().String(), config)
			if err == nil {
				_ = conn.Close()
			}
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("handshake failed: %v", err)
			case tc.want != "" && err == nil:
				t.Error("handshake succeeded, want a verification error")
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("handshake error %q, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestNewTLSConfigErrorsOmitKey(t *testing.T) {
	pki := newTestPKI(t)
	keyPEM, err := os.ReadFile(pki.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	keyLine := strings.Split(string(keyPEM), "\n")[1]

	for _, cfg := range []Config{
		{TLSCertFile: pki.ClientKeyFile, TLSKeyFile: pki.ClientKeyFile},
		{TLSCertFile: pki.ClientCertFile, TLSKeyFile: pki.ServerKeyFile},
		{TLSCertFile: pki.ClientCertFile, TLSKeyFile: pki.ClientCertFile},
		{TLSCAFile: pki.ClientKeyFile},
	} {
		_, err := newTLSConfig(cfg)
		if err == nil {
			t.Errorf("newTLSConfig(%v) returned no error", cfg)
			continue
		}
		if strings.Contains(err.Error(), keyLine) {
			t.Errorf("error contains key material: %v", err)
		}
	}
}
