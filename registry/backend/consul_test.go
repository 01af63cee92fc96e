package backend

import (
	"crypto/tls"
	"crypto/x509"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/testserver"
	signetregistry "github.com/signet-micro/signet/registry"
)

// consulConfig returns the Config for a Consul agent at addr with token,
// the token read from a file as a deployment would give it.
func consulConfig(t *testing.T, addr, token string) Config {
	t.Helper()
	env := map[string]string{EnvRegistry: "consul", EnvAddress: addr}
	if token != "" {
		env[EnvConsulToken+"_FILE"] = writeFile(t, "consul-token", token+"\n")
	}
	cfg, err := ConfigFromLookup(lookupFrom(env))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// assertDenied checks that registering name through r fails because the
// token lacks permission, and that the error does not contain token.
func assertDenied(t *testing.T, r registry.Registry, name, token string) {
	t.Helper()
	err := r.Register(testService(name), registry.RegisterTTL(time.Minute))
	if err == nil {
		_ = r.Deregister(testService(name))
		t.Fatalf("Register(%s) succeeded, want a permission error", name)
	}
	if !strings.Contains(err.Error(), "Permission denied") {
		t.Errorf("Register(%s): error %q, want Consul's \"Permission denied\"", name, err)
	}
	if token != "" && strings.Contains(err.Error(), token) {
		t.Errorf("Register(%s): error contains the token: %v", name, err)
	}
}

func TestConsulACL(t *testing.T) {
	// The consul API client falls back to CONSUL_HTTP_TOKEN when no token
	// is configured; it must not grant anything here.
	t.Setenv("CONSUL_HTTP_TOKEN", "")
	srv := testserver.StartConsul(t, testserver.ConsulOptions{ACL: true})
	token := srv.ServiceToken(t, "greeter")

	r, err := New(consulConfig(t, srv.Addr, token))
	if err != nil {
		t.Fatal(err)
	}
	assertRegisterAndGet(t, r, "greeter")
	assertDenied(t, r, "billing", token)
	assertWatchSees(t, r, "greeter")

	anonymous, err := New(consulConfig(t, srv.Addr, ""))
	if err != nil {
		t.Fatal(err)
	}
	assertDenied(t, anonymous, "greeter", "")
}

// assertWatchSees opens a watch on name, registers a second node, and
// waits up to 30 s for a result that contains it. With a default-deny ACL
// the watch only sees the node when its requests carry the token.
func assertWatchSees(t *testing.T, r registry.Registry, name string) {
	t.Helper()
	w, err := r.Watch(registry.WatchService(name))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	second := testService(name)
	second.Nodes[0].Id = name + "-2"
	if err := r.Register(second, registry.RegisterTTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Deregister(second) })

	found := make(chan bool, 1)
	go func() {
		for {
			result, err := w.Next()
			if err != nil {
				found <- false
				return
			}
			for _, node := range result.Service.Nodes {
				if node.Id == second.Nodes[0].Id {
					found <- true
					return
				}
			}
		}
	}()
	select {
	case ok := <-found:
		if !ok {
			t.Fatalf("watch on %s stopped before it returned node %s", name, second.Nodes[0].Id)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("watch on %s returned no result with node %s within 30s", name, second.Nodes[0].Id)
	}
}

// startTLSProxy serves srvAddr's HTTP API over TLS on a loopback port,
// with the server certificate of pki, and requires client certificates
// signed by pki's CA. Consul is reached through it because the test
// agent serves plain HTTP only.
func startTLSProxy(t *testing.T, pki testPKI, srvAddr string) string {
	t.Helper()
	target, err := url.Parse("http://" + srvAddr)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(pki.ServerCertFile, pki.ServerKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AppendCertsFromPEM(caPEM)

	proxy := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
	proxy.TLS = &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
		MinVersion:   tls.VersionTLS12,
	}
	proxy.StartTLS()
	t.Cleanup(proxy.Close)
	return strings.TrimPrefix(proxy.URL, "https://")
}

func TestConsulTLS(t *testing.T) {
	t.Setenv("CONSUL_HTTP_TOKEN", "")
	srv := testserver.StartConsul(t, testserver.ConsulOptions{ACL: true})
	token := srv.ServiceToken(t, "greeter")
	pki := newTestPKI(t)
	proxyAddr := startTLSProxy(t, pki, srv.Addr)

	withTLS := func(t *testing.T, change func(*Config)) Config {
		cfg := consulConfig(t, proxyAddr, token)
		cfg.TLSCAFile, cfg.TLSCertFile, cfg.TLSKeyFile = pki.CAFile, pki.ClientCertFile, pki.ClientKeyFile
		if change != nil {
			change(&cfg)
		}
		return cfg
	}

	t.Run("verified", func(t *testing.T) {
		r, err := New(withTLS(t, nil))
		if err != nil {
			t.Fatal(err)
		}
		if reason := signetregistry.InsecureReason(r); reason != "" {
			t.Errorf("registry.InsecureReason = %q, want \"\"", reason)
		}
		assertVerifyingTLS(t, r.Options().TLSConfig)
		assertRegisterAndGet(t, r, "greeter")
		assertDenied(t, r, "billing", token)
	})

	rejected := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"without ca", func(c *Config) { c.TLSCAFile = "" }, "certificate signed by unknown authority"},
		{"wrong server name", func(c *Config) { c.TLSServerName = "consul.example" }, "consul.example"},
		{"without client certificate", func(c *Config) { c.TLSCertFile, c.TLSKeyFile = "", "" }, "certificate required"},
	}
	for _, tc := range rejected {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(withTLS(t, tc.change))
			if err != nil {
				t.Fatal(err)
			}
			err = r.Register(testService("greeter"), registry.RegisterTTL(time.Minute))
			if err == nil {
				t.Fatal("Register succeeded through a TLS connection that should fail")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Register: error %q, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("Register: error contains the token: %v", err)
			}
		})
	}

	t.Run("plaintext to tls port", func(t *testing.T) {
		_, err := New(withTLS(t, func(c *Config) { c.Addresses = []string{"http://" + proxyAddr} }))
		if err == nil || !strings.Contains(err.Error(), "http://") {
			t.Fatalf("New with an http:// address and TLS files: error %v, want one about http://", err)
		}
	})
}
