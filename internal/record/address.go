package record

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// CanonicalAddress returns the form of a node address that signatures
// cover. Backends rewrite addresses: Consul rebuilds them from the service
// address and port, so "10.0.0.1" comes back as "10.0.0.1:0" and
// "[0:0::1]:80" as "[::1]:80". The canonical form is host:port with a port
// always present (0 when the address has none), IP addresses in the
// shortest form that net/netip prints, and host names in lower case.
func CanonicalAddress(address string) (string, error) {
	host, port, err := splitAddress(address)
	if err != nil {
		return "", err
	}

	if ip, err := netip.ParseAddr(host); err == nil {
		if err := checkZone(ip.Zone()); err != nil {
			return "", fmt.Errorf("invalid node address %q: %w", address, err)
		}
		host = ip.String()
	} else if err := checkHostName(host); err != nil {
		return "", fmt.Errorf("invalid node address %q: %w", address, err)
	} else {
		host = strings.ToLower(host)
	}

	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", fmt.Errorf("invalid node address %q: port %q is not a number from 0 to 65535", address, port)
	}
	return net.JoinHostPort(host, strconv.FormatUint(n, 10)), nil
}

func splitAddress(address string) (host, port string, err error) {
	if address == "" {
		return "", "", fmt.Errorf("invalid node address: empty; set the server's advertised address")
	}

	if ip, err := netip.ParseAddr(address); err == nil {
		return ip.String(), "0", nil
	}
	if strings.HasPrefix(address, "[") && strings.HasSuffix(address, "]") {
		return address[1 : len(address)-1], "0", nil
	}
	if !strings.Contains(address, ":") {
		return address, "0", nil
	}

	host, port, err = net.SplitHostPort(address)
	if err != nil {
		return "", "", fmt.Errorf("invalid node address %q: %w", address, err)
	}
	if host == "" {
		return "", "", fmt.Errorf("invalid node address %q: no host; set the server's advertised address so that the record names a reachable host", address)
	}
	if port == "" {
		port = "0"
	}
	return host, port, nil
}

// checkZone accepts IPv6 zones made of the characters of interface
// names: letters, digits, '-', '_' and '.'. net/netip accepts any zone,
// "]" and white space included, which would make the canonical form
// unparseable.
func checkZone(zone string) error {
	for i := 0; i < len(zone); i++ {
		c := zone[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.':
		default:
			return fmt.Errorf("IPv6 zone %q contains %q, which is not allowed in an interface name", zone, c)
		}
	}
	return nil
}

// checkHostName accepts DNS names in the loose form service registries
// store: letters, digits, '-', '_' and '.', from 1 to 253 bytes.
func checkHostName(host string) error {
	if host == "" {
		return errors.New("no host; set the server's advertised address so that the record names a reachable host")
	}
	if len(host) > 253 {
		return fmt.Errorf("host name is %d bytes, longer than 253", len(host))
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.':
		default:
			return fmt.Errorf("host %q contains %q, which is not allowed in a host name", host, c)
		}
	}
	return nil
}
