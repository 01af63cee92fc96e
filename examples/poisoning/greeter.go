package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go-micro.dev/v4/broker"
	"go-micro.dev/v4/client"
	"go-micro.dev/v4/registry"
	"go-micro.dev/v4/selector"
	"go-micro.dev/v4/server"
	"go-micro.dev/v4/transport"
)

const (
	serviceName = "greeter"
	endpoint    = "Greeter.Hello"

	// rogueReply is the rogue server's reply.
	rogueReply = "rogue"

	// callTimeout bounds each call.
	callTimeout = 3 * time.Second
)

// HelloRequest is the request of Greeter.Hello.
type HelloRequest struct {
	Name string `json:"name"`
}

// HelloResponse is the response of Greeter.Hello.
type HelloResponse struct {
	Server string `json:"server"`
}

// Greeter is the handler of the greeter service. The type name is the
// first part of the endpoint name, Greeter.Hello.
type Greeter struct {
	reply string
	calls atomic.Int64
}

// Hello replies with the name of the server that runs the handler.
func (g *Greeter) Hello(_ context.Context, _ *HelloRequest, rsp *HelloResponse) error {
	g.calls.Add(1)
	rsp.Server = g.reply
	return nil
}

// greeterServer is a running go-micro rpc server with a [Greeter].
type greeterServer struct {
	server  server.Server
	handler *Greeter

	// nodeID is the id of the node the server registers.
	nodeID string
}

// startGreeter starts a go-micro rpc server named greeter on 127.0.0.1 that
// registers through reg and replies with reply, or with its node id when
// reply is empty.
func startGreeter(reg registry.Registry, reply string) (*greeterServer, error) {
	// Every server needs its own id: the default, server.DefaultId, is one
	// value per process, and two servers with it would share a node id.
	id := uuid.New().String()
	nodeID := serviceName + "-" + id
	if reply == "" {
		reply = nodeID
	}

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
		return nil, fmt.Errorf("adding the Greeter handler: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("starting the greeter server: %w", err)
	}
	return &greeterServer{server: srv, handler: handler, nodeID: nodeID}, nil
}

// address returns the address the server listens on.
func (g *greeterServer) address() string { return g.server.Options().Address }

// stop deregisters the server and stops it.
func (g *greeterServer) stop() error { return g.server.Stop() }

// greeterClient is a go-micro rpc client whose selector reads one registry
// through go-micro's registry cache, as the default client does.
type greeterClient struct {
	client   client.Client
	selector selector.Selector
}

// newGreeterClient returns a client that discovers the greeter through reg.
// The selector is set explicitly: the default one, selector.DefaultSelector,
// is shared by every client in the process and reads the mdns registry.
func newGreeterClient(reg registry.Registry) *greeterClient {
	sel := selector.NewSelector(selector.Registry(reg))
	c := client.NewClient(
		client.Selector(sel),
		client.Registry(reg),
		client.Transport(transport.NewHTTPTransport()),
		client.Broker(broker.NewBroker(broker.Registry(reg), broker.Addrs("127.0.0.1:0"))),
		// NOTE: go-micro v4.11.0's http transport sometimes hangs a call on a
		// pooled connection until its timeout, with the server waiting for a
		// request (seen under the race detector). Pool size 0 gives every
		// call a new loopback connection.
		client.PoolSize(0),
		// One attempt per call, so that each call counts once.
		client.Retries(0),
		client.RequestTimeout(callTimeout),
	)
	return &greeterClient{client: c, selector: sel}
}

// tally counts which server served a client's calls.
type tally struct {
	genuine, rogue, failed int
	firstError             error
}

func (t tally) String() string {
	s := fmt.Sprintf("%d rogue, %d genuine, %d failed", t.rogue, t.genuine, t.failed)
	if t.firstError != nil {
		s += fmt.Sprintf(" (first error: %v)", t.firstError)
	}
	return s
}

// call makes n calls of Greeter.Hello and adds them to t. A reply other
// than genuineReply or rogueReply counts as failed.
func (c *greeterClient) call(ctx context.Context, n int, genuineReply string, t *tally) {
	for i := 0; i < n; i++ {
		var rsp HelloResponse
		req := c.client.NewRequest(serviceName, endpoint, &HelloRequest{Name: "demo"})
		callCtx, cancel := context.WithTimeout(ctx, callTimeout)
		err := c.client.Call(callCtx, req, &rsp)
		cancel()

		switch {
		case err != nil:
			t.failed++
			if t.firstError == nil {
				t.firstError = err
			}
		case rsp.Server == rogueReply:
			t.rogue++
		case rsp.Server == genuineReply:
			t.genuine++
		default:
			t.failed++
			if t.firstError == nil {
				t.firstError = fmt.Errorf("unexpected response %q", rsp.Server)
			}
		}
	}
}

// nodeIDs returns the ids of the greeter nodes in the client's selector,
// read through a selector filter so that no call is made. It does a lookup
// only when the selector's cache has no greeter nodes yet.
func (c *greeterClient) nodeIDs() (map[string]bool, error) {
	ids := map[string]bool{}
	_, err := c.selector.Select(serviceName, selector.WithFilter(func(services []*registry.Service) []*registry.Service {
		for _, svc := range services {
			for _, n := range svc.Nodes {
				ids[n.Id] = true
			}
		}
		return services
	}))
	return ids, err
}

// close stops the selector's cache and its watcher.
func (c *greeterClient) close() error { return c.selector.Close() }
