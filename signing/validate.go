package signing

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/record"
)

// ErrInvalidService reports a service that cannot be registered: an empty
// name or node id, a node without a usable address, or metadata that
// breaks the configured limits.
var ErrInvalidService = errors.New("invalid service")

// MetadataLimits are the limits that a node's metadata, signet's own keys
// included, must meet at registration.
type MetadataLimits struct {
	// MaxPairs is the largest number of metadata pairs per node.
	MaxPairs int

	// MaxKeyLen and MaxValueLen are the longest key and value, in bytes.
	MaxKeyLen   int
	MaxValueLen int

	// ConsulKeys restricts keys to [A-Za-z0-9_-] without the "consul-"
	// prefix, as Consul requires of Service.Meta.
	ConsulKeys bool
}

// ConsulLimits are Consul's limits on Service.Meta, where the go-micro
// consul plugin stores node metadata: 64 pairs, keys of at most 128
// characters from [A-Za-z0-9_-], values of at most 512 characters. They
// are the default everywhere, so that a record that registers on one
// backend registers on all of them.
var ConsulLimits = MetadataLimits{MaxPairs: 64, MaxKeyLen: 128, MaxValueLen: 512, ConsulKeys: true}

// VerifierLimits are the largest records a verifier processes. Use them for
// backends other than Consul when metadata needs more room.
var VerifierLimits = MetadataLimits{MaxPairs: record.MaxMetadataPairs, MaxKeyLen: 1024, MaxValueLen: 16 << 10}

func (l MetadataLimits) check() error {
	if l.MaxPairs < record.FixedKeys+record.MaxTokenParts || l.MaxPairs > record.MaxMetadataPairs {
		return fmt.Errorf("metadata limit of %d pairs is outside %d to %d", l.MaxPairs, record.FixedKeys+record.MaxTokenParts, record.MaxMetadataPairs)
	}
	if l.MaxValueLen < record.MaxValueLen || l.MaxKeyLen < len(record.TokenPartKey(record.MaxTokenParts)) {
		return fmt.Errorf("metadata limits of %d-byte keys and %d-byte values leave no room for signet's keys", l.MaxKeyLen, l.MaxValueLen)
	}
	return nil
}

// Check reports the first way md breaks l, naming the service, node, key
// and limit.
func (l MetadataLimits) Check(service, nodeID string, md map[string]string) error {
	if len(md) > l.MaxPairs {
		return fmt.Errorf("signing: %w: service %q node %q has %d metadata pairs with signet's keys, more than the limit of %d; remove %d user metadata keys",
			ErrInvalidService, service, nodeID, len(md), l.MaxPairs, len(md)-l.MaxPairs)
	}

	total := 0
	for k, v := range md {
		total += len(k) + len(v)
		if err := l.checkKey(k); err != nil {
			return fmt.Errorf("signing: %w: service %q node %q: %v", ErrInvalidService, service, nodeID, err)
		}
		if len(v) > l.MaxValueLen {
			return fmt.Errorf("signing: %w: service %q node %q: metadata value of key %q is %d characters, more than the limit of %d",
				ErrInvalidService, service, nodeID, k, len(v), l.MaxValueLen)
		}

		// Every backend stores metadata as JSON, which replaces invalid
		// UTF-8 with U+FFFD, so such a record would never verify again.
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("signing: %w: service %q node %q: metadata key %q or its value is not valid UTF-8, which backends rewrite; encode binary values as base64",
				ErrInvalidService, service, nodeID, k)
		}
	}
	if total > record.MaxMetadataBytes {
		return fmt.Errorf("signing: %w: service %q node %q has %d bytes of metadata, more than the %d bytes a verifier processes",
			ErrInvalidService, service, nodeID, total, record.MaxMetadataBytes)
	}
	return nil
}

func (l MetadataLimits) checkKey(k string) error {
	if k == "" {
		return errors.New("metadata key is empty")
	}
	if len(k) > l.MaxKeyLen {
		return fmt.Errorf("metadata key %.32q... is %d characters, more than the limit of %d", k, len(k), l.MaxKeyLen)
	}
	if !l.ConsulKeys {
		return nil
	}

	if len(k) >= 7 && k[:7] == "consul-" {
		return fmt.Errorf("metadata key %q starts with the prefix \"consul-\", which Consul reserves", k)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("metadata key %q contains %q; Consul allows only [A-Za-z0-9_-] (rename the key, or use VerifierLimits on other backends)", k, c)
		}
	}
	return nil
}

// maxNameLen bounds service names, versions and node ids.
const maxNameLen = 256

// ValidateService checks what registration needs of a service: a name, at
// least one node, and for each node an id and an address with a host.
func ValidateService(svc *registry.Service) error {
	if svc == nil {
		return fmt.Errorf("signing: %w: service is nil", ErrInvalidService)
	}
	if err := checkName("service name", svc.Name, false); err != nil {
		return err
	}
	if err := checkName("service version", svc.Version, true); err != nil {
		return fmt.Errorf("%w (service %q)", err, svc.Name)
	}
	if len(svc.Nodes) == 0 {
		return fmt.Errorf("signing: %w: service %q has no nodes to register", ErrInvalidService, svc.Name)
	}

	seen := make(map[string]bool, len(svc.Nodes))
	for i, n := range svc.Nodes {
		if n == nil {
			return fmt.Errorf("signing: %w: service %q node %d is nil", ErrInvalidService, svc.Name, i)
		}
		if err := checkName("node id", n.Id, false); err != nil {
			return fmt.Errorf("%w (service %q)", err, svc.Name)
		}
		if seen[n.Id] {
			return fmt.Errorf("signing: %w: service %q lists node %q twice", ErrInvalidService, svc.Name, n.Id)
		}
		seen[n.Id] = true
		if _, err := record.CanonicalAddress(n.Address); err != nil {
			return fmt.Errorf("signing: %w: service %q node %q: %v", ErrInvalidService, svc.Name, n.Id, err)
		}
	}
	return nil
}

func checkName(what, v string, mayBeEmpty bool) error {
	if v == "" && !mayBeEmpty {
		return fmt.Errorf("signing: %w: %s is empty", ErrInvalidService, what)
	}
	if len(v) > maxNameLen {
		return fmt.Errorf("signing: %w: %s %.32q... is %d bytes, more than %d", ErrInvalidService, what, v, len(v), maxNameLen)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("signing: %w: %s %q is not valid UTF-8", ErrInvalidService, what, v)
	}
	for _, r := range v {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("signing: %w: %s %q contains white space or a control character", ErrInvalidService, what, v)
		}
	}
	return nil
}
