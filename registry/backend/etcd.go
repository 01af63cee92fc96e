package backend

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/go-micro/plugins/v4/registry/etcd"
	"go-micro.dev/v4/registry"
	"go.uber.org/zap"
)

// newEtcd builds the go-micro etcd registry (plugin v1.2.0).
//
// etcd.NewRegistry reads MICRO_REGISTRY_ADDRESS, ETCD_USERNAME and
// ETCD_PASSWORD from the process environment and applies them after the
// caller's options. It passes the address variable as one unsplit string,
// so a comma-separated list or an https:// address becomes an address
// that the plugin drops in favour of its default 127.0.0.1:2379. It also
// discards the error of building its etcd client and keeps a nil client,
// which panics at the first call.
//
// newEtcd therefore builds the registry in two steps. NewRegistry gets an
// empty zap configuration, so that building its etcd client fails before
// any connection (clientv3 builds its logger first, and zap rejects a
// configuration without an encoder). Init then applies the real options
// over the environment's, builds the client, and returns its error: a
// wrong password or an unverifiable certificate when a user name is set.
func newEtcd(cfg Config) (registry.Registry, error) {
	if err := rejectUnused(cfg, Etcd, EnvConsulToken, EnvKubernetesNamespace); err != nil {
		return nil, err
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("backend: %s is %v; give a positive duration such as \"10s\", or leave it unset for the default of 5s", EnvTimeout, cfg.Timeout)
	}
	if (cfg.EtcdUsername == "") != (cfg.EtcdPassword == "") {
		return nil, fmt.Errorf("backend: only one of %s and %s is set; etcd authentication needs both, so set both or neither", EnvEtcdUsername, EnvEtcdPassword)
	}

	endpoints, scheme, err := parseHostPorts(Etcd, cfg.Addresses)
	if err != nil {
		return nil, err
	}
	tlsConfig, err := clientTLS(cfg, Etcd, scheme)
	if err != nil {
		return nil, err
	}

	if tlsConfig == nil {
		warnPlaintext(cfg.Logger, Etcd, endpoints, cfg.EtcdPassword != "")
	}

	addrs := hostPorts(endpoints)
	// Auth is passed even when both are empty, so that ETCD_USERNAME and
	// ETCD_PASSWORD in the process environment do not apply.
	opts := []registry.Option{registry.Addrs(addrs...), etcd.Auth(cfg.EtcdUsername, cfg.EtcdPassword)}
	opts = append(opts, tlsOptions(tlsConfig)...)
	if cfg.Timeout > 0 {
		opts = append(opts, registry.Timeout(cfg.Timeout))
	}

	r := etcd.NewRegistry(append(opts, etcd.LogConfig(&zap.Config{}))...)
	// A nil *zap.Config makes the plugin use clientv3's default logger.
	if err := r.Init(append(opts, etcd.LogConfig(nil))...); err != nil {
		msg := fmt.Sprintf("backend: etcd at %v: %v", addrs, err)
		if errors.Is(err, context.DeadlineExceeded) {
			msg += "; " + probeServer(addrs[0], tlsConfig)
		}
		return nil, fmt.Errorf("%s (check %s, the TLS variables, and %s and %s)", msg, EnvAddress, EnvEtcdUsername, EnvEtcdPassword)
	}

	if got := r.Options().Addrs; !slices.Equal(got, addrs) {
		return nil, fmt.Errorf("backend: the etcd registry ended up with addresses %v instead of %v; the plugin has changed how it applies options, so pin github.com/go-micro/plugins/v4/registry/etcd at v1.2.0", got, addrs)
	}
	if err := checkVerifies(r); err != nil {
		return nil, err
	}
	return r, nil
}
