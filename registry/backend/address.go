package backend

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// endpoint is one parsed registry address.
type endpoint struct {
	scheme   string // "http", "https", or "" when the address had none
	hostPort string // "host:port", as the etcd and consul plugins take it
}

// parseHostPorts parses etcd or Consul addresses, each "host:port" or
// "http://host:port" or "https://host:port", and returns them with the
// scheme they share ("" when none has one).
//
// The plugins must receive bare "host:port" values: both drop an address
// that net.SplitHostPort rejects, "https://..." included, and then fall
// back to their built-in default address (127.0.0.1:2379 for etcd) without
// an error. A port is required because both plugins otherwise add their
// default port.
func parseHostPorts(kind string, addresses []string) ([]endpoint, string, error) {
	if len(addresses) == 0 {
		return nil, "", fmt.Errorf("backend: %s (Config.Addresses) is not set; the %s registry has no default address, so set it to the comma-separated host:port list of the %s servers, for example %s=127.0.0.1:%s",
			EnvAddress, kind, kind, EnvAddress, examplePort(kind))
	}

	var endpoints []endpoint
	scheme := ""
	for i, raw := range addresses {
		ep, err := parseHostPort(raw)
		if err != nil {
			return nil, "", fmt.Errorf("backend: %s item %d %q: %w; give host:port, for example 127.0.0.1:%s", EnvAddress, i+1, redactAddress(raw), err, examplePort(kind))
		}
		if i > 0 && ep.scheme != scheme {
			return nil, "", fmt.Errorf("backend: %s mixes schemes (%q and %q); give every %s server the same scheme, or none", EnvAddress, schemeName(scheme), schemeName(ep.scheme), kind)
		}
		scheme = ep.scheme
		endpoints = append(endpoints, ep)
	}
	return endpoints, scheme, nil
}

func parseHostPort(raw string) (endpoint, error) {
	raw = strings.TrimSpace(raw)
	ep := endpoint{hostPort: raw}
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil {
			return endpoint{}, fmt.Errorf("not a valid URL: %v", err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return endpoint{}, fmt.Errorf("scheme %q is not supported, only http and https", u.Scheme)
		}
		if u.User != nil {
			return endpoint{}, fmt.Errorf("credentials in the address are not supported; use the registry's credential variables")
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return endpoint{}, fmt.Errorf("a path, query or fragment is not supported")
		}
		ep = endpoint{scheme: u.Scheme, hostPort: u.Host}
	}

	host, port, err := net.SplitHostPort(ep.hostPort)
	if err != nil {
		return endpoint{}, fmt.Errorf("not host:port: %v", err)
	}
	if host == "" {
		return endpoint{}, fmt.Errorf("the host is empty")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return endpoint{}, fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return ep, nil
}

// parseKubernetesURL parses the kubernetes API server address, which the
// plugin uses as the prefix of every request URL and so needs its scheme.
// The plugin uses only the first address, so more than one is an error.
func parseKubernetesURL(addresses []string) (string, error) {
	if len(addresses) > 1 {
		return "", fmt.Errorf("backend: %s has %d addresses, but the kubernetes plugin uses only the first; give the one API server URL", EnvAddress, len(addresses))
	}

	raw := strings.TrimSpace(addresses[0])
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("backend: %s %q is not an http:// or https:// URL; give the API server URL, for example %s=http://127.0.0.1:8001 for `kubectl proxy`", EnvAddress, redactAddress(raw), EnvAddress)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("backend: %s %q has credentials, a query or a fragment, which the kubernetes plugin does not support; give scheme://host:port", EnvAddress, u.Redacted())
	}
	return strings.TrimSuffix(raw, "/"), nil
}

// redactAddress returns raw with the password of a URL's user information
// replaced, so that errors never contain it.
func redactAddress(raw string) string {
	if u, err := url.Parse(strings.TrimSpace(raw)); err == nil && u.User != nil {
		return u.Redacted()
	}
	if at := strings.LastIndex(raw, "@"); at >= 0 {
		return "[redacted]" + raw[at:]
	}
	return raw
}

func examplePort(kind string) string {
	if kind == Consul {
		return "8500"
	}
	return "2379"
}

func schemeName(scheme string) string {
	if scheme == "" {
		return "none"
	}
	return scheme + "://"
}

// hostPorts returns the bare host:port of each endpoint.
func hostPorts(endpoints []endpoint) []string {
	out := make([]string, len(endpoints))
	for i, ep := range endpoints {
		out[i] = ep.hostPort
	}
	return out
}
