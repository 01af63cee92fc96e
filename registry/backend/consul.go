package backend

import (
	"github.com/go-micro/plugins/v4/registry/consul"
	"github.com/hashicorp/consul/api"
	"go-micro.dev/v4/registry"
)

// newConsul builds the go-micro consul registry (plugin v1.2.1).
//
// The token goes into the api.Config passed with consul.Config, which the
// plugin uses as its base configuration; the consul API client then sends
// it as X-Consul-Token with every request, watches included. The plugin
// sets Scheme to https and replaces the HTTP transport with one built from
// registry.TLSConfig whenever Secure or TLSConfig is set, so the TLS
// configuration is passed through registry.TLSConfig and never through
// api.Config.TLSConfig, which the plugin would ignore.
//
// When the token is empty, the consul API client takes CONSUL_HTTP_TOKEN
// from the process environment, as the consul CLI does.
//
// NOTE: with several addresses the plugin keeps the first one that
// answers /v1/agent/host, which needs operator:read. With a token that
// lacks it every probe fails, and the plugin uses the last address.
func newConsul(cfg Config) (registry.Registry, error) {
	if err := rejectUnused(cfg, Consul, EnvEtcdUsername, EnvEtcdPassword, EnvKubernetesNamespace, EnvTimeout); err != nil {
		return nil, err
	}

	endpoints, scheme, err := parseHostPorts(Consul, cfg.Addresses)
	if err != nil {
		return nil, err
	}
	tlsConfig, err := clientTLS(cfg, Consul, scheme)
	if err != nil {
		return nil, err
	}

	if tlsConfig == nil {
		warnPlaintext(cfg.Logger, Consul, endpoints, cfg.ConsulToken != "")
	}

	addrs := hostPorts(endpoints)
	apiConfig := &api.Config{
		Address: addrs[0],
		Scheme:  "http",
		Token:   cfg.ConsulToken,
	}
	if tlsConfig != nil {
		apiConfig.Scheme = "https"
	}
	opts := []registry.Option{registry.Addrs(addrs...), consul.Config(apiConfig)}
	opts = append(opts, tlsOptions(tlsConfig)...)

	r := consul.NewRegistry(opts...)
	if err := checkVerifies(r); err != nil {
		return nil, err
	}
	return r, nil
}
