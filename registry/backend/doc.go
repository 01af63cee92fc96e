// Package backend builds the inner go-micro registry that signet wraps,
// from environment variables ([FromEnv]) or a [Config] ([New]), with TLS
// that verifies the server's certificate.
//
//	inner, err := backend.FromEnv()
//	if err != nil {
//		log.Fatal(err)
//	}
//	reg, err := registry.FromEnv(inner)
//
// There are no defaults that point at a server: MICRO_REGISTRY must be
// set, and etcd and Consul need MICRO_REGISTRY_ADDRESS. mdns is rejected
// because it multicasts on every interface and cannot be secured.
//
//	variable                              meaning
//	MICRO_REGISTRY                        memory, etcd, consul or kubernetes; no default
//	MICRO_REGISTRY_ADDRESS                comma-separated host:port (or http(s)://host:port) list;
//	                                      for kubernetes the API server URL; no default
//	MICRO_REGISTRY_TLS_CA_FILE            PEM CA certificates that verify the server; default: system roots
//	MICRO_REGISTRY_TLS_CERT_FILE          PEM client certificate; needs MICRO_REGISTRY_TLS_KEY_FILE
//	MICRO_REGISTRY_TLS_KEY_FILE           PEM client private key; needs MICRO_REGISTRY_TLS_CERT_FILE
//	MICRO_REGISTRY_TLS_SERVER_NAME        name the server certificate must carry; default: the address's host
//	MICRO_REGISTRY_CONSUL_TOKEN[_FILE]    Consul ACL token; default: none (the consul API client
//	                                      then takes CONSUL_HTTP_TOKEN)
//	MICRO_REGISTRY_ETCD_USERNAME[_FILE]   etcd user; needs the password
//	MICRO_REGISTRY_ETCD_PASSWORD[_FILE]   etcd password; needs the user
//	MICRO_REGISTRY_KUBERNETES_NAMESPACE   checked against the plugin's fixed namespace
//	MICRO_REGISTRY_TIMEOUT                etcd only: dial, authentication and request timeout,
//	                                      such as "10s"; default: the plugin's 5s
//
// Setting any TLS variable, or giving https:// addresses, turns TLS on for
// etcd and Consul. The TLS configuration always verifies the server
// (InsecureSkipVerify is false), requires TLS 1.2 or later, and is passed
// with registry.Secure(true), because both plugins build a configuration
// that skips verification when Secure is set without one. TLS variables
// with an http:// address are an error.
//
// The go-micro kubernetes plugin (v1.1.2) takes no TLS configuration:
// given an address it skips certificate verification and sends no
// credentials, which New logs as a warning. Leave the address unset to run
// in-cluster with the service account, or point it at `kubectl proxy` on
// loopback.
//
// The errors and log lines of this package never contain a secret, and
// [Config] prints secrets as "[redacted]". A secret from a _FILE variable is read once, when the
// configuration is read, because the plugins keep the value they were
// given.
package backend
