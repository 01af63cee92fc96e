package backend

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-micro/plugins/v4/registry/kubernetes"
	"go-micro.dev/v4/logger"
	"go-micro.dev/v4/registry"
)

// serviceAccountDir is the directory of the in-cluster credentials. The
// plugin reads this fixed path, and tests point the checks elsewhere.
var serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// hostNamespace is the namespace the kubernetes plugin uses when it is
// given an address.
const hostNamespace = "default"

// newKubernetes builds the go-micro kubernetes registry (plugin v1.1.2),
// which keeps services in pod annotations.
//
// The plugin has two modes, and neither takes a TLS configuration, a
// token or a namespace:
//
//   - With an address, it sends every request to that URL with no
//     credentials and with certificate verification turned off
//     (InsecureSkipVerify), in namespace "default". Anyone on the path to
//     an https:// API server can impersonate it. The safe use of this
//     mode is an http:// address of `kubectl proxy` on loopback, which
//     authenticates to the API server and verifies it.
//   - Without an address, it runs in-cluster: it reads the service
//     account token, namespace and ca.crt under serviceAccountDir and
//     verifies the API server at KUBERNETES_SERVICE_HOST with that CA.
//     The plugin ends the process (logger.Fatal) when those files are
//     missing, so newKubernetes checks for them first and returns an
//     error instead.
//
// signet's registry.InsecureReason reports every kubernetes registry as
// skipping verification, which is true of the address mode but not of the
// in-cluster mode.
func newKubernetes(cfg Config) (registry.Registry, error) {
	if err := rejectUnused(cfg, Kubernetes, EnvConsulToken, EnvEtcdUsername, EnvEtcdPassword, EnvTimeout); err != nil {
		return nil, err
	}
	if cfg.tlsRequested() {
		return nil, fmt.Errorf("backend: %s is set, but the kubernetes plugin takes no TLS configuration: with %s it skips certificate verification, and in-cluster it verifies with the service account's ca.crt; unset the TLS variables",
			strings.Join(cfg.setFields(EnvTLSCAFile, EnvTLSCertFile, EnvTLSKeyFile, EnvTLSServerName), ", "), EnvAddress)
	}

	if len(cfg.Addresses) == 0 {
		return newKubernetesInCluster(cfg)
	}

	host, err := parseKubernetesURL(cfg.Addresses)
	if err != nil {
		return nil, err
	}
	if cfg.KubernetesNamespace != "" && cfg.KubernetesNamespace != hostNamespace {
		return nil, fmt.Errorf("backend: %s is %q, but the kubernetes plugin always uses namespace %q when %s is set; unset %s or set it to %q",
			EnvKubernetesNamespace, cfg.KubernetesNamespace, hostNamespace, EnvAddress, EnvKubernetesNamespace, hostNamespace)
	}

	if message := kubernetesWarning(host); message != "" {
		cfg.Logger.Fields(map[string]any{"registry": Kubernetes, "address": host}).Log(logger.WarnLevel, message)
	}
	return kubernetes.NewRegistry(registry.Addrs(host)), nil
}

func newKubernetesInCluster(cfg Config) (registry.Registry, error) {
	if os.Getenv("KUBERNETES_SERVICE_HOST") == "" || os.Getenv("KUBERNETES_SERVICE_PORT") == "" {
		return nil, fmt.Errorf("backend: %s is not set and KUBERNETES_SERVICE_HOST or KUBERNETES_SERVICE_PORT is missing, so this is not a pod; set %s to the API server URL, for example %s=http://127.0.0.1:8001 for `kubectl proxy`",
			EnvAddress, EnvAddress, EnvAddress)
	}
	for _, name := range []string{"token", "ca.crt", "namespace"} {
		path := filepath.Join(serviceAccountDir, name)
		if info, err := os.Stat(path); err != nil || !info.Mode().IsRegular() {
			return nil, fmt.Errorf("backend: %s is not set, so the kubernetes plugin runs in-cluster, but the service account file %s is missing; mount the pod's service account token or set %s",
				EnvAddress, path, EnvAddress)
		}
	}

	if cfg.KubernetesNamespace != "" {
		data, err := os.ReadFile(filepath.Join(serviceAccountDir, "namespace"))
		if err != nil {
			return nil, fmt.Errorf("backend: %s: cannot read the service account namespace: %w", EnvKubernetesNamespace, err)
		}
		if ns := string(data); ns != cfg.KubernetesNamespace {
			return nil, fmt.Errorf("backend: %s is %q, but the kubernetes plugin uses the service account's namespace %q in-cluster; unset %s or run the pod in namespace %q",
				EnvKubernetesNamespace, cfg.KubernetesNamespace, ns, EnvKubernetesNamespace, cfg.KubernetesNamespace)
		}
	}
	return kubernetes.NewRegistry(), nil
}

// kubernetesWarning returns the warning for the plugin's address mode, or
// "" for http:// on loopback, the address of a local `kubectl proxy`.
func kubernetesWarning(host string) string {
	u, err := url.Parse(host)
	if err != nil {
		return ""
	}
	if u.Scheme == "http" {
		if isLoopback(u.Host) {
			return ""
		}
		return "backend: the kubernetes plugin sends requests to this address without credentials over plaintext HTTP, so anyone on the network path can read and change them; " +
			"use `kubectl proxy` on loopback, or leave " + EnvAddress + " unset to run in-cluster with the service account"
	}
	return "backend: the kubernetes plugin sends requests to this address without credentials and without verifying the server's certificate, so anyone on the network path can impersonate the API server; " +
		"use an http:// address of `kubectl proxy` on loopback, or leave " + EnvAddress + " unset to run in-cluster with the service account"
}
