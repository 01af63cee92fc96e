package backend

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go-micro.dev/v4/registry"

	signetregistry "github.com/signet-micro/signet/registry"
)

func TestNewErrors(t *testing.T) {
	pki := newTestPKI(t)
	notPEM := writeFile(t, "ca.txt", "not a certificate")
	missing := filepath.Join(t.TempDir(), "missing.pem")
	etcdAddr := closedPort(t)

	cases := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"unset", Config{}, []string{EnvRegistry, `"memory", "etcd", "consul" or "kubernetes"`}},
		{"mdns", Config{Registry: "mdns"}, []string{EnvRegistry, "multicast", "cannot be secured", "etcd or consul"}},
		{"unknown", Config{Registry: "zookeeper"}, []string{EnvRegistry, `"zookeeper"`, `"memory", "etcd", "consul" or "kubernetes"`}},

		{"memory address", Config{Registry: Memory, Addresses: []string{etcdAddr}}, []string{EnvAddress, "memory"}},
		{"memory tls", Config{Registry: Memory, TLSCAFile: pki.CAFile}, []string{EnvTLSCAFile, "memory"}},
		{"memory token", Config{Registry: Memory, ConsulToken: testToken}, []string{EnvConsulToken, "memory"}},
		{"memory password", Config{Registry: Memory, EtcdUsername: testUsername, EtcdPassword: testPassword}, []string{EnvEtcdUsername, EnvEtcdPassword}},

		{"memory timeout", Config{Registry: Memory, Timeout: time.Second}, []string{EnvTimeout, "memory"}},
		{"consul timeout", Config{Registry: Consul, Addresses: []string{etcdAddr}, Timeout: time.Second}, []string{EnvTimeout, "consul"}},
		{"kubernetes timeout", Config{Registry: Kubernetes, Addresses: []string{"http://127.0.0.1:8001"}, Timeout: time.Second}, []string{EnvTimeout, "kubernetes"}},
		{"etcd negative timeout", Config{Registry: Etcd, Addresses: []string{etcdAddr}, Timeout: -time.Second}, []string{EnvTimeout, "-1s", "positive"}},

		{"etcd no address", Config{Registry: Etcd}, []string{EnvAddress, "no default address", "127.0.0.1:2379"}},
		{"consul no address", Config{Registry: Consul}, []string{EnvAddress, "no default address", "127.0.0.1:8500"}},
		{"etcd no port", Config{Registry: Etcd, Addresses: []string{"127.0.0.1"}}, []string{EnvAddress, `"127.0.0.1"`, "host:port"}},
		{"consul no port", Config{Registry: Consul, Addresses: []string{"https://127.0.0.1"}}, []string{EnvAddress, "host:port"}},
		{"etcd empty host", Config{Registry: Etcd, Addresses: []string{":2379"}}, []string{EnvAddress, "host is empty"}},
		{"etcd bad port", Config{Registry: Etcd, Addresses: []string{"127.0.0.1:99999"}}, []string{EnvAddress, "99999"}},
		{"etcd path", Config{Registry: Etcd, Addresses: []string{"https://127.0.0.1:2379/v3"}}, []string{EnvAddress, "path"}},
		{"etcd scheme", Config{Registry: Etcd, Addresses: []string{"unix://127.0.0.1:2379"}}, []string{EnvAddress, `"unix"`}},
		{"etcd url password", Config{Registry: Etcd, Addresses: []string{"https://root:" + testPassword + "@127.0.0.1:2379"}}, []string{EnvAddress, "credentials"}},
		{"etcd mixed schemes", Config{Registry: Etcd, Addresses: []string{"https://127.0.0.1:2379", "127.0.0.1:2380"}}, []string{EnvAddress, "mixes schemes"}},
		{"etcd second bad", Config{Registry: Etcd, Addresses: []string{"127.0.0.1:2379", "nope"}}, []string{EnvAddress, "item 2", `"nope"`}},

		{"etcd http with ca", Config{Registry: Etcd, Addresses: []string{"http://" + etcdAddr}, TLSCAFile: pki.CAFile}, []string{EnvAddress, "http://", EnvTLSCAFile, "unencrypted"}},
		{"consul http with server name", Config{Registry: Consul, Addresses: []string{"http://" + etcdAddr}, TLSServerName: "consul"}, []string{EnvAddress, EnvTLSServerName}},
		{"cert without key", Config{Registry: Etcd, Addresses: []string{etcdAddr}, TLSCertFile: pki.ClientCertFile}, []string{EnvTLSCertFile, EnvTLSKeyFile, "both"}},
		{"key without cert", Config{Registry: Consul, Addresses: []string{etcdAddr}, TLSKeyFile: pki.ClientKeyFile}, []string{EnvTLSKeyFile + " is set but " + EnvTLSCertFile}},
		{"ca not pem", Config{Registry: Etcd, Addresses: []string{etcdAddr}, TLSCAFile: notPEM}, []string{EnvTLSCAFile, notPEM, "no PEM certificate"}},
		{"ca missing", Config{Registry: Etcd, Addresses: []string{etcdAddr}, TLSCAFile: missing}, []string{EnvTLSCAFile, missing}},
		{"cert is key", Config{Registry: Etcd, Addresses: []string{etcdAddr}, TLSCertFile: pki.ClientKeyFile, TLSKeyFile: pki.ClientKeyFile}, []string{EnvTLSCertFile, EnvTLSKeyFile, "client certificate"}},
		{"key mismatch", Config{Registry: Etcd, Addresses: []string{etcdAddr}, TLSCertFile: pki.ClientCertFile, TLSKeyFile: pki.ServerKeyFile}, []string{EnvTLSCertFile, EnvTLSKeyFile}},

		{"etcd user only", Config{Registry: Etcd, Addresses: []string{etcdAddr}, EtcdUsername: testUsername}, []string{EnvEtcdUsername, EnvEtcdPassword, "both"}},
		{"etcd password only", Config{Registry: Etcd, Addresses: []string{etcdAddr}, EtcdPassword: testPassword}, []string{EnvEtcdUsername, EnvEtcdPassword, "both"}},
		{"etcd consul token", Config{Registry: Etcd, Addresses: []string{etcdAddr}, ConsulToken: testToken}, []string{EnvConsulToken, "etcd"}},
		{"etcd namespace", Config{Registry: Etcd, Addresses: []string{etcdAddr}, KubernetesNamespace: "apps"}, []string{EnvKubernetesNamespace, "etcd"}},
		{"consul etcd password", Config{Registry: Consul, Addresses: []string{etcdAddr}, EtcdUsername: testUsername, EtcdPassword: testPassword}, []string{EnvEtcdUsername, EnvEtcdPassword, "consul"}},

		{"kubernetes tls", Config{Registry: Kubernetes, Addresses: []string{"https://127.0.0.1:6443"}, TLSCAFile: pki.CAFile}, []string{EnvTLSCAFile, "skips certificate verification"}},
		{"kubernetes token", Config{Registry: Kubernetes, Addresses: []string{"https://127.0.0.1:6443"}, ConsulToken: testToken}, []string{EnvConsulToken, "kubernetes"}},
		{"kubernetes two addresses", Config{Registry: Kubernetes, Addresses: []string{"https://127.0.0.1:6443", "https://127.0.0.1:6444"}}, []string{EnvAddress, "only the first"}},
		{"kubernetes no scheme", Config{Registry: Kubernetes, Addresses: []string{"127.0.0.1:6443"}}, []string{EnvAddress, "not an http:// or https:// URL"}},
		{"kubernetes url password", Config{Registry: Kubernetes, Addresses: []string{"https://admin:" + testPassword + "@127.0.0.1:6443"}}, []string{EnvAddress, "credentials"}},
		{"kubernetes namespace", Config{Registry: Kubernetes, Addresses: []string{"https://127.0.0.1:6443"}, KubernetesNamespace: "apps"}, []string{EnvKubernetesNamespace, `"apps"`, `"default"`}},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log := newRecordingLogger()
			tc.cfg.Logger = log
			r, err := New(tc.cfg)
			assertNoSecret(t, log.Text())
			if err == nil {
				t.Fatalf("New returned a %s registry and no error", r.String())
			}
			if r != nil {
				t.Errorf("New returned a registry together with error %v", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "backend: ") {
				t.Errorf("error %q lacks the prefix \"backend: \"", msg)
			}
			for _, want := range tc.want {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			assertNoSecret(t, msg)
		})
	}
}

func TestNewKubernetesOutsideCluster(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")

	_, err := New(Config{Registry: Kubernetes})
	if err == nil {
		t.Fatal("New built an in-cluster kubernetes registry outside a pod")
	}
	for _, want := range []string{EnvAddress, "KUBERNETES_SERVICE_HOST", "not a pod"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

// TestNewKubernetesInClusterChecks covers the checks that run before the
// plugin's in-cluster mode, which ends the process when the service
// account files are missing. The success path needs a real pod.
func TestNewKubernetesInClusterChecks(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
	t.Setenv("KUBERNETES_SERVICE_PORT", "6443")
	dir := t.TempDir()
	old := serviceAccountDir
	serviceAccountDir = dir
	t.Cleanup(func() { serviceAccountDir = old })

	_, err := New(Config{Registry: Kubernetes})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "token")) {
		t.Fatalf("New without a service account token: error %v, want one naming %s", err, filepath.Join(dir, "token"))
	}

	for name, content := range map[string]string{"token": "t", "ca.crt": "c", "namespace": "apps"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, err = New(Config{Registry: Kubernetes, KubernetesNamespace: "other"})
	if err == nil {
		t.Fatal("New accepted a namespace that differs from the service account's")
	}
	for _, want := range []string{EnvKubernetesNamespace, `"other"`, `"apps"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestNewKubernetesWarns(t *testing.T) {
	log := newRecordingLogger()

	r, err := New(Config{Registry: Kubernetes, Addresses: []string{"https://127.0.0.1:6443/"}, KubernetesNamespace: "default", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if r.String() != Kubernetes {
		t.Errorf("New built a %s registry, want kubernetes", r.String())
	}
	if got := r.Options().Addrs; len(got) != 1 || got[0] != "https://127.0.0.1:6443" {
		t.Errorf("plugin address = %q, want [https://127.0.0.1:6443] without the trailing slash", got)
	}
	for _, want := range []string{"without credentials", "without verifying", "kubectl proxy"} {
		if !strings.Contains(log.Text(), want) {
			t.Errorf("warning %q does not contain %q", log.Text(), want)
		}
	}
	if reason := signetregistry.InsecureReason(r); reason == "" {
		t.Error("registry.InsecureReason returned \"\" for the kubernetes plugin, which skips verification")
	}
}

func TestNewMemory(t *testing.T) {
	r, err := New(Config{Registry: "Memory"})
	if err != nil {
		t.Fatal(err)
	}
	if r.String() != Memory {
		t.Fatalf("New built a %s registry, want memory", r.String())
	}

	svc := &registry.Service{Name: "greeter", Version: "1", Nodes: []*registry.Node{{Id: "greeter-1", Address: "127.0.0.1:9000"}}}
	if err := r.Register(svc); err != nil {
		t.Fatal(err)
	}
	got, err := r.GetService("greeter")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Nodes) != 1 || got[0].Nodes[0].Id != "greeter-1" {
		t.Errorf("GetService(greeter) = %+v, want the registered node", got)
	}
}

func TestFromEnvUnset(t *testing.T) {
	t.Setenv(EnvRegistry, "")
	_, err := FromEnv()
	if err == nil || !strings.Contains(err.Error(), EnvRegistry) {
		t.Fatalf("FromEnv with %s unset: error %v, want one naming %s", EnvRegistry, err, EnvRegistry)
	}
}

func TestFromEnvMemory(t *testing.T) {
	t.Setenv(EnvRegistry, "memory")
	r, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if r.String() != Memory {
		t.Errorf("FromEnv built a %s registry, want memory", r.String())
	}
}

// TestNewTLSVerifies checks the TLS configuration that New hands to each
// plugin. Nothing listens on the address: the etcd client dials lazily,
// and the consul plugin's start-up probe fails at once.
func TestNewTLSVerifies(t *testing.T) {
	pki := newTestPKI(t)
	addr := closedPort(t)

	for _, kind := range []string{Etcd, Consul} {
		t.Run(kind, func(t *testing.T) {
			r, err := New(Config{
				Registry:      kind,
				Addresses:     []string{addr},
				TLSCAFile:     pki.CAFile,
				TLSCertFile:   pki.ClientCertFile,
				TLSKeyFile:    pki.ClientKeyFile,
				TLSServerName: "localhost",
			})
			if err != nil {
				t.Fatal(err)
			}

			o := r.Options()
			if !o.Secure {
				t.Error("Options().Secure is false, want true")
			}
			assertVerifyingTLS(t, o.TLSConfig)
			if o.TLSConfig != nil && o.TLSConfig.RootCAs == nil {
				t.Error("TLSConfig.RootCAs is nil, want the pool from " + EnvTLSCAFile)
			}
			if o.TLSConfig != nil && len(o.TLSConfig.Certificates) != 1 {
				t.Errorf("TLSConfig has %d client certificates, want 1", len(o.TLSConfig.Certificates))
			}
			if o.TLSConfig != nil && o.TLSConfig.ServerName != "localhost" {
				t.Errorf("TLSConfig.ServerName = %q, want localhost", o.TLSConfig.ServerName)
			}
			if reason := signetregistry.InsecureReason(r); reason != "" {
				t.Errorf("registry.InsecureReason = %q, want \"\"", reason)
			}
		})
	}
}

// TestNewHTTPSSystemRoots checks that an https:// address without TLS
// variables still gets a verifying configuration, with the system roots.
func TestNewHTTPSSystemRoots(t *testing.T) {
	addr := closedPort(t)

	for _, kind := range []string{Etcd, Consul} {
		t.Run(kind, func(t *testing.T) {
			r, err := New(Config{Registry: kind, Addresses: []string{"https://" + addr}})
			if err != nil {
				t.Fatal(err)
			}
			o := r.Options()
			if !o.Secure {
				t.Error("Options().Secure is false for an https:// address, want true")
			}
			assertVerifyingTLS(t, o.TLSConfig)
			if o.TLSConfig != nil && o.TLSConfig.RootCAs != nil {
				t.Error("TLSConfig.RootCAs is set without a CA file, want nil (the system roots)")
			}
			if got := o.Addrs; len(got) != 1 || got[0] != addr {
				t.Errorf("plugin addresses = %q, want [%s] without the scheme", got, addr)
			}
			if reason := signetregistry.InsecureReason(r); reason != "" {
				t.Errorf("registry.InsecureReason = %q, want \"\"", reason)
			}
		})
	}
}

func TestNewEtcdTimeout(t *testing.T) {
	r, err := New(Config{Registry: Etcd, Addresses: []string{closedPort(t)}, Timeout: 42 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Options().Timeout; got != 42*time.Second {
		t.Errorf("Options().Timeout = %v, want 42s", got)
	}
}

func TestNewPlaintext(t *testing.T) {
	addr := closedPort(t)

	for _, kind := range []string{Etcd, Consul} {
		for _, address := range []string{addr, "http://" + addr} {
			t.Run(kind+"/"+address, func(t *testing.T) {
				r, err := New(Config{Registry: kind, Addresses: []string{address}})
				if err != nil {
					t.Fatal(err)
				}
				o := r.Options()
				if o.Secure || o.TLSConfig != nil {
					t.Errorf("Options() has Secure %v and TLSConfig %v, want plaintext", o.Secure, o.TLSConfig)
				}
				if got := o.Addrs; len(got) != 1 || got[0] != addr {
					t.Errorf("plugin addresses = %q, want [%s]", got, addr)
				}
			})
		}
	}
}

func assertVerifyingTLS(t *testing.T, config *tls.Config) {
	t.Helper()
	if config == nil {
		t.Fatal("TLSConfig is nil, so the plugin would build one that skips verification")
	}
	if config.InsecureSkipVerify {
		t.Error("TLSConfig.InsecureSkipVerify is true")
	}
	if config.MinVersion != tls.VersionTLS12 {
		t.Errorf("TLSConfig.MinVersion = %#x, want TLS 1.2 (%#x)", config.MinVersion, tls.VersionTLS12)
	}
}

func TestCheckVerifies(t *testing.T) {
	addr := closedPort(t)
	cases := []struct {
		name string
		opts []registry.Option
		want string
	}{
		{"secure without config", []registry.Option{registry.Secure(true)}, "no registry.TLSConfig"},
		{"skip verify", []registry.Option{registry.TLSConfig(&tls.Config{InsecureSkipVerify: true})}, "skips certificate verification"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := registry.NewMemoryRegistry(tc.opts...)
			err := checkVerifies(r)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), EnvTLSCAFile) {
				t.Errorf("checkVerifies: error %v, want one containing %q and naming %s", err, tc.want, EnvTLSCAFile)
			}
		})
	}

	if err := checkVerifies(registry.NewMemoryRegistry(registry.Addrs(addr))); err != nil {
		t.Errorf("checkVerifies(plaintext) = %v, want nil", err)
	}
}

func TestNewKubernetesWarnings(t *testing.T) {
	cases := []struct {
		address string
		want    string // "" for no warning
	}{
		{"https://127.0.0.1:6443", "without verifying the server's certificate"},
		{"http://127.0.0.1:8001", ""},
		{"http://localhost", ""},
		{"http://[::1]:8001", ""},
		{"http://kube.example:8080", "plaintext HTTP"},
	}
	for _, tc := range cases {
		t.Run(tc.address, func(t *testing.T) {
			log := newRecordingLogger()
			// The plugin does not connect until the first call.
			if _, err := New(Config{Registry: Kubernetes, Addresses: []string{tc.address}, Logger: log}); err != nil {
				t.Fatal(err)
			}
			text := log.Text()
			if tc.want == "" && text != "" {
				t.Errorf("New logged %q, want no warning", text)
			}
			if tc.want != "" && !strings.Contains(text, tc.want) {
				t.Errorf("New logged %q, want a warning containing %q", text, tc.want)
			}
		})
	}
}

// TestWarnPlaintext calls warnPlaintext directly for remote hosts, because
// a test may only contact loopback and New would start connecting.
func TestWarnPlaintext(t *testing.T) {
	remote := []endpoint{{hostPort: "127.0.0.1:2379"}, {hostPort: "etcd-1.example:2379"}}
	cases := []struct {
		name        string
		endpoints   []endpoint
		credentials bool
		want        string
	}{
		{"loopback", []endpoint{{hostPort: "127.0.0.1:2379"}, {hostPort: "localhost:2379"}, {hostPort: "[::1]:2379"}}, false, ""},
		{"remote", remote, false, "plaintext"},
		{"remote credentials", remote, true, "credentials"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log := newRecordingLogger()
			warnPlaintext(log, Etcd, tc.endpoints, tc.credentials)
			text := log.Text()
			if tc.want == "" && text != "" {
				t.Errorf("warnPlaintext logged %q, want nothing", text)
			}
			if tc.want != "" && !strings.Contains(text, tc.want) {
				t.Errorf("warnPlaintext logged %q, want a warning containing %q", text, tc.want)
			}
			if tc.want != "" && !strings.Contains(text, "etcd-1.example:2379") {
				t.Errorf("warnPlaintext logged %q, want the remote address", text)
			}
			if strings.Contains(text, "127.0.0.1") {
				t.Errorf("warnPlaintext logged %q, which lists a loopback address", text)
			}
		})
	}
}

func TestNewPlaintextLoopbackQuiet(t *testing.T) {
	addr := closedPort(t)
	for _, kind := range []string{Etcd, Consul} {
		log := newRecordingLogger()
		if _, err := New(Config{Registry: kind, Addresses: []string{addr}, Logger: log}); err != nil {
			t.Fatal(err)
		}
		if text := log.Text(); text != "" {
			t.Errorf("New(%s at %s) logged %q, want no warning for loopback", kind, addr, text)
		}
	}
}
