package testserver_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-micro/plugins/v4/registry/consul"
	"github.com/go-micro/plugins/v4/registry/kubernetes"
	"github.com/hashicorp/consul/api"
	"go-micro.dev/v4/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/signet-micro/signet/internal/testserver"
)

// newEtcdClient returns a client that logs nothing, because these tests
// provoke the errors that the client would log as warnings.
func newEtcdClient(t *testing.T, cfg clientv3.Config) *clientv3.Client {
	t.Helper()

	cfg.Logger = zap.NewNop()
	client, err := clientv3.New(cfg)
	if err != nil {
		t.Fatalf("create etcd client for %v: %v", cfg.Endpoints, err)
	}
	t.Cleanup(func() { client.Close() })

	return client
}

func requestContext(t *testing.T) context.Context {
	t.Helper()

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)

	return ctx
}

func TestEtcdPlainPutGet(t *testing.T) {
	server := testserver.StartEtcd(t, testserver.EtcdOptions{})
	if !strings.HasPrefix(server.Endpoints[0], "http://127.0.0.1:") {
		t.Fatalf("endpoint = %q, want http://127.0.0.1:PORT", server.Endpoints[0])
	}

	client := newEtcdClient(t, server.ClientConfig())
	ctx := requestContext(t)

	if _, err := client.Put(ctx, "/micro/plain", "value"); err != nil {
		t.Fatalf("put: %v", err)
	}
	resp, err := client.Get(ctx, "/micro/plain")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if len(resp.Kvs) != 1 {
		t.Fatalf("get returned %d keys, want 1", len(resp.Kvs))
	}
	if got := string(resp.Kvs[0].Value); got != "value" {
		t.Errorf("value = %q, want %q", got, "value")
	}
}

func TestEtcdRestartKeepsData(t *testing.T) {
	server := testserver.StartEtcd(t, testserver.EtcdOptions{Auth: true})
	client := newEtcdClient(t, server.ClientConfig())
	ctx := requestContext(t)

	if _, err := client.Put(ctx, "/micro/before-restart", "kept"); err != nil {
		t.Fatalf("put: %v", err)
	}

	server.Stop()
	stoppedCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := client.Get(stoppedCtx, "/micro/before-restart"); err == nil {
		t.Fatal("get succeeded while etcd was stopped")
	}

	server.Restart()

	// The client reconnects on its own, and the user must still exist.
	resp, err := client.Get(ctx, "/micro/before-restart")
	if err != nil {
		t.Fatalf("get after restart: %v", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "kept" {
		t.Errorf("after restart got %v, want one key with value %q", resp.Kvs, "kept")
	}
}

func TestEtcdTLSAuthLimitsUser(t *testing.T) {
	server := testserver.StartEtcd(t, testserver.EtcdOptions{TLS: true, Auth: true})
	if !strings.HasPrefix(server.Endpoints[0], "https://127.0.0.1:") {
		t.Fatalf("endpoint = %q, want https://127.0.0.1:PORT", server.Endpoints[0])
	}
	if server.Username != testserver.EtcdUser || server.Password == "" {
		t.Fatalf("credentials = %q/%q, want user %q and a password", server.Username, server.Password, testserver.EtcdUser)
	}
	for name, path := range map[string]string{"CAFile": server.CAFile, "CertFile": server.CertFile, "KeyFile": server.KeyFile} {
		if path == "" {
			t.Errorf("%s is empty", name)
		}
	}

	client := newEtcdClient(t, server.ClientConfig())
	ctx := requestContext(t)

	if _, err := client.Put(ctx, "/micro/x", "allowed"); err != nil {
		t.Fatalf("put /micro/x as %s: %v", server.Username, err)
	}
	if _, err := client.Get(ctx, "/micro/x"); err != nil {
		t.Errorf("get /micro/x as %s: %v", server.Username, err)
	}
	if _, err := client.Put(ctx, "/other/x", "denied"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("put /other/x as %s: error = %v, want permission denied", server.Username, err)
	}
	if _, err := client.Put(ctx, "/micro", "denied"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("put /micro (outside the /micro/ prefix) as %s: error = %v, want permission denied", server.Username, err)
	}

	// The client certificate alone is no etcd user.
	certOnly := server.ClientConfig()
	certOnly.Username, certOnly.Password = "", ""
	certOnlyClient := newEtcdClient(t, certOnly)
	if _, err := certOnlyClient.Put(ctx, "/micro/x", "denied"); err == nil {
		t.Error("put /micro/x with the client certificate and no password succeeded, want an error")
	}
}

func TestEtcdTLSRejectsUnknownCA(t *testing.T) {
	server := testserver.StartEtcd(t, testserver.EtcdOptions{TLS: true})
	endpoint, err := url.Parse(server.Endpoints[0])
	if err != nil {
		t.Fatal(err)
	}

	// A handshake that trusts only the system roots must fail to verify
	// the server certificate.
	noCA := server.TLSConfig.Clone()
	noCA.RootCAs = nil
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", endpoint.Host, noCA)
	if err == nil {
		conn.Close()
		t.Fatal("TLS handshake without the test CA succeeded")
	}
	var unknownAuthority x509.UnknownAuthorityError
	if !errors.As(err, &unknownAuthority) {
		t.Errorf("handshake error = %v, want x509.UnknownAuthorityError", err)
	}

	// The same holds for the etcd client.
	cfg := server.ClientConfig()
	cfg.TLS = noCA
	client := newEtcdClient(t, cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := client.Put(ctx, "/micro/x", "value"); err == nil {
		t.Error("put through a client without the test CA succeeded")
	}

	// With the CA the handshake succeeds.
	conn, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", endpoint.Host, server.TLSConfig)
	if err != nil {
		t.Fatalf("TLS handshake with the test CA: %v", err)
	}
	conn.Close()
}

// testService returns a go-micro service with one node on a loopback address
// that nothing needs to listen on.
func testService(name string) *registry.Service {
	return &registry.Service{
		Name:    name,
		Version: "1.0.0",
		Nodes: []*registry.Node{{
			Id:       name + "-1",
			Address:  "127.0.0.1:7001",
			Metadata: map[string]string{"origin": "testserver"},
		}},
	}
}

// waitForService polls GetService until it returns the service with the node
// of testService, because Consul syncs agent registrations to its catalog
// asynchronously.
func waitForService(t *testing.T, reg registry.Registry, name string) {
	t.Helper()

	deadline := time.After(10 * time.Second)
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()

	for {
		services, err := reg.GetService(name)
		if err == nil && len(services) == 1 && len(services[0].Nodes) == 1 {
			if got := services[0].Nodes[0].Id; got != name+"-1" {
				t.Fatalf("%s node id = %q, want %q", name, got, name+"-1")
			}
			return
		}

		select {
		case <-deadline:
			t.Fatalf("GetService(%q) did not return one node within 10s: services %v, error %v", name, services, err)
		case <-ticker.C:
		}
	}
}

func TestConsulRegisterWithoutACL(t *testing.T) {
	server := testserver.StartConsul(t, testserver.ConsulOptions{})
	if server.ManagementToken != "" {
		t.Errorf("ManagementToken = %q without ACL, want empty", server.ManagementToken)
	}

	reg := consul.NewRegistry(registry.Addrs(server.Addr))
	if err := reg.Register(testService("signet.test.plain")); err != nil {
		t.Fatalf("register: %v", err)
	}
	waitForService(t, reg, "signet.test.plain")
}

func TestConsulServiceTokenScope(t *testing.T) {
	server := testserver.StartConsul(t, testserver.ConsulOptions{ACL: true})
	if server.ManagementToken == "" {
		t.Fatal("ManagementToken is empty with ACL")
	}

	token := server.ServiceToken(t, "signet.test.own")
	reg := consul.NewRegistry(
		registry.Addrs(server.Addr),
		consul.Config(&api.Config{Token: token}),
	)

	if err := reg.Register(testService("signet.test.own")); err != nil {
		t.Fatalf("register own service with its token: %v", err)
	}
	waitForService(t, reg, "signet.test.own")

	err := reg.Register(testService("signet.test.other"))
	if err == nil || !strings.Contains(err.Error(), "Permission denied") {
		t.Errorf("register another service with the token: error = %v, want Permission denied", err)
	}

	anonymous := consul.NewRegistry(registry.Addrs(server.Addr))
	if err := anonymous.Register(testService("signet.test.own")); err == nil {
		t.Error("register without a token succeeded, want Permission denied")
	}
}

func TestConsulRestartKeepsTokens(t *testing.T) {
	server := testserver.StartConsul(t, testserver.ConsulOptions{ACL: true})
	token := server.ServiceToken(t, "signet.test.restart")

	server.Restart()

	// A -dev agent keeps no catalog across a restart, so the service
	// registers again.
	reg := consul.NewRegistry(
		registry.Addrs(server.Addr),
		consul.Config(&api.Config{Token: token}),
	)
	if err := reg.Register(testService("signet.test.restart")); err != nil {
		t.Fatalf("register after restart with the token made before it: %v", err)
	}
	waitForService(t, reg, "signet.test.restart")
}

func TestKubePluginRegistersOnPod(t *testing.T) {
	server := testserver.StartKube(t)
	if !strings.HasPrefix(server.Host, "https://127.0.0.1:") {
		t.Fatalf("Host = %q, want https://127.0.0.1:PORT", server.Host)
	}

	const podName = "signet-test-pod"
	server.CreatePod(t, "default", podName, "127.0.0.5")

	// The plugin patches the pod named by $HOSTNAME in namespace "default".
	t.Setenv("HOSTNAME", podName)
	reg := kubernetes.NewRegistry(registry.Addrs(server.Host))

	const name = "signet.test.kube"
	if err := reg.Register(testService(name)); err != nil {
		t.Fatalf("register: %v", err)
	}

	pod := server.GetPod(t, "default", podName)
	if got := pod.Metadata.Labels["micro.mu/type"]; got != "service" {
		t.Errorf("label micro.mu/type = %q, want %q", got, "service")
	}
	if got := pod.Metadata.Labels["micro.mu/selector-"+name]; got != "service" {
		t.Errorf("label micro.mu/selector-%s = %q, want %q", name, got, "service")
	}
	if got := pod.Metadata.Annotations["micro.mu/service-"+name]; !strings.Contains(got, `"name":"`+name+`"`) {
		t.Errorf("annotation micro.mu/service-%s = %q, want the service as JSON", name, got)
	}
	if pod.Status.Phase != "Running" {
		t.Errorf("pod phase after register = %q, want Running", pod.Status.Phase)
	}

	services, err := reg.GetService(name)
	if err != nil {
		t.Fatalf("GetService: %v", err)
	}
	if len(services) != 1 || len(services[0].Nodes) != 1 {
		t.Fatalf("GetService returned %v, want one service with one node", services)
	}
	if got := services[0].Nodes[0].Address; got != "127.0.0.1:7001" {
		t.Errorf("node address = %q, want the registered 127.0.0.1:7001", got)
	}

	if err := reg.Deregister(testService(name)); err != nil {
		t.Fatalf("deregister: %v", err)
	}
	if _, err := reg.GetService(name); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("GetService after deregister: error = %v, want registry.ErrNotFound", err)
	}
}

func TestKubePluginIgnoresOtherNamespaces(t *testing.T) {
	server := testserver.StartKube(t)

	const podName = "signet-elsewhere"
	server.CreatePod(t, "signet-other", podName, "127.0.0.6")
	if got := server.GetPod(t, "signet-other", podName).Status.Phase; got != "Running" {
		t.Fatalf("pod phase = %q, want Running", got)
	}

	// With registry.Addrs the plugin always patches namespace "default",
	// where no pod of this name exists.
	t.Setenv("HOSTNAME", podName)
	reg := kubernetes.NewRegistry(registry.Addrs(server.Host))
	if err := reg.Register(testService("signet.test.elsewhere")); err == nil || !strings.Contains(err.Error(), "pod not found") {
		t.Errorf("register on a pod outside namespace default: error = %v, want pod not found", err)
	}
}
