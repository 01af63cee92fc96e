package registry

import (
	"go-micro.dev/v4/logger"
	"go-micro.dev/v4/registry"
)

// InsecureReason returns why inner's transport to its backend skips
// certificate verification, or "" when nothing shows that it does.
//
// The go-micro consul and etcd plugins build a TLS configuration with
// InsecureSkipVerify set when registry.Secure(true) is given without a
// TLSConfig, and the kubernetes plugin skips verification when
// given an address (in-cluster, it verifies with the service account's CA).
// Anyone on the network path can then impersonate the
// registry and return whatever nodes it likes from every lookup.
func InsecureReason(inner registry.Registry) string {
	if inner == nil {
		return ""
	}

	o := inner.Options()
	switch {
	case o.TLSConfig != nil && o.TLSConfig.InsecureSkipVerify:
		return "its TLS config sets InsecureSkipVerify"
	case o.Secure && o.TLSConfig == nil && (inner.String() == "consul" || inner.String() == "etcd"):
		return "registry.Secure(true) without registry.TLSConfig makes the " + inner.String() + " plugin skip certificate verification"
	case inner.String() == "kubernetes" && len(o.Addrs) > 0:
		return "the go-micro kubernetes plugin skips certificate verification of an API server given by address; run it in-cluster, where it verifies with the service account's CA"
	}
	return ""
}

func warnInsecure(inner registry.Registry, l logger.Logger) {
	if reason := InsecureReason(inner); reason != "" {
		fix := "give it a TLS config with a CA (MICRO_REGISTRY_TLS_CA_FILE)"
		if inner.String() == "kubernetes" {
			fix = "run the service in-cluster without an address"
		}
		l.Fields(map[string]any{"registry": inner.String(), "problem": reason}).
			Log(logger.WarnLevel, "signet: the inner registry does not verify its server's certificate; "+fix)
	}
}
