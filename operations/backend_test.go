package operations

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"go-micro.dev/v4/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/signet-micro/signet/internal/testserver"
	"github.com/signet-micro/signet/registry/backend"
)

// etcdKeyPrefix is where the go-micro etcd plugin (v1.2.0) stores nodes:
// one key per node, /micro/registry/<service>/<node id>.
const etcdKeyPrefix = "/micro/registry/"

// target is one registry server that the cases share, with plain go-micro
// registries for the nodes and clients, and direct access to what the
// server stores.
type target struct {
	name string

	// connect returns a new plain go-micro registry of the server, as a
	// separate process holds its own.
	connect func(t *testing.T) registry.Registry

	// stored returns the metadata of each node of service as the server
	// stores it, by node id, read without go-micro.
	stored func(t *testing.T, service string) map[string]map[string]string

	// deleteAll deletes every node of service directly in the server, as
	// anyone with write access to it can.
	deleteAll func(t *testing.T, service string)

	// fullResults is true when a watch result carries every node of a
	// service version (Consul), and false when it carries only the node
	// that changed (etcd).
	fullResults bool
}

// newInner builds a plain registry with backend.New, as the signet CLI
// and FromEnv users do.
func newInner(t *testing.T, cfg backend.Config) registry.Registry {
	t.Helper()
	cfg.Logger = discard
	r, err := backend.New(cfg)
	if err != nil {
		t.Fatalf("backend.New(%v): %v", cfg, err)
	}
	return r
}

func startEtcd(t *testing.T) *target {
	srv := testserver.StartEtcd(t, testserver.EtcdOptions{})
	cfg := srv.ClientConfig()
	cfg.Logger = zap.NewNop()
	client, err := clientv3.New(cfg)
	if err != nil {
		t.Fatalf("connecting to etcd at %v: %v", srv.Endpoints, err)
	}
	t.Cleanup(func() { client.Close() })

	return &target{
		name: "etcd",
		connect: func(t *testing.T) registry.Registry {
			return newInner(t, backend.Config{Registry: backend.Etcd, Addresses: srv.Endpoints})
		},
		stored: func(t *testing.T, service string) map[string]map[string]string {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := client.Get(ctx, etcdKeyPrefix+service+"/", clientv3.WithPrefix())
			if err != nil {
				t.Fatalf("reading the etcd keys of %s: %v", service, err)
			}
			nodes := map[string]map[string]string{}
			for _, kv := range resp.Kvs {
				var svc registry.Service
				if err := json.Unmarshal(kv.Value, &svc); err != nil {
					t.Fatalf("etcd key %s does not hold a go-micro service: %v", kv.Key, err)
				}
				for _, n := range svc.Nodes {
					nodes[n.Id] = n.Metadata
				}
			}
			return nodes
		},
		deleteAll: func(t *testing.T, service string) {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := client.Delete(ctx, etcdKeyPrefix+service+"/", clientv3.WithPrefix()); err != nil {
				t.Fatalf("deleting the etcd keys of %s: %v", service, err)
			}
		},
	}
}

func startConsul(t *testing.T) *target {
	// The consul API client falls back to CONSUL_HTTP_TOKEN.
	t.Setenv("CONSUL_HTTP_TOKEN", "")
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	client, err := api.NewClient(&api.Config{Address: srv.Addr, Scheme: "http"})
	if err != nil {
		t.Fatalf("connecting to Consul at %s: %v", srv.Addr, err)
	}

	catalog := func(t *testing.T, service string) []*api.CatalogService {
		t.Helper()
		entries, _, err := client.Catalog().Service(service, "", nil)
		if err != nil {
			t.Fatalf("reading the Consul catalog of %s: %v", service, err)
		}
		return entries
	}

	return &target{
		name: "consul",
		connect: func(t *testing.T) registry.Registry {
			return newInner(t, backend.Config{Registry: backend.Consul, Addresses: []string{srv.Addr}})
		},
		stored: func(t *testing.T, service string) map[string]map[string]string {
			t.Helper()
			nodes := map[string]map[string]string{}
			for _, e := range catalog(t, service) {
				nodes[e.ServiceID] = e.ServiceMeta
			}
			return nodes
		},
		deleteAll: func(t *testing.T, service string) {
			t.Helper()
			// Through the agent: a catalog deregistration would be undone
			// by the agent's next sync of the services it holds.
			for _, e := range catalog(t, service) {
				if err := client.Agent().ServiceDeregister(e.ServiceID); err != nil {
					t.Fatalf("deregistering Consul service instance %s: %v", e.ServiceID, err)
				}
			}
		},
		fullResults: true,
	}
}
