package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go-micro.dev/v4/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/signet-micro/signet/internal/testserver"
	"github.com/signet-micro/signet/registry/backend"
	"github.com/signet-micro/signet/signing"
)

// target is one backend under test: the plain go-micro registries that
// genuine nodes, verifying readers and the attacker use, all built with
// backend.New so that its secure configurations are exercised too.
type target struct {
	name string

	// limits are the metadata limits of the records that test the
	// backend's limits: Consul's for Consul, the verifier's for the rest.
	limits signing.MetadataLimits

	// reader is the plain registry that verifying wrappers read through.
	reader registry.Registry

	// genuine returns the plain registry through which a genuine node of
	// the named services registers. For kubernetes it registers as the
	// pod named pod; with Consul ACLs it carries a token that may write
	// exactly those services.
	genuine func(t *testing.T, pod string, services ...string) registry.Registry

	// attacker returns a plain registry with write access to the backend,
	// as an attacker with a leaked credential or network access has it.
	attacker func(t *testing.T, pod string, services ...string) registry.Registry

	// writes returns the registry that a genuine node of service
	// registers through, and a function that counts the backend's writes
	// of that node's record. It is nil when the backend keeps no count.
	writes func(t *testing.T, pod, service, nodeID string) (registry.Registry, func() int)

	// consulProxy returns a genuine registry for services whose requests
	// pass a counting proxy. It is nil for backends other than Consul.
	consulProxy func(t *testing.T, services ...string) (registry.Registry, *countingProxy)

	// stop stops the backend's server, and restart starts it again with
	// the data it keeps. Memory has neither, and kubernetes has no restart.
	stop    func()
	restart func()

	// endpoints are the etcd client URLs, for clients of the fault tests.
	endpoints []string

	// acl is set for Consul with ACLs on.
	acl bool
}

// newInner builds a plain registry with backend.New.
func newInner(t *testing.T, cfg backend.Config) registry.Registry {
	t.Helper()
	cfg.Logger = quiet
	r, err := backend.New(cfg)
	if err != nil {
		t.Fatalf("backend.New(%v): %v", cfg, err)
	}
	return r
}

func startMemory(t *testing.T) *target {
	r := newInner(t, backend.Config{Registry: backend.Memory})
	same := func(*testing.T, string, ...string) registry.Registry { return r }
	return &target{
		name:     "memory",
		limits:   signing.VerifierLimits,
		reader:   r,
		genuine:  same,
		attacker: same,
	}
}

// startEtcd starts an embedded etcd, plain or with client TLS and
// authentication. The attacker connects with the same credentials, as
// one holding a leaked password and client certificate would.
func startEtcd(t *testing.T, secure bool) *target {
	srv := testserver.StartEtcd(t, testserver.EtcdOptions{TLS: secure, Auth: secure})
	cfg := backend.Config{Registry: backend.Etcd, Addresses: srv.Endpoints}
	name := "etcd"
	if secure {
		name = "etcd-tls-auth"
		cfg.TLSCAFile, cfg.TLSCertFile, cfg.TLSKeyFile = srv.CAFile, srv.CertFile, srv.KeyFile
		cfg.EtcdUsername, cfg.EtcdPassword = srv.Username, srv.Password
	}

	shared := newInner(t, cfg)
	attacker := newInner(t, cfg)
	reader := newInner(t, cfg)
	client := etcdClient(t, srv.ClientConfig())
	if secure {
		holdWatchStream(t, reader)
	}

	return &target{
		name:     name,
		limits:   signing.VerifierLimits,
		reader:   reader,
		genuine:  func(*testing.T, string, ...string) registry.Registry { return shared },
		attacker: func(*testing.T, string, ...string) registry.Registry { return attacker },
		writes: func(t *testing.T, _, service, nodeID string) (registry.Registry, func() int) {
			// The go-micro etcd plugin (v1.2.0) stores each node under
			// this key. The key's version counts the puts to it; lease
			// keepalives do not change it.
			key := "/micro/registry/" + strings.ReplaceAll(service, "/", "-") + "/" + strings.ReplaceAll(nodeID, "/", "-")
			return shared, func() int { return keyVersion(t, client, key) }
		},
		stop:      srv.Stop,
		restart:   srv.Restart,
		endpoints: srv.Endpoints,
	}
}

// holdWatchStream keeps a watch open on the etcd client of r until the test
// ends. The client shares one gRPC stream among its watches and closes it
// with the last one. With auth on, opening a new stream took about 0.7 s
// here under the race detector, as long as one Authenticate call, in which
// the embedded server checks the password with bcrypt. The open watch
// spares each short-lived watch of the suite that wait.
func holdWatchStream(t *testing.T, r registry.Registry) {
	t.Helper()
	w, err := r.Watch(registry.WatchService("signet-conformance-idle"))
	if err != nil {
		t.Fatalf("watch on the etcd reader: %v", err)
	}
	t.Cleanup(w.Stop)
}

// startConsul starts a Consul agent, with ACLs off or on. With ACLs on,
// genuine nodes register with service tokens that may write only their
// own service names, readers use a token that may only read, and the
// attacker holds the management token.
func startConsul(t *testing.T, acl bool) *target {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{ACL: acl})
	config := func(addr, token string) backend.Config {
		return backend.Config{Registry: backend.Consul, Addresses: []string{addr}, ConsulToken: token}
	}

	readerToken, attackerToken := "", ""
	if acl {
		// ServiceToken grants read on every service and node, and write
		// on the one name given, which nothing registers.
		readerToken = srv.ServiceToken(t, "signet-conformance-reader")
		attackerToken = srv.ManagementToken
	}
	var shared registry.Registry
	if !acl {
		shared = newInner(t, config(srv.Addr, ""))
	}
	attacker := newInner(t, config(srv.Addr, attackerToken))

	var mu sync.Mutex
	byServices := map[string]registry.Registry{}
	token := func(t *testing.T, services []string) string {
		if !acl {
			return ""
		}
		return srv.ServiceToken(t, services...)
	}

	tg := &target{
		name:     "consul",
		limits:   signing.ConsulLimits,
		reader:   newInner(t, config(srv.Addr, readerToken)),
		attacker: func(*testing.T, string, ...string) registry.Registry { return attacker },
		genuine: func(t *testing.T, _ string, services ...string) registry.Registry {
			if !acl {
				return shared
			}
			key := strings.Join(sortedCopy(services), ",")
			mu.Lock()
			defer mu.Unlock()
			if r, ok := byServices[key]; ok {
				return r
			}
			r := newInner(t, config(srv.Addr, token(t, services)))
			byServices[key] = r
			return r
		},
		consulProxy: func(t *testing.T, services ...string) (registry.Registry, *countingProxy) {
			p := startCountingProxy(t, srv.Addr)
			return newInner(t, config(p.addr, token(t, services))), p
		},
		stop:    srv.Stop,
		restart: srv.Restart,
		acl:     acl,
	}
	tg.writes = func(t *testing.T, _, service, _ string) (registry.Registry, func() int) {
		inner, p := tg.consulProxy(t, service)
		return inner, func() int { return int(p.registers.Load()) }
	}
	if acl {
		tg.name = "consul-acl"
	}
	return tg
}

// startKube starts kube-apiserver. Every genuine and rogue node registers
// as a pod of its own, through the go-micro kubernetes plugin with
// $HOSTNAME set to that pod.
func startKube(t *testing.T) *target {
	k := testserver.StartKube(t)
	t.Setenv("HOSTNAME", "")
	plain := newInner(t, backend.Config{Registry: backend.Kubernetes, Addresses: []string{k.Host}})
	pods := &kubePods{kube: k, labels: map[string]map[string]bool{}}
	asPod := func(t *testing.T, pod string, services ...string) registry.Registry {
		pods.ensure(t, pod, services)
		return &podRegistry{Registry: plain, pod: pod}
	}
	storage := etcdClient(t, k.Etcd.ClientConfig())

	return &target{
		name:     "kubernetes",
		limits:   signing.VerifierLimits,
		reader:   newInner(t, backend.Config{Registry: backend.Kubernetes, Addresses: []string{k.Host}}),
		genuine:  asPod,
		attacker: asPod,
		writes: func(t *testing.T, pod, service, _ string) (registry.Registry, func() int) {
			// kube-apiserver stores the pod under this key in its etcd and
			// skips the write of a patch that changes nothing.
			key := "/registry/pods/default/" + pod
			return asPod(t, pod, service), func() int { return keyVersion(t, storage, key) }
		},
		stop: k.Stop,
	}
}

// podRegistry registers through the go-micro kubernetes plugin as pod.
// The plugin patches the pod that $HOSTNAME names, so Register and
// Deregister set HOSTNAME under a lock that all podRegistry values share.
type podRegistry struct {
	registry.Registry
	pod string
}

var _ registry.Registry = (*podRegistry)(nil)

var hostnameMu sync.Mutex

func (r *podRegistry) Register(s *registry.Service, opts ...registry.RegisterOption) error {
	hostnameMu.Lock()
	defer hostnameMu.Unlock()
	if err := os.Setenv("HOSTNAME", r.pod); err != nil {
		return err
	}
	return r.Registry.Register(s, opts...)
}

func (r *podRegistry) Deregister(s *registry.Service, opts ...registry.DeregisterOption) error {
	hostnameMu.Lock()
	defer hostnameMu.Unlock()
	if err := os.Setenv("HOSTNAME", r.pod); err != nil {
		return err
	}
	return r.Registry.Deregister(s, opts...)
}

// kubePods creates the pods that nodes register as, with the labels the
// go-micro kubernetes plugin selects by.
//
// The plugin's watcher (v1.1.2) handles only MODIFIED pod events. A pod
// that gains the service's selector label at its first registration
// reaches a watch with that selector as ADDED, which the plugin drops, so
// it would never report a new node. The pods are therefore created with
// the selector labels already set, as a Deployment's pod template can set
// them, and registration arrives as MODIFIED.
type kubePods struct {
	kube *testserver.Kube

	mu     sync.Mutex
	labels map[string]map[string]bool // pod -> label keys set
}

func (p *kubePods) ensure(t *testing.T, pod string, services []string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()

	have, ok := p.labels[pod]
	if !ok {
		p.kube.CreatePod(t, "default", pod, "127.0.0.1")
		have = map[string]bool{}
		p.labels[pod] = have
	}

	labels := map[string]string{}
	for _, s := range append([]string{""}, services...) {
		key := "micro.mu/type"
		if s != "" {
			key = "micro.mu/selector-" + kubeLabelName(s)
		}
		if !have[key] {
			labels[key] = "service"
		}
	}
	if len(labels) == 0 {
		return
	}
	p.patchLabels(t, pod, labels)
	for k := range labels {
		have[k] = true
	}
}

func (p *kubePods) patchLabels(t *testing.T, pod string, labels map[string]string) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPatch, p.kube.Host+"/api/v1/namespaces/default/pods/"+pod, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+p.kube.Token)
	req.Header.Set("Content-Type", "application/merge-patch+json")

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: p.kube.TLSConfig}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("label pod %s: %v", pod, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("label pod %s: status %d: %s", pod, resp.StatusCode, data)
	}
}

// kubeLabelName is the service name as the kubernetes plugin puts it in
// label and annotation keys: bytes outside [-A-Za-z0-9_.] become '_'.
func kubeLabelName(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

// podName returns the name of the pod that node nodeID of service
// registers as. role is "a" for the attacker and "g" for genuine nodes,
// so attacker pods sort first in the apiserver's lists.
func podName(role, service, nodeID string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(nodeID) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
		if b.Len() >= 40 {
			break
		}
	}
	sum := sha256.Sum256([]byte(service + "\x00" + nodeID))
	return role + "-" + strings.Trim(b.String(), "-") + "-" + hex.EncodeToString(sum[:4])
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

// etcdClient returns a clientv3 client that logs nothing.
func etcdClient(t *testing.T, cfg clientv3.Config) *clientv3.Client {
	t.Helper()
	cfg.Logger = zap.NewNop()
	c, err := clientv3.New(cfg)
	if err != nil {
		t.Fatalf("connect to etcd at %v: %v", cfg.Endpoints, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// keyVersion returns the number of writes of key since its creation, or 0
// when it does not exist.
func keyVersion(t *testing.T, c *clientv3.Client, key string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Get(ctx, key)
	if err != nil {
		t.Fatalf("etcd get %s: %v", key, err)
	}
	if len(resp.Kvs) == 0 {
		return 0
	}
	return int(resp.Kvs[0].Version)
}

// describe returns a short description of services for failure messages.
func describe(services []*registry.Service) string {
	var b strings.Builder
	for _, s := range services {
		if s == nil {
			continue
		}
		fmt.Fprintf(&b, "[%s %s:", s.Name, s.Version)
		for _, n := range s.Nodes {
			if n != nil {
				fmt.Fprintf(&b, " %s@%s", n.Id, n.Address)
			}
		}
		b.WriteString("]")
	}
	return b.String()
}
