package backend

import (
	"fmt"
	"strings"
	"time"

	"go-micro.dev/v4/logger"

	"github.com/signet-micro/signet/internal/envconf"
)

// Environment variables read by [FromEnv] and [ConfigFromLookup]. The
// secrets (the Consul token and the etcd user name and password) may
// instead be given as NAME_FILE, the path of a file that contains the
// value; setting both NAME and NAME_FILE is an error.
const (
	EnvRegistry            = "MICRO_REGISTRY"
	EnvAddress             = "MICRO_REGISTRY_ADDRESS"
	EnvTLSCAFile           = "MICRO_REGISTRY_TLS_CA_FILE"
	EnvTLSCertFile         = "MICRO_REGISTRY_TLS_CERT_FILE"
	EnvTLSKeyFile          = "MICRO_REGISTRY_TLS_KEY_FILE"
	EnvTLSServerName       = "MICRO_REGISTRY_TLS_SERVER_NAME"
	EnvConsulToken         = "MICRO_REGISTRY_CONSUL_TOKEN"
	EnvEtcdUsername        = "MICRO_REGISTRY_ETCD_USERNAME"
	EnvEtcdPassword        = "MICRO_REGISTRY_ETCD_PASSWORD"
	EnvKubernetesNamespace = "MICRO_REGISTRY_KUBERNETES_NAMESPACE"
	EnvTimeout             = "MICRO_REGISTRY_TIMEOUT"
)

// Registry kinds accepted in [Config.Registry] and MICRO_REGISTRY.
const (
	Memory     = "memory"
	Etcd       = "etcd"
	Consul     = "consul"
	Kubernetes = "kubernetes"
)

// kinds lists the accepted registry kinds for error messages.
const kinds = `"memory", "etcd", "consul" or "kubernetes"`

// Config selects and configures the inner go-micro registry. Each field
// has the environment variable of the same meaning; see the package
// documentation for the table. [New] validates the whole Config, so a
// Config built in code gets the same checks as one read from the
// environment.
//
// Config's String and GoString methods print "[redacted]" in place of
// ConsulToken and EtcdPassword, so a Config printed with %v or %#v does
// not leak them.
type Config struct {
	// Registry is the backend: "memory", "etcd", "consul" or
	// "kubernetes". It has no default.
	Registry string

	// Addresses contains the servers, each "host:port" or
	// "http(s)://host:port" for etcd and Consul, or the API server base
	// URL ("https://host:port") for kubernetes. It has no default.
	Addresses []string

	// TLSCAFile is the PEM file of the CA certificates that verify the
	// registry server. Empty means the system's roots, and is used only
	// when another TLS field is set or an address starts with https://.
	TLSCAFile string

	// TLSCertFile and TLSKeyFile are the PEM client certificate and its
	// private key, for servers that require client certificates. Set
	// both or neither.
	TLSCertFile string
	TLSKeyFile  string

	// TLSServerName is the name the server certificate must carry, when
	// it differs from the address's host.
	TLSServerName string

	// ConsulToken is the Consul ACL token sent with every request as
	// X-Consul-Token.
	ConsulToken string

	// EtcdUsername and EtcdPassword authenticate to etcd. Set both or
	// neither.
	EtcdUsername string
	EtcdPassword string

	// KubernetesNamespace is checked against the namespace the
	// kubernetes plugin uses, because the plugin cannot be given one:
	// "default" when an address is set, the service account's namespace
	// in a cluster.
	KubernetesNamespace string

	// Timeout bounds the etcd client's dial and authentication and each
	// etcd request (registry.Timeout). Zero means the plugin's default of
	// 5 s. Only etcd takes it, because the consul plugin would apply it to
	// every HTTP request, long-polling watches included, and the
	// kubernetes plugin ignores it.
	Timeout time.Duration

	// Logger receives the warnings New logs; nil means
	// logger.DefaultLogger. New logs no secret.
	Logger logger.Logger
}

// ConfigFromLookup reads a [Config] from the variables that lookup
// returns, with the signature of os.LookupEnv. It reads the files that
// the NAME_FILE variables name, and checks only what concerns single
// variables; [New] checks the combination.
func ConfigFromLookup(lookup func(string) (string, bool)) (Config, error) {
	env := envconf.Lookup(lookup)
	cfg := Config{
		Registry:            strings.ToLower(env.String(EnvRegistry, "")),
		Addresses:           env.List(EnvAddress, nil),
		TLSCAFile:           env.String(EnvTLSCAFile, ""),
		TLSCertFile:         env.String(EnvTLSCertFile, ""),
		TLSKeyFile:          env.String(EnvTLSKeyFile, ""),
		TLSServerName:       env.String(EnvTLSServerName, ""),
		KubernetesNamespace: env.String(EnvKubernetesNamespace, ""),
	}

	timeout, err := env.Duration(EnvTimeout, 0)
	if err != nil {
		return Config{}, fmt.Errorf("backend: %w", err)
	}
	cfg.Timeout = timeout

	secrets := []struct {
		name string
		dst  *string
	}{
		{EnvConsulToken, &cfg.ConsulToken},
		{EnvEtcdUsername, &cfg.EtcdUsername},
		{EnvEtcdPassword, &cfg.EtcdPassword},
	}
	for _, s := range secrets {
		value, err := readSecret(env, s.name)
		if err != nil {
			return Config{}, err
		}
		*s.dst = value
	}
	return cfg, nil
}

// readSecret returns NAME or the trimmed content of the file NAME_FILE
// names. Errors name the variable and never contain the value.
func readSecret(env envconf.Lookup, name string) (string, error) {
	setting, err := env.Secret(name)
	if err != nil {
		return "", fmt.Errorf("backend: %w", err)
	}
	if !setting.IsSet() {
		return "", nil
	}

	data, err := setting.Read()
	if err != nil {
		return "", fmt.Errorf("backend: cannot read the file that %s names: %w", setting.Name, err)
	}
	value := strings.TrimSpace(string(data))
	if value == "" {
		return "", fmt.Errorf("backend: the file that %s names (%s) is empty; write the value into it or unset %s", setting.Name, setting.Path, setting.Name)
	}
	return value, nil
}

// String returns the configuration with the secrets replaced by
// "[redacted]".
func (c Config) String() string {
	return fmt.Sprintf("backend.Config{Registry:%q Addresses:%q TLSCAFile:%q TLSCertFile:%q TLSKeyFile:%q TLSServerName:%q ConsulToken:%s EtcdUsername:%q EtcdPassword:%s KubernetesNamespace:%q Timeout:%v}",
		c.Registry, c.Addresses, c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile, c.TLSServerName,
		redact(c.ConsulToken), c.EtcdUsername, redact(c.EtcdPassword), c.KubernetesNamespace, c.Timeout)
}

// GoString is [Config.String], for the %#v verb.
func (c Config) GoString() string { return c.String() }

func redact(secret string) string {
	if secret == "" {
		return `""`
	}
	return "[redacted]"
}

// tlsRequested reports whether any TLS field is set.
func (c Config) tlsRequested() bool {
	return c.TLSCAFile != "" || c.TLSCertFile != "" || c.TLSKeyFile != "" || c.TLSServerName != ""
}

// setFields returns the variables of the non-empty fields among those
// named, for errors about fields a backend does not use.
func (c Config) setFields(names ...string) []string {
	value := map[string]string{
		EnvAddress:             strings.Join(c.Addresses, ","),
		EnvTLSCAFile:           c.TLSCAFile,
		EnvTLSCertFile:         c.TLSCertFile,
		EnvTLSKeyFile:          c.TLSKeyFile,
		EnvTLSServerName:       c.TLSServerName,
		EnvConsulToken:         c.ConsulToken,
		EnvEtcdUsername:        c.EtcdUsername,
		EnvEtcdPassword:        c.EtcdPassword,
		EnvKubernetesNamespace: c.KubernetesNamespace,
	}
	if c.Timeout != 0 {
		value[EnvTimeout] = c.Timeout.String()
	}
	var set []string
	for _, name := range names {
		if value[name] != "" {
			set = append(set, name)
		}
	}
	return set
}
