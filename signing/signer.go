package signing

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/record"
)

// DefaultRecordTTL is how long a signed record is valid when no other
// lifetime is configured. A replayed record is accepted at most this long
// after it was signed. The signer re-signs a record once it is past half
// this lifetime, so with go-micro's 30 s re-registration interval a
// backend receives one changed write every 5 minutes per node.
const DefaultRecordTTL = 10 * time.Minute

// MaxRecordTTL is the longest record lifetime accepted, and the longest a
// verifier accepts by default.
const MaxRecordTTL = 24 * time.Hour

// MinRecordTTL is the shortest record lifetime accepted. It has to exceed
// go-micro's re-registration interval of 30 s, or records would expire
// between two registrations.
const MinRecordTTL = time.Minute

// Signer signs the nodes of a service at registration. It is safe for
// concurrent use.
//
// A Signer returns the same signed record, byte for byte, for an unchanged
// node until the record is past half its lifetime, so a re-registration
// heartbeat does not change what the backend stores. A record never
// outlives the token it carries.
type Signer struct {
	source CredentialSource
	ttl    time.Duration
	now    func() time.Time
	limits MetadataLimits

	mu      sync.Mutex
	records map[recordKey]*signedRecord
}

// recordKey names a node within one version of one service: the http broker
// registers one node id under several versions (one per queue).
type recordKey struct{ service, version, nodeID string }

type signedRecord struct {
	content  [32]byte
	issuedAt time.Time
	expiry   time.Time
	metadata map[string]string
}

// SignerOption configures a [Signer].
type SignerOption func(*Signer)

// WithRecordTTL sets the lifetime of signed records; the default is
// [DefaultRecordTTL] and the minimum [MinRecordTTL].
func WithRecordTTL(d time.Duration) SignerOption {
	return func(s *Signer) { s.ttl = d }
}

// WithSignerClock sets the clock the signer reads; the default is time.Now.
func WithSignerClock(now func() time.Time) SignerOption {
	return func(s *Signer) { s.now = now }
}

// WithMetadataLimits sets the limits a node's metadata must meet, signet's
// keys included; the default is [ConsulLimits].
func WithMetadataLimits(l MetadataLimits) SignerOption {
	return func(s *Signer) { s.limits = l }
}

// NewSigner returns a Signer that signs with the credentials src hands out.
func NewSigner(src CredentialSource, opts ...SignerOption) (*Signer, error) {
	if src == nil {
		return nil, errors.New("signing: no credential source; load a node key and identity token")
	}

	s := &Signer{source: src, ttl: DefaultRecordTTL, now: time.Now, limits: ConsulLimits, records: map[recordKey]*signedRecord{}}
	for _, o := range opts {
		o(s)
	}

	if s.ttl < MinRecordTTL || s.ttl > MaxRecordTTL {
		return nil, fmt.Errorf("signing: record TTL %v is outside %v to %v", s.ttl, MinRecordTTL, MaxRecordTTL)
	}
	if err := s.limits.check(); err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return s, nil
}

// Sign returns a copy of svc whose nodes carry signed records. It never
// modifies svc. It fails when svc is invalid, when the identity may not
// register svc.Name (or, for broker nodes, the topic), when the token has
// expired, or when a node's metadata would break the configured limits.
// The second result lists the ids of nodes whose earlier signed record was
// replaced by a new one, because the node changed or its record was past
// half its lifetime. Backends that keep the first record of a node id
// (go-micro's memory registry) need those nodes deregistered first.
func (s *Signer) Sign(svc *registry.Service) (*registry.Service, []string, error) {
	if err := ValidateService(svc); err != nil {
		return nil, nil, err
	}

	creds, err := s.source.Credentials()
	if err != nil {
		return nil, nil, fmt.Errorf("signing: loading credentials: %w", err)
	}

	now := s.now()
	if err := checkAllowed(creds, svc, now); err != nil {
		return nil, nil, err
	}

	endpoints := record.DigestEndpoints(svc.Endpoints)
	metadata := record.DigestMetadata(svc.Metadata)

	out := &registry.Service{
		Name:      svc.Name,
		Version:   svc.Version,
		Metadata:  svc.Metadata,
		Endpoints: svc.Endpoints,
		Nodes:     make([]*registry.Node, 0, len(svc.Nodes)),
	}
	var replaced []string

	s.mu.Lock()
	defer s.mu.Unlock()

	s.forgetExpired(now)
	for _, node := range svc.Nodes {
		n, wasReplaced, err := s.signNode(creds, svc, node, endpoints, metadata, now)
		if err != nil {
			return nil, nil, err
		}
		out.Nodes = append(out.Nodes, n)
		if wasReplaced {
			replaced = append(replaced, node.Id)
		}
	}
	return out, replaced, nil
}

// Forget drops the cached record of a node of one service version, so its
// next registration is signed anew. The registry wrapper calls it at
// deregistration.
func (s *Signer) Forget(service, version, nodeID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.records, recordKey{service, version, nodeID})
}

func (s *Signer) signNode(creds *Credentials, svc *registry.Service, node *registry.Node, endpoints, metadata [32]byte, now time.Time) (*registry.Node, bool, error) {
	address, err := record.CanonicalAddress(node.Address)
	if err != nil {
		return nil, false, fmt.Errorf("signing: service %q node %q: %w", svc.Name, node.Id, err)
	}

	fields := record.Fields{
		Service:         svc.Name,
		Version:         svc.Version,
		NodeID:          node.Id,
		Address:         address,
		Metadata:        node.Metadata,
		EndpointsDigest: endpoints,
		MetadataDigest:  metadata,
		TokenDigest:     creds.tokenDigest,
	}
	content := sha256.Sum256(fields.AppendCanonical(nil))

	key := recordKey{svc.Name, svc.Version, node.Id}
	prev, hadRecord := s.records[key]
	if hadRecord && prev.content == content && now.Before(prev.issuedAt.Add(prev.expiry.Sub(prev.issuedAt)/2)) {
		return &registry.Node{Id: node.Id, Address: node.Address, Metadata: maps.Clone(prev.metadata)}, false, nil
	}

	issuedAt := now.Truncate(time.Second)
	expiry := issuedAt.Add(s.ttl)
	if tokenExpiry := creds.Claims.ExpiresAt.Time; tokenExpiry.Before(expiry) {
		expiry = tokenExpiry
	}
	if !expiry.After(issuedAt) {
		return nil, false, fmt.Errorf("signing: %w: identity token expired at %s", ErrTokenExpired, creds.Claims.ExpiresAt.Time.UTC().Format(time.RFC3339))
	}

	fields.IssuedAt = issuedAt.Unix()
	fields.Expiry = expiry.Unix()
	sig := ed25519.Sign(creds.Key, fields.AppendCanonical(nil))

	signed := record.Signed{
		Signature:       sig,
		IssuedAt:        fields.IssuedAt,
		Expiry:          fields.Expiry,
		EndpointsDigest: endpoints,
		MetadataDigest:  metadata,
		Token:           creds.Token,
	}
	own, err := signed.Metadata()
	if err != nil {
		return nil, false, fmt.Errorf("signing: %w", err)
	}

	md := make(map[string]string, len(node.Metadata)+len(own))
	for k, v := range node.Metadata {
		if !record.IsOwnKey(k) {
			md[k] = v
		}
	}
	for k, v := range own {
		md[k] = v
	}
	if err := s.limits.Check(svc.Name, node.Id, md); err != nil {
		return nil, false, err
	}

	// The cache keeps its own map, so a backend or a watch consumer that
	// changes the returned node cannot corrupt later registrations.
	s.records[key] = &signedRecord{content: content, issuedAt: issuedAt, expiry: expiry, metadata: md}
	return &registry.Node{Id: node.Id, Address: node.Address, Metadata: maps.Clone(md)}, hadRecord, nil
}

// forgetExpired drops records that expired more than a TTL ago. A record
// that expired recently is kept, so that the replacement of a node that
// missed its heartbeats is still reported as replaced.
func (s *Signer) forgetExpired(now time.Time) {
	for id, r := range s.records {
		if now.After(r.expiry.Add(s.ttl)) {
			delete(s.records, id)
		}
	}
}

// ErrTokenExpired reports that the node's own identity token has expired,
// so it cannot sign records until the token is renewed.
var ErrTokenExpired = errors.New("identity token expired")

// ErrNotAllowed reports that the node's identity does not allow the
// service name or broker topic it tries to register.
var ErrNotAllowed = errors.New("identity does not allow this registration")

func checkAllowed(creds *Credentials, svc *registry.Service, now time.Time) error {
	c := creds.Claims
	if c.NotBefore != nil && now.Before(c.NotBefore.Time) {
		return fmt.Errorf("signing: identity token %q is not valid before %s", c.ID, c.NotBefore.Time.UTC().Format(time.RFC3339))
	}
	if !now.Before(c.ExpiresAt.Time) {
		return fmt.Errorf("signing: %w: token %q of %q expired at %s; renew the token", ErrTokenExpired, c.ID, c.Subject, c.ExpiresAt.Time.UTC().Format(time.RFC3339))
	}
	if !c.AllowsService(svc.Name) {
		return fmt.Errorf("signing: %w: token %q of %q allows services %q, not %q", ErrNotAllowed, c.ID, c.Subject, c.Services, svc.Name)
	}

	if svc.Name != BrokerService {
		return nil
	}
	for _, n := range svc.Nodes {
		if topic := n.Metadata[TopicMetadataKey]; !c.AllowsTopic(topic) {
			return fmt.Errorf("signing: %w: token %q of %q allows topics %q, not %q (node %q)", ErrNotAllowed, c.ID, c.Subject, c.Topics, topic, n.Id)
		}
	}
	return nil
}
