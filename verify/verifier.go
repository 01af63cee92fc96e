package verify

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/record"
	"github.com/signet-micro/signet/signing"
)

// Defaults for [New].
const (
	// DefaultLeeway is the clock skew tolerated between the signing node,
	// the issuer and the verifier.
	DefaultLeeway = 30 * time.Second

	// DefaultCacheSize is the number of verified records kept.
	DefaultCacheSize = 10000

	// MaxLeeway bounds the configured leeway, because leeway extends every
	// validity window, a replayed record's included.
	MaxLeeway = 5 * time.Minute

	// DefaultMaxRecordLifetime is the longest record validity window
	// accepted when no other is configured. Signers default to 10 minutes.
	DefaultMaxRecordLifetime = signing.MaxRecordTTL
)

// Identity is a verified identity token.
type Identity struct {
	Subject  string
	Issuer   string
	KeyID    string
	TokenID  string
	Services []string
	Topics   []string
	NodeKey  ed25519.PublicKey
	IssuedAt time.Time
	Expiry   time.Time
}

// Record is a verified node record.
type Record struct {
	Identity *Identity
	IssuedAt time.Time
	Expiry   time.Time

	// EndpointsDigest and MetadataDigest are the digests of the service's
	// endpoints and metadata that the node signed. A service whose
	// record.DigestEndpoints or record.DigestMetadata equals them carries
	// the fields this node registered.
	EndpointsDigest [32]byte
	MetadataDigest  [32]byte
}

// Verifier verifies node records. It is safe for concurrent use.
type Verifier struct {
	bundles     BundleSource
	revocations RevocationSource
	audience    []string
	issuer      string
	leeway      time.Duration
	maxLifetime time.Duration
	now         func() time.Time
	algorithms  map[string]bool

	records  *lru[string, *recordEntry]
	rejected *lru[[32]byte, error]
	tokens   *lru[string, *tokenEntry]
	inflight flights
	stats    stats
}

type config struct {
	bundles     BundleSource
	revocations RevocationSource
	audience    []string
	issuer      string
	leeway      time.Duration
	maxLifetime time.Duration
	now         func() time.Time
	algorithms  []string
	cacheSize   int
}

// Option configures a [Verifier].
type Option func(*config)

// WithBundle sets the source of trusted issuer keys. It is required.
func WithBundle(src BundleSource) Option {
	return func(c *config) { c.bundles = src }
}

// WithRevocations sets the source of revoked token and key ids.
func WithRevocations(src RevocationSource) Option {
	return func(c *config) { c.revocations = src }
}

// WithAudience sets the accepted "aud" values; a token must name one of
// them. The default is [signing.DefaultAudience].
func WithAudience(aud ...string) Option {
	return func(c *config) { c.audience = aud }
}

// WithIssuer requires the token's "iss" claim to equal iss.
func WithIssuer(iss string) Option {
	return func(c *config) { c.issuer = iss }
}

// WithLeeway sets the tolerated clock skew, at most [MaxLeeway]; the
// default is [DefaultLeeway].
func WithLeeway(d time.Duration) Option {
	return func(c *config) { c.leeway = d }
}

// WithMaxRecordLifetime sets the longest validity window (expiry minus
// issue time) a record may claim; the default is
// [DefaultMaxRecordLifetime]. Whatever lifetime a signer chooses, a copy of
// its record can then be replayed for at most this long.
func WithMaxRecordLifetime(d time.Duration) Option {
	return func(c *config) { c.maxLifetime = d }
}

// WithClock sets the clock the verifier reads; the default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// WithAlgorithms sets the allow-list of token algorithms, from
// [SupportedAlgorithms]; the default is [DefaultAlgorithms].
func WithAlgorithms(algs ...string) Option {
	return func(c *config) { c.algorithms = algs }
}

// WithCacheSize sets how many verified records are cached, and a quarter
// as many tokens; 0 disables the caches. The default is
// [DefaultCacheSize]. An entry also leaves the cache when its record
// expires.
func WithCacheSize(n int) Option {
	return func(c *config) { c.cacheSize = n }
}

// New returns a Verifier. It fails when no bundle source is set or an
// option is out of range.
func New(opts ...Option) (*Verifier, error) {
	c := config{
		audience:    []string{signing.DefaultAudience},
		leeway:      DefaultLeeway,
		maxLifetime: DefaultMaxRecordLifetime,
		now:         time.Now,
		algorithms:  DefaultAlgorithms,
		cacheSize:   DefaultCacheSize,
	}
	for _, o := range opts {
		o(&c)
	}

	if c.bundles == nil {
		return nil, fmt.Errorf("verify: %w; load one from a JWK Set or PEM public keys", ErrNoTrustBundle)
	}
	if len(c.audience) == 0 {
		return nil, errors.New("verify: the audience list is empty; name the audience your issuer writes in \"aud\"")
	}
	if c.leeway < 0 || c.leeway > MaxLeeway {
		return nil, fmt.Errorf("verify: leeway %v is outside 0 to %v", c.leeway, MaxLeeway)
	}
	if c.maxLifetime < time.Minute {
		return nil, fmt.Errorf("verify: maximum record lifetime %v is shorter than a minute, shorter than any signer's records", c.maxLifetime)
	}
	if c.cacheSize < 0 {
		return nil, fmt.Errorf("verify: cache size %d is negative", c.cacheSize)
	}
	algs, err := checkAlgorithms(c.algorithms)
	if err != nil {
		return nil, err
	}
	if c.now == nil {
		return nil, errors.New("verify: the clock is nil")
	}

	return &Verifier{
		bundles:     c.bundles,
		revocations: c.revocations,
		audience:    c.audience,
		issuer:      c.issuer,
		leeway:      c.leeway,
		maxLifetime: c.maxLifetime,
		now:         c.now,
		algorithms:  algs,
		records:     newLRU[string, *recordEntry](c.cacheSize),
		rejected:    newLRU[[32]byte, error](c.cacheSize / 4),
		tokens:      newLRU[string, *tokenEntry](c.cacheSize / 4),
	}, nil
}

type recordEntry struct {
	service  string
	version  string
	nodeID   string
	address  string
	metadata []metadataPair
	record   *Record
	bundle   uint64
}

type metadataPair struct{ key, value string }

// matches reports whether n is, field for field, the node that was
// verified. The metadata is kept as a slice, because ranging over a slice
// and looking each key up in n's map costs about half as much as ranging
// over a map. With equal lengths and unique keys, every stored pair being
// present in n means the two maps are equal.
func (e *recordEntry) matches(service, version string, n *registry.Node) bool {
	if e.service != service || e.version != version || e.nodeID != n.Id || e.address != n.Address || len(e.metadata) != len(n.Metadata) {
		return false
	}
	for _, p := range e.metadata {
		if v, ok := n.Metadata[p.key]; !ok || v != p.value {
			return false
		}
	}
	return true
}

// VerifyNode verifies one node of service name and version as the registry
// returned it. On success it returns the verified record; on failure, a
// *[Rejection] that wraps the reason.
func (v *Verifier) VerifyNode(service, version string, node *registry.Node) (*Record, error) {
	records, errs := v.VerifyNodes(service, version, []*registry.Node{node})
	return records[0], errs[0]
}

// VerifyNodes verifies the nodes of one version of a service, reading the
// clock, the trust bundle and the revocation list once for all of them.
// records[i] and errs[i] belong to nodes[i]; exactly one of them is nil.
func (v *Verifier) VerifyNodes(service, version string, nodes []*registry.Node) (records []*Record, errs []error) {
	records = make([]*Record, len(nodes))
	errs = make([]error, len(nodes))

	b := batch{now: v.now()}
	var err error
	if b.bundle, err = v.bundles.Bundle(); err != nil || b.bundle == nil {
		for i, n := range nodes {
			errs[i] = v.rejection(service, version, n, nil, reject(ErrNoTrustBundle, "loading trust bundle: %v", err))
		}
		return records, errs
	}
	if b.revoked, err = v.currentRevocations(); err != nil {
		for i, n := range nodes {
			errs[i] = v.rejection(service, version, n, nil, reject(ErrRevoked, "loading revocation list: %v", err))
		}
		return records, errs
	}

	var hits uint64
	for i, n := range nodes {
		var hit bool
		records[i], hit, errs[i] = v.verifyOne(service, version, n, &b)
		if hit {
			hits++
		}
		if errs[i] != nil {
			records[i] = nil
		}
	}
	v.stats.cacheHits.Add(hits)
	v.stats.cacheMisses.Add(uint64(len(nodes)) - hits)
	return records, errs
}

// batch holds the clock reading, trust bundle and revocation list that the
// verification of one service version reads once.
type batch struct {
	now     time.Time
	bundle  *Bundle
	revoked *Revocations
}

func (v *Verifier) verifyOne(service, version string, node *registry.Node, b *batch) (*Record, bool, error) {
	if node == nil {
		return nil, false, &Rejection{Service: service, Version: version, Err: reject(ErrMalformed, "node is nil")}
	}

	sig := node.Metadata[record.KeySignature]
	if sig != "" {
		if rec, ok := v.cachedRecord(sig, service, version, node, b); ok {
			return rec, true, v.recheck(service, version, node, rec, b)
		}

		if wait := v.inflight.join(sig); wait != nil {
			<-wait
			if rec, ok := v.cachedRecord(sig, service, version, node, b); ok {
				return rec, true, v.recheck(service, version, node, rec, b)
			}
		} else {
			defer v.inflight.done(sig)
		}
	}

	rec, err := v.verifyFull(service, version, node, b.bundle, b.revoked, b.now)
	if err != nil {
		return nil, false, err
	}

	if sig != "" {
		md := make([]metadataPair, 0, len(node.Metadata))
		for k, val := range node.Metadata {
			md = append(md, metadataPair{k, val})
		}
		v.records.put(sig, &recordEntry{
			service: service, version: version, nodeID: node.Id, address: node.Address,
			metadata: md, record: rec, bundle: b.bundle.generation,
		}, rec.Expiry.Add(v.leeway))
	}
	return rec, false, nil
}

func (v *Verifier) cachedRecord(sig, service, version string, node *registry.Node, b *batch) (*Record, bool) {
	e, ok := v.records.get(sig, b.now)
	if !ok || e.bundle != b.bundle.generation || !e.matches(service, version, node) {
		return nil, false
	}
	return e.record, true
}

// recheck applies the checks whose outcome changes over time to a cached
// record: its validity window and revocation.
func (v *Verifier) recheck(service, version string, node *registry.Node, rec *Record, b *batch) error {
	if err := v.checkWindow(rec.IssuedAt, rec.Expiry, b.now, ErrRecordNotYetValid, ErrRecordExpired); err != nil {
		return v.rejection(service, version, node, rec.Identity, err)
	}
	if b.revoked.Revoked(rec.Identity.TokenID, rec.Identity.KeyID) {
		return v.rejection(service, version, node, rec.Identity, reject(ErrRevoked, "token %q or issuer key %q is on the revocation list", rec.Identity.TokenID, rec.Identity.KeyID))
	}
	return nil
}

func (v *Verifier) verifyFull(service, version string, node *registry.Node, bundle *Bundle, revoked *Revocations, now time.Time) (*Record, error) {
	signed, err := record.Parse(node.Metadata)
	if err != nil {
		return nil, v.rejection(service, version, node, nil, err)
	}

	id, err := v.verifyToken(signed.Token, bundle, now)
	if err != nil {
		return nil, v.rejection(service, version, node, id, err)
	}
	if revoked.Revoked(id.TokenID, id.KeyID) {
		return nil, v.rejection(service, version, node, id, reject(ErrRevoked, "token %q or issuer key %q is on the revocation list", id.TokenID, id.KeyID))
	}

	if !signing.MatchAny(id.Services, service) {
		return nil, v.rejection(service, version, node, id, reject(ErrNotAllowed, "identity %q may serve %q, not %q", id.Subject, id.Services, service))
	}
	if service == signing.BrokerService {
		topic := node.Metadata[signing.TopicMetadataKey]
		if !signing.MatchAny(id.Topics, topic) {
			return nil, v.rejection(service, version, node, id, reject(ErrNotAllowed, "identity %q may subscribe to %q, not topic %.64q", id.Subject, id.Topics, topic))
		}
	}

	issuedAt, expiry := time.Unix(signed.IssuedAt, 0), time.Unix(signed.Expiry, 0)
	if !expiry.After(issuedAt) {
		return nil, v.rejection(service, version, node, id, reject(ErrMalformed, "record expiry %d is not after its issue time %d", signed.Expiry, signed.IssuedAt))
	}
	if expiry.After(id.Expiry) {
		return nil, v.rejection(service, version, node, id, reject(ErrRecordOutlivesToken, "record expires at %s, after its token at %s", expiry.UTC().Format(time.RFC3339), id.Expiry.UTC().Format(time.RFC3339)))
	}
	if lifetime := expiry.Sub(issuedAt); lifetime > v.maxLifetime {
		return nil, v.rejection(service, version, node, id, reject(ErrRecordLifetime, "record is valid for %v, longer than the %v this verifier accepts", lifetime, v.maxLifetime))
	}
	if err := v.checkWindow(issuedAt, expiry, now, ErrRecordNotYetValid, ErrRecordExpired); err != nil {
		return nil, v.rejection(service, version, node, id, err)
	}

	address, err := record.CanonicalAddress(node.Address)
	if err != nil {
		return nil, v.rejection(service, version, node, id, reject(ErrMalformed, "%v", err))
	}

	fields := record.Fields{
		Service:         service,
		Version:         version,
		NodeID:          node.Id,
		Address:         address,
		Metadata:        node.Metadata,
		EndpointsDigest: signed.EndpointsDigest,
		MetadataDigest:  signed.MetadataDigest,
		IssuedAt:        signed.IssuedAt,
		Expiry:          signed.Expiry,
		TokenDigest:     record.DigestToken(signed.Token),
	}
	message := fields.AppendCanonical(make([]byte, 0, 512))
	negativeKey := rejectionKey(message, signed.Signature, bundle.generation)
	if err, ok := v.rejected.get(negativeKey, now); ok {
		return nil, v.rejection(service, version, node, id, err)
	}

	v.stats.signatureChecks.Add(1)
	if !ed25519.Verify(id.NodeKey, message, signed.Signature) {
		err := reject(ErrBadSignature, "the signature does not cover this service, version, node id, address and metadata")
		v.rejected.put(negativeKey, err, expiry.Add(v.leeway))
		return nil, v.rejection(service, version, node, id, err)
	}

	return &Record{
		Identity:        id,
		IssuedAt:        issuedAt,
		Expiry:          expiry,
		EndpointsDigest: signed.EndpointsDigest,
		MetadataDigest:  signed.MetadataDigest,
	}, nil
}

func (v *Verifier) checkWindow(notBefore, expiry, now time.Time, early, late error) error {
	if notBefore.After(now.Add(v.leeway)) {
		return reject(early, "valid from %s, and the time is %s", notBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if !now.Add(-v.leeway).Before(expiry) {
		return reject(late, "expired at %s, and the time is %s", expiry.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

func (v *Verifier) currentRevocations() (*Revocations, error) {
	if v.revocations == nil {
		return nil, nil
	}
	return v.revocations.Revocations()
}

// maxIDLen bounds the length of attacker-supplied ids copied into errors.
const maxIDLen = 64

func (v *Verifier) rejection(service, version string, node *registry.Node, id *Identity, err error) *Rejection {
	r := &Rejection{Service: service, Version: version, NodeID: node.Id, Address: node.Address, Err: err}
	if id != nil {
		r.KeyID, r.TokenID, r.Subject = truncate(id.KeyID), truncate(id.TokenID), truncate(id.Subject)
	}
	return r
}

func truncate(s string) string {
	if len(s) > maxIDLen {
		return s[:maxIDLen] + "..."
	}
	return s
}
