package backend

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"

	"go-micro.dev/v4/logger"
	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/envconf"
	signetregistry "github.com/signet-micro/signet/registry"
)

// FromEnv builds the inner registry from the environment variables listed
// in the package documentation. It is [ConfigFromLookup] with
// os.LookupEnv followed by [New].
func FromEnv() (registry.Registry, error) {
	cfg, err := ConfigFromLookup(envconf.Env)
	if err != nil {
		return nil, err
	}
	return New(cfg)
}

// New validates cfg and builds the go-micro registry it describes. It
// rejects mdns, a missing registry kind or address, settings the chosen
// backend would ignore, and TLS settings with an http:// address. For
// etcd and Consul it passes registry.Secure(true) together with a
// registry.TLSConfig that verifies the server whenever TLS is in use,
// and returns an error if the built registry would still skip
// certificate verification.
//
// New contacts the server for Consul (the plugin probes each address) and
// for etcd with a user name (the client authenticates at construction, so
// a wrong password or an unverifiable certificate fails here). Without
// credentials an etcd connection error shows at the first call.
func New(cfg Config) (registry.Registry, error) {
	if cfg.Logger == nil {
		cfg.Logger = logger.DefaultLogger
	}

	switch kind := strings.ToLower(strings.TrimSpace(cfg.Registry)); kind {
	case "":
		return nil, fmt.Errorf("backend: %s (Config.Registry) is not set; set it to %s. There is no default, so a service never registers with a backend it was not configured for", EnvRegistry, kinds)
	case "mdns":
		return nil, fmt.Errorf("backend: %s=mdns is rejected: mdns multicasts every registration on every network interface and has no authentication or TLS, so it cannot be secured and anyone on the local network can read and poison it; use etcd or consul with TLS, or memory for a single process", EnvRegistry)
	case Memory:
		return newMemory(cfg)
	case Etcd:
		return newEtcd(cfg)
	case Consul:
		return newConsul(cfg)
	case Kubernetes:
		return newKubernetes(cfg)
	default:
		return nil, fmt.Errorf("backend: %s is %q, which is not supported; set it to %s", EnvRegistry, cfg.Registry, kinds)
	}
}

// rejectUnused returns an error when any of the named variables is set,
// because the backend kind would ignore it.
func rejectUnused(cfg Config, kind string, names ...string) error {
	set := cfg.setFields(names...)
	switch {
	case len(set) == 1:
		return fmt.Errorf("backend: %s is set, but the %s registry does not use it; unset it or choose another %s", set[0], kind, EnvRegistry)
	case len(set) > 1:
		return fmt.Errorf("backend: %s are set, but the %s registry does not use them; unset them or choose another %s", strings.Join(set, ", "), kind, EnvRegistry)
	}
	return nil
}

// clientTLS returns the TLS configuration for etcd or Consul endpoints
// with the given scheme, or nil for plaintext. TLS is used when any TLS
// field is set or the addresses start with https://. An http:// address
// with TLS fields is an error, because the fields would suggest a
// protection that the connection does not have.
func clientTLS(cfg Config, kind, scheme string) (*tls.Config, error) {
	if scheme == "http" && cfg.tlsRequested() {
		return nil, fmt.Errorf("backend: %s starts with http:// but %s is set; TLS settings with a plaintext address would leave the %s connection unencrypted, so use https:// addresses or no scheme",
			EnvAddress, strings.Join(cfg.setFields(EnvTLSCAFile, EnvTLSCertFile, EnvTLSKeyFile, EnvTLSServerName), ", "), kind)
	}
	if !cfg.tlsRequested() && scheme != "https" {
		return nil, nil
	}
	return newTLSConfig(cfg)
}

// tlsOptions returns registry.Secure(true) and registry.TLSConfig(config)
// together, so that no plugin builds its own configuration that skips
// verification, or nothing when config is nil.
func tlsOptions(config *tls.Config) []registry.Option {
	if config == nil {
		return nil
	}
	return []registry.Option{registry.Secure(true), registry.TLSConfig(config)}
}

// checkVerifies returns an error when r, an etcd or Consul registry, would
// connect without verifying its server's certificate: registry.Secure(true)
// without a TLSConfig makes both plugins build one with
// InsecureSkipVerify set.
func checkVerifies(r registry.Registry) error {
	o := r.Options()
	switch {
	case o.Secure && o.TLSConfig == nil:
		return fmt.Errorf("backend: the %s registry has registry.Secure(true) but no registry.TLSConfig, so the plugin would skip certificate verification; set %s to the CA of the %s server", r.String(), EnvTLSCAFile, r.String())
	case o.TLSConfig != nil && o.TLSConfig.InsecureSkipVerify:
		return fmt.Errorf("backend: the %s registry's TLS config skips certificate verification; set %s to the CA of the %s server", r.String(), EnvTLSCAFile, r.String())
	}
	if reason := signetregistry.InsecureReason(r); reason != "" {
		return fmt.Errorf("backend: the %s registry would not verify its server: %s; set %s to the CA of the %s server", r.String(), reason, EnvTLSCAFile, r.String())
	}
	return nil
}

// warnPlaintext logs a warning when a plaintext etcd or Consul connection
// goes to a host other than loopback, where anyone on the network path can
// read and change the traffic, credentials included.
func warnPlaintext(log logger.Logger, kind string, endpoints []endpoint, sendsCredentials bool) {
	var remote []string
	for _, ep := range endpoints {
		if !isLoopback(ep.hostPort) {
			remote = append(remote, ep.hostPort)
		}
	}
	if len(remote) == 0 {
		return
	}

	message := "backend: the " + kind + " connection is plaintext, so anyone on the network path can read and change registry traffic; set " + EnvTLSCAFile + " or use https:// addresses"
	if sendsCredentials {
		message = "backend: the " + kind + " credentials and registry traffic go over plaintext, so anyone on the network path can read them; set " + EnvTLSCAFile + " or use https:// addresses"
	}
	log.Fields(map[string]any{"registry": kind, "addresses": strings.Join(remote, ",")}).Log(logger.WarnLevel, message)
}

// isLoopback reports whether hostPort, with or without a port, names
// localhost or a loopback IP.
func isLoopback(hostPort string) bool {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		host = hostPort
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
