// Package envconf reads settings from environment variables, with the
// _FILE convention for secrets: NAME holds a value, NAME_FILE the path of
// a file that holds it, and setting both is an error.
package envconf

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Lookup returns an environment variable and whether it is set, as
// os.LookupEnv does.
type Lookup func(name string) (string, bool)

// Env is the process environment.
var Env Lookup = os.LookupEnv

// Setting is a value given inline or as a file path.
type Setting struct {
	Name  string // the variable that was set: NAME or NAME_FILE
	Value string // the inline value, when Path is empty
	Path  string // the file path, from NAME_FILE
}

// IsSet reports whether either variable was set.
func (s Setting) IsSet() bool { return s.Value != "" || s.Path != "" }

// Read returns the inline value or the file's content.
func (s Setting) Read() ([]byte, error) {
	if s.Path == "" {
		return []byte(s.Value), nil
	}
	data, err := os.ReadFile(s.Path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	return data, nil
}

// Secret reads NAME or NAME_FILE. An empty value counts as unset.
func (l Lookup) Secret(name string) (Setting, error) {
	value, _ := l(name)
	path, _ := l(name + "_FILE")
	value, path = strings.TrimSpace(value), strings.TrimSpace(path)
	switch {
	case value != "" && path != "":
		return Setting{}, fmt.Errorf("both %s and %s_FILE are set; set only one", name, name)
	case path != "":
		return Setting{Name: name + "_FILE", Path: path}, nil
	case value != "":
		return Setting{Name: name, Value: value}, nil
	}
	return Setting{}, nil
}

// String returns NAME trimmed, or def when it is unset or empty.
func (l Lookup) String(name, def string) string {
	if v, ok := l(name); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}

// List returns NAME split at commas, without empty items, or def.
func (l Lookup) List(name string, def []string) []string {
	v := l.String(name, "")
	if v == "" {
		return def
	}
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// Duration parses NAME as a Go duration such as "30s" or "10m".
func (l Lookup) Duration(name string, def time.Duration) (time.Duration, error) {
	v := l.String(name, "")
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s is %q, not a duration such as \"30s\" or \"10m\"", name, v)
	}
	return d, nil
}

// Int parses NAME as a decimal integer.
func (l Lookup) Int(name string, def int) (int, error) {
	v := l.String(name, "")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s is %q, not a whole number", name, v)
	}
	return n, nil
}

// Prefix starts the name of every variable that signet and go-micro's
// registry read.
const Prefix = "MICRO_REGISTRY"

// knownNames are the registry variables that signet's packages and go-micro
// read. A _FILE twin of a secret is known when the secret is.
var knownNames = map[string]bool{
	// go-micro and registry/backend
	"MICRO_REGISTRY": true, "MICRO_REGISTRY_ADDRESS": true,
	"MICRO_REGISTRY_TLS_CA_FILE": true, "MICRO_REGISTRY_TLS_CERT_FILE": true,
	"MICRO_REGISTRY_TLS_KEY_FILE": true, "MICRO_REGISTRY_TLS_SERVER_NAME": true,
	"MICRO_REGISTRY_CONSUL_TOKEN": true, "MICRO_REGISTRY_ETCD_USERNAME": true,
	"MICRO_REGISTRY_ETCD_PASSWORD": true, "MICRO_REGISTRY_KUBERNETES_NAMESPACE": true,
	"MICRO_REGISTRY_TIMEOUT": true,
	// registry
	"MICRO_REGISTRY_TRUST_BUNDLE": true, "MICRO_REGISTRY_SIGNING_KEY": true,
	"MICRO_REGISTRY_IDENTITY_TOKEN": true, "MICRO_REGISTRY_AUDIENCE": true,
	"MICRO_REGISTRY_ISSUER": true, "MICRO_REGISTRY_TOKEN_ALGORITHMS": true,
	"MICRO_REGISTRY_CLOCK_LEEWAY": true, "MICRO_REGISTRY_RECORD_TTL": true,
	"MICRO_REGISTRY_MAX_RECORD_TTL": true,
	"MICRO_REGISTRY_REVOCATIONS":    true, "MICRO_REGISTRY_VERIFY_MODE": true,
	"MICRO_REGISTRY_SERVE_STALE": true, "MICRO_REGISTRY_CACHE_SIZE": true,
	"MICRO_REGISTRY_METADATA_LIMITS": true,
}

// Unknown returns the names in environ (as os.Environ returns it) that
// start with Prefix but that nothing reads, such as a misspelt
// MICRO_REGISTRY_REVOCATION_FILE, which would otherwise leave revocation
// silently off.
func Unknown(environ []string) []string {
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, Prefix) || knownNames[name] || knownNames[strings.TrimSuffix(name, "_FILE")] {
			continue
		}
		out = append(out, name)
	}
	return out
}
