package backend

import (
	"strings"
	"testing"
	"time"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/testserver"
	signetregistry "github.com/signet-micro/signet/registry"
)

// failTimeout is the etcd timeout of configurations that must fail. It
// only shortens the wait, because these connections never succeed.
const failTimeout = 2 * time.Second

// etcdConfig returns the Config for srv, as a deployment would write it:
// the CA, the client certificate and the password from files.
func etcdConfig(t *testing.T, srv *testserver.Etcd) Config {
	t.Helper()
	cfg, err := ConfigFromLookup(lookupFrom(map[string]string{
		EnvRegistry:               "etcd",
		EnvAddress:                strings.Join(srv.Endpoints, ","),
		EnvTLSCAFile:              srv.CAFile,
		EnvTLSCertFile:            srv.CertFile,
		EnvTLSKeyFile:             srv.KeyFile,
		EnvEtcdUsername:           srv.Username,
		EnvEtcdPassword + "_FILE": writeFile(t, "etcd-password", srv.Password+"\n"),
		// The etcd server checks passwords with bcrypt, which takes
		// seconds under the race detector on a loaded machine, so the
		// plugin's 5 s default can run out.
		EnvTimeout: "30s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func testService(name string) *registry.Service {
	return &registry.Service{
		Name:    name,
		Version: "1.0.0",
		Nodes: []*registry.Node{{
			Id:       name + "-1",
			Address:  "127.0.0.1:9001",
			Metadata: map[string]string{"protocol": "grpc"},
		}},
	}
}

// assertRegisterAndGet registers a service through r and reads it back.
func assertRegisterAndGet(t *testing.T, r registry.Registry, name string) {
	t.Helper()
	svc := testService(name)
	if err := r.Register(svc, registry.RegisterTTL(time.Minute)); err != nil {
		t.Fatalf("Register(%s): %v", name, err)
	}
	t.Cleanup(func() { _ = r.Deregister(svc) })

	got, err := r.GetService(name)
	if err != nil {
		t.Fatalf("GetService(%s): %v", name, err)
	}
	if len(got) != 1 || len(got[0].Nodes) != 1 {
		t.Fatalf("GetService(%s) = %+v, want one service with one node", name, got)
	}
	if node := got[0].Nodes[0]; node.Id != name+"-1" || node.Address != "127.0.0.1:9001" {
		t.Errorf("GetService(%s) node = %+v, want id %s-1 at 127.0.0.1:9001", name, node, name)
	}
}

// TestEtcdTLSAuth runs the cases that need an etcd server with TLS and
// authentication against one server, because setting up authentication
// is the slow part of starting it.
func TestEtcdTLSAuth(t *testing.T) {
	srv := testserver.StartEtcd(t, testserver.EtcdOptions{TLS: true, Auth: true})

	t.Run("register", func(t *testing.T) { testEtcdRegister(t, srv) })
	t.Run("rejected", func(t *testing.T) { testEtcdRejected(t, srv) })
	t.Run("plugin env", func(t *testing.T) { testEtcdPluginEnv(t, srv) })
}

// testEtcdRegister registers, reads and watches a service through the
// registry that New builds with TLS and a password.
func testEtcdRegister(t *testing.T, srv *testserver.Etcd) {
	r, err := New(etcdConfig(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	if reason := signetregistry.InsecureReason(r); reason != "" {
		t.Errorf("registry.InsecureReason = %q, want \"\"", reason)
	}
	assertVerifyingTLS(t, r.Options().TLSConfig)
	assertRegisterAndGet(t, r, "greeter")

	// The watch goes through the same authenticated TLS client.
	w, err := r.Watch(registry.WatchService("greeter"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	other := testService("greeter")
	other.Nodes[0].Id = "greeter-2"
	if err := r.Register(other, registry.RegisterTTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Deregister(other) })
	result, err := w.Next()
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if result.Action != "create" || len(result.Service.Nodes) != 1 || result.Service.Nodes[0].Id != "greeter-2" {
		t.Errorf("watch result %s %+v, want create of greeter-2", result.Action, result.Service)
	}
}

// testEtcdRejected covers configurations that the TLS and auth server must
// reject. With a user name the etcd client authenticates while New runs,
// so New itself returns the error.
func testEtcdRejected(t *testing.T, srv *testserver.Etcd) {
	cases := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"without ca", func(c *Config) { c.TLSCAFile = ""; c.Timeout = failTimeout }, "certificate"},
		{"without client certificate", func(c *Config) { c.TLSCertFile, c.TLSKeyFile = "", ""; c.Timeout = failTimeout }, "certificate"},
		{"wrong password", func(c *Config) { c.EtcdPassword = testPassword }, "authentication failed"},
		{"unknown user", func(c *Config) { c.EtcdUsername = testUsername; c.EtcdPassword = testPassword }, "authentication failed"},
		{"plaintext", func(c *Config) {
			c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile = "", "", ""
			c.Addresses = []string{strings.TrimPrefix(c.Addresses[0], "https://")}
			c.Timeout = failTimeout
		}, "backend: etcd at"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := etcdConfig(t, srv)
			tc.change(&cfg)

			start := time.Now()
			r, err := New(cfg)
			if err == nil {
				t.Fatalf("New returned a registry for a configuration the server rejects: %v", r.Options().Addrs)
			}
			t.Logf("New failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), srv.Password) {
				t.Errorf("error contains the etcd password: %v", err)
			}
			assertNoSecret(t, err.Error())
		})
	}
}

// TestEtcdTLSWithoutCA checks that without a user name, when New does
// not connect, the first call fails on a server whose CA is not trusted.
func TestEtcdTLSWithoutCA(t *testing.T) {
	srv := testserver.StartEtcd(t, testserver.EtcdOptions{TLS: true})

	r, err := New(Config{Registry: Etcd, Addresses: srv.Endpoints, TLSCertFile: srv.CertFile, TLSKeyFile: srv.KeyFile, Timeout: failTimeout})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Register(testService("greeter"), registry.RegisterTTL(time.Minute)); err == nil {
		t.Fatal("Register succeeded against a server whose certificate the system roots cannot verify")
	}

	trusted, err := New(Config{Registry: Etcd, Addresses: srv.Endpoints, TLSCAFile: srv.CAFile, TLSCertFile: srv.CertFile, TLSKeyFile: srv.KeyFile, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	assertRegisterAndGet(t, trusted, "greeter")
}

// testEtcdPluginEnv checks that the variables the etcd plugin reads by
// itself cannot redirect or re-authenticate what New builds.
func testEtcdPluginEnv(t *testing.T, srv *testserver.Etcd) {
	t.Setenv("MICRO_REGISTRY_ADDRESS", "https://"+closedPort(t)+","+closedPort(t))
	t.Setenv("ETCD_USERNAME", "root")
	t.Setenv("ETCD_PASSWORD", testPassword)

	r, err := New(etcdConfig(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Options().Addrs; len(got) != 1 || "https://"+got[0] != srv.Endpoints[0] {
		t.Errorf("plugin addresses = %q, want the host:port of %s", got, srv.Endpoints[0])
	}
	assertRegisterAndGet(t, r, "greeter")
}
