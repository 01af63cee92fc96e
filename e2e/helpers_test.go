package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-micro/plugins/v4/registry/etcd"
	"github.com/google/uuid"
	"go-micro.dev/v4/broker"
	"go-micro.dev/v4/client"
	"go-micro.dev/v4/logger"
	"go-micro.dev/v4/registry"
	"go-micro.dev/v4/selector"
	"go-micro.dev/v4/server"
	"go-micro.dev/v4/transport"
	util "go-micro.dev/v4/util/registry"
	"go.uber.org/zap"

	"github.com/signet-micro/signet/internal/record"
	"github.com/signet-micro/signet/internal/testserver"
)

const (
	serviceName = "greeter"
	endpoint    = "Greeter.Hello"

	// waitTimeout bounds every wait for something asynchronous: a watch
	// result, a registration, a delivered message.
	waitTimeout = 10 * time.Second

	// rewriteAfter is how long a rogue record may go unseen by a watcher
	// before it is written again, because etcd registers a watch shortly
	// after the client asks for it and misses writes in between.
	rewriteAfter = 2 * time.Second

	pollInterval = 10 * time.Millisecond

	callTimeout = 5 * time.Second

	// rogueTTL is the registration TTL of rogue records. The etcd plugin
	// (v1.2.0) crashes on a registration without a TTL.
	rogueTTL = time.Minute
)

func TestMain(m *testing.M) {
	// go-micro logs every start, registration and connection at info level.
	if err := logger.DefaultLogger.Init(logger.WithLevel(logger.WarnLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "configuring the go-micro logger: %v\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// backend is a registry backend that the participants of a test share.
type backend struct {
	name string

	// connect returns a new client of the backend. Each participant gets
	// its own, as separate processes would have.
	connect func(t *testing.T) registry.Registry
}

// backends returns the memory registry and an embedded etcd, each started
// for the calling test.
func backends() []struct {
	name  string
	start func(t *testing.T) backend
} {
	return []struct {
		name  string
		start func(t *testing.T) backend
	}{
		{"memory", memoryBackend},
		{"etcd", etcdBackend},
	}
}

func memoryBackend(*testing.T) backend {
	shared := registry.NewMemoryRegistry()
	return backend{name: "memory", connect: func(*testing.T) registry.Registry { return memoryClient{shared} }}
}

func etcdBackend(t *testing.T) backend {
	// The plugin adds MICRO_REGISTRY_ADDRESS to the addresses it is given,
	// and the later address wins; ETCD_USERNAME would be rejected by the
	// embedded etcd, which has no users.
	t.Setenv("MICRO_REGISTRY_ADDRESS", "")
	t.Setenv("ETCD_USERNAME", "")
	t.Setenv("ETCD_PASSWORD", "")

	e := testserver.StartEtcd(t, testserver.EtcdOptions{})
	u, err := url.Parse(e.Endpoints[0])
	if err != nil {
		t.Fatalf("parsing etcd endpoint %q: %v", e.Endpoints[0], err)
	}

	logConfig := zap.NewProductionConfig()
	logConfig.Level = zap.NewAtomicLevelAt(zap.ErrorLevel)
	return backend{name: "etcd", connect: func(*testing.T) registry.Registry {
		return etcd.NewRegistry(registry.Addrs(u.Host), registry.Timeout(5*time.Second), etcd.LogConfig(&logConfig))
	}}
}

// memoryClient is one participant's view of the shared memory registry,
// with its own copies of the services it registers and of watch results.
// The memory registry sends the *registry.Service given to Register to
// every watcher, and go-micro's registry cache appends nodes to the
// services of watch results, so without copies one participant's cache
// would change what the others read, while they read it.
type memoryClient struct {
	registry.Registry
}

func (m memoryClient) Register(svc *registry.Service, opts ...registry.RegisterOption) error {
	return m.Registry.Register(util.CopyService(svc), opts...)
}

func (m memoryClient) Watch(opts ...registry.WatchOption) (registry.Watcher, error) {
	w, err := m.Registry.Watch(opts...)
	if err != nil {
		return nil, err
	}
	return copyingWatcher{w}, nil
}

// copyingWatcher returns a copy of each result's service.
type copyingWatcher struct {
	registry.Watcher
}

func (w copyingWatcher) Next() (*registry.Result, error) {
	res, err := w.Watcher.Next()
	if err != nil || res == nil || res.Service == nil {
		return res, err
	}
	return &registry.Result{Action: res.Action, Service: util.CopyService(res.Service)}, nil
}

// watchSignal passes every call to the registry it embeds, and closes
// started when Watch first succeeds. go-micro's registry cache starts its
// watcher in the background after the first lookup.
type watchSignal struct {
	registry.Registry
	once    sync.Once
	started chan struct{}
}

func newWatchSignal(r registry.Registry) *watchSignal {
	return &watchSignal{Registry: r, started: make(chan struct{})}
}

func (w *watchSignal) Watch(opts ...registry.WatchOption) (registry.Watcher, error) {
	wt, err := w.Registry.Watch(opts...)
	if err == nil {
		w.once.Do(func() { close(w.started) })
	}
	return wt, err
}

func (w *watchSignal) wait(t *testing.T) {
	t.Helper()
	select {
	case <-w.started:
	case <-time.After(waitTimeout):
		t.Fatalf("the selector's registry cache did not start watching within %v", waitTimeout)
	}
}

// HelloRequest is the request of Greeter.Hello.
type HelloRequest struct {
	Name string `json:"name"`
}

// HelloResponse is the response of Greeter.Hello.
type HelloResponse struct {
	Server string `json:"server"`
}

// Greeter is the handler of the greeter service; the type name is the first
// part of the endpoint name. It counts the calls it serves.
type Greeter struct {
	reply string
	calls atomic.Int64
}

// Hello replies with the handler's reply.
func (g *Greeter) Hello(_ context.Context, _ *HelloRequest, rsp *HelloResponse) error {
	g.calls.Add(1)
	rsp.Server = g.reply
	return nil
}

// greeterServer is a running go-micro rpc server with a [Greeter].
type greeterServer struct {
	server  server.Server
	handler *Greeter
	nodeID  string
}

func (g *greeterServer) address() string { return g.server.Options().Address }

// startGreeter starts an rpc server named greeter on 127.0.0.1 that
// registers through reg and replies with reply. It stops at cleanup.
func startGreeter(t *testing.T, reg registry.Registry, reply string) *greeterServer {
	t.Helper()

	// server.DefaultId is one value per process; servers need their own.
	id := uuid.New().String()
	srv := server.NewServer(
		server.Name(serviceName),
		server.Id(id),
		server.Address("127.0.0.1:0"),
		server.Registry(reg),
		server.Broker(broker.NewBroker(broker.Registry(reg), broker.Addrs("127.0.0.1:0"))),
		server.Transport(transport.NewHTTPTransport()),
	)
	handler := &Greeter{reply: reply}
	if err := srv.Handle(srv.NewHandler(handler)); err != nil {
		t.Fatalf("adding the Greeter handler: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("starting the %s greeter server: %v", reply, err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stopping the %s greeter server: %v", reply, err)
		}
	})
	return &greeterServer{server: srv, handler: handler, nodeID: serviceName + "-" + id}
}

// greeterClient is an rpc client whose selector reads reg through
// go-micro's registry cache, as the default client's does.
type greeterClient struct {
	client   client.Client
	selector selector.Selector
}

// newGreeterClient returns a client for reg. The default selector,
// selector.DefaultSelector, is shared by the process and reads mdns, so
// the test sets its own.
func newGreeterClient(t *testing.T, reg registry.Registry) *greeterClient {
	sel := selector.NewSelector(selector.Registry(reg))
	c := client.NewClient(
		client.Selector(sel),
		client.Registry(reg),
		client.Transport(transport.NewHTTPTransport()),
		client.Broker(broker.NewBroker(broker.Registry(reg), broker.Addrs("127.0.0.1:0"))),
		// NOTE: go-micro v4.11.0's http transport sometimes hangs a call on
		// a pooled connection until its timeout, with the server waiting
		// for a request (seen under the race detector). Pool size 0 gives
		// every call a new loopback connection.
		client.PoolSize(0),
		client.Retries(0),
		client.RequestTimeout(callTimeout),
	)
	t.Cleanup(func() { sel.Close() })
	return &greeterClient{client: c, selector: sel}
}

// call makes n calls of Greeter.Hello and fails the test on any error.
func (c *greeterClient) call(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		var rsp HelloResponse
		req := c.client.NewRequest(serviceName, endpoint, &HelloRequest{Name: "e2e"})
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		err := c.client.Call(ctx, req, &rsp)
		cancel()
		if err != nil {
			t.Fatalf("call %d of %s: %v", i+1, endpoint, err)
		}
	}
}

// selects reports whether the client's selector contains node id. It
// reads the selector's cache through a filter and makes no call.
func (c *greeterClient) selects(t *testing.T, id string) bool {
	t.Helper()
	found := false
	_, err := c.selector.Select(serviceName, selector.WithFilter(func(services []*registry.Service) []*registry.Service {
		for _, svc := range services {
			for _, n := range svc.Nodes {
				found = found || n.Id == id
			}
		}
		return services
	}))
	if err != nil {
		t.Fatalf("reading the client's selector: %v", err)
	}
	return found
}

// waitForNode returns the service of node id as reg returns it, with that
// node only, once reg has it.
func waitForNode(t *testing.T, reg registry.Registry, name, id string) *registry.Service {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		services, _ := reg.GetService(name)
		for _, svc := range services {
			for _, n := range svc.Nodes {
				if n.Id == id {
					return &registry.Service{Name: svc.Name, Version: svc.Version, Metadata: svc.Metadata, Endpoints: svc.Endpoints, Nodes: []*registry.Node{n}}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s of service %s is not in the registry after %v", id, name, waitTimeout)
		}
		time.Sleep(pollInterval)
	}
}

// inject registers svc through the plain registry reg, as an attacker with
// write access to the backend does, and removes it at cleanup.
func inject(t *testing.T, reg registry.Registry, svc *registry.Service) {
	t.Helper()
	if err := reg.Register(svc, registry.RegisterTTL(rogueTTL)); err != nil {
		t.Fatalf("registering rogue node %s: %v", svc.Nodes[0].Id, err)
	}
	t.Cleanup(func() {
		if err := reg.Deregister(svc); err != nil {
			t.Errorf("removing rogue node %s: %v", svc.Nodes[0].Id, err)
		}
	})
}

// injectUntil registers svc through reg and waits until seen reports true.
// When a watcher misses the write, the record is removed and written
// again, which gives watchers a new result.
func injectUntil(t *testing.T, reg registry.Registry, svc *registry.Service, seen func() bool) {
	t.Helper()
	inject(t, reg, svc)

	start := time.Now()
	lastWrite := start
	for !seen() {
		if time.Since(start) > waitTimeout {
			t.Fatalf("rogue node %s did not reach the client in a watch result within %v", svc.Nodes[0].Id, waitTimeout)
		}
		if time.Since(lastWrite) > rewriteAfter {
			// The etcd plugin and the memory registry skip a registration
			// of an unchanged node, so the record is removed first. The
			// pause keeps the two writes apart: the etcd plugin returns only
			// the first event of a watch response.
			if err := reg.Deregister(svc); err != nil {
				t.Fatalf("removing rogue node %s: %v", svc.Nodes[0].Id, err)
			}
			time.Sleep(100 * time.Millisecond)
			if err := reg.Register(svc, registry.RegisterTTL(rogueTTL)); err != nil {
				t.Fatalf("registering rogue node %s again: %v", svc.Nodes[0].Id, err)
			}
			lastWrite = time.Now()
			t.Logf("rogue node %s not seen after %v; wrote it again", svc.Nodes[0].Id, rewriteAfter)
		}
		time.Sleep(pollInterval)
	}
}

// waitFor polls cond until it is true, and fails the test with what after
// waitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(pollInterval)
	}
}

// plainMetadata returns md without signet's keys, as a rogue node that
// imitates an rpc server carries it.
func plainMetadata(md map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range md {
		if !record.IsOwnKey(k) {
			out[k] = v
		}
	}
	return out
}
