package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/go-micro/plugins/v4/registry/etcd"
	"go-micro.dev/v4/registry"
	util "go-micro.dev/v4/util/registry"
	"go.uber.org/zap"

	"github.com/signet-micro/signet/registry/backend"
)

// registryTimeout bounds each call of the etcd and Consul plugins.
const registryTimeout = 5 * time.Second

// registryBackend is the registry backend that every participant of the demo uses.
type registryBackend struct {
	// description names the backend in the output.
	description string

	// connect returns a new client of the backend. Each participant gets
	// its own, as separate processes would have; the memory registry
	// exists once per process, so there every participant shares it.
	connect func() (registry.Registry, error)

	// close stops what openBackend started.
	close func()
}

// checkBackendFlags validates -registry, -address and -allow-remote.
func checkBackendFlags(cfg config) error {
	switch cfg.registry {
	case "memory":
		if cfg.address != "" {
			return fmt.Errorf("-address %q is set, but the memory registry lives in this process and has no address; drop -address or use -registry etcd", cfg.address)
		}
		return nil
	case "etcd":
	case "consul":
		if cfg.address == "" {
			return fmt.Errorf("-registry consul needs -address: the demo cannot run Consul in its own process; start a Consul dev agent on loopback and pass its HTTP address, for example -address 127.0.0.1:8500")
		}
	default:
		return fmt.Errorf("-registry %q is not etcd, memory or consul", cfg.registry)
	}

	if cfg.address == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(cfg.address)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("-address %q is not host:port, for example 127.0.0.1:2379", cfg.address)
	}
	if !cfg.allowRemote && !isLoopback(host) {
		return fmt.Errorf("-address %q is not a loopback address; the demo writes rogue records into the registry it is given, so point it only at a registry you own, and pass -allow-remote to confirm", cfg.address)
	}
	return nil
}

// isLoopback reports whether host is "localhost" or an IP address in
// 127.0.0.0/8 or ::1.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// openBackend starts or connects to the backend that cfg selects.
func openBackend(cfg config, errOut io.Writer) (*registryBackend, error) {
	// The etcd plugin appends MICRO_REGISTRY_ADDRESS to the addresses it is
	// given, and the later address wins, so a value left in the environment
	// would send the rogue records to that server instead.
	if v, ok := os.LookupEnv("MICRO_REGISTRY_ADDRESS"); ok && v != "" {
		fmt.Fprintf(errOut, "poisoning: ignoring MICRO_REGISTRY_ADDRESS=%q; the demo uses -address\n", v)
		os.Unsetenv("MICRO_REGISTRY_ADDRESS")
	}

	switch {
	case cfg.registry == "memory":
		shared := registry.NewMemoryRegistry()
		return &registryBackend{
			description: "go-micro memory registry in this process",
			connect:     func() (registry.Registry, error) { return memoryClient{shared}, nil },
			close:       func() {},
		}, nil

	case cfg.registry == "etcd" && cfg.address == "":
		// The embedded etcd has no users, and a client that sends the
		// ETCD_USERNAME credentials that the plugin reads would be rejected.
		os.Unsetenv("ETCD_USERNAME")
		os.Unsetenv("ETCD_PASSWORD")

		e, err := startEtcd(cfg.tempDir)
		if err != nil {
			return nil, err
		}
		return &registryBackend{
			description: fmt.Sprintf("embedded etcd at %s (data in %s, removed at exit)", e.address, cfg.tempDir),
			connect:     func() (registry.Registry, error) { return newEtcdClient(e.address), nil },
			close:       func() { e.stop() },
		}, nil

	default:
		// The user's own server: backend.New builds the client, with TLS
		// and credentials from the same variables as backend.FromEnv.
		bcfg, err := backend.ConfigFromLookup(os.LookupEnv)
		if err != nil {
			return nil, err
		}
		bcfg.Registry = cfg.registry
		bcfg.Addresses = []string{cfg.address}
		return &registryBackend{
			description: fmt.Sprintf("your %s at %s (the demo removes its records at exit)", cfg.registry, cfg.address),
			connect:     func() (registry.Registry, error) { return backend.New(bcfg) },
			close:       func() {},
		}, nil
	}
}

// newEtcdClient returns a go-micro etcd registry for address whose etcd
// client logs errors only.
func newEtcdClient(address string) registry.Registry {
	logConfig := zap.NewProductionConfig()
	logConfig.Level = zap.NewAtomicLevelAt(zap.ErrorLevel)
	return etcd.NewRegistry(registry.Addrs(address), registry.Timeout(registryTimeout), etcd.LogConfig(&logConfig))
}

// memoryClient is one participant's view of the shared memory registry,
// with its own copies of the services it registers and of watch results.
// The memory registry sends the *registry.Service given to Register to
// every watcher, and go-micro's registry cache appends nodes to the
// services of watch results, so without copies one participant's cache
// would change what the others read, while they read it. Clients of etcd
// or Consul decode their own copies.
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
