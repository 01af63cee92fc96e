package testid

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"go-micro.dev/v4/logger"
	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/jwk"
	"github.com/signet-micro/signet/internal/record"
	"github.com/signet-micro/signet/signing"
)

// NewNodeKey returns a fresh Ed25519 node key.
func NewNodeKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// Header returns the JWS header that the issuer writes: EdDSA with its
// key id. Tests change or delete members to build hostile tokens.
func (is *Issuer) Header() map[string]any {
	return map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": is.KeyID}
}

// Claims returns the claims that [signing.Issuer.Issue] writes for a token
// that binds nodeKey and allows services, issued at the issuer's current
// time for lifetime. Tests change or delete members to build hostile
// tokens.
func (is *Issuer) Claims(t testing.TB, nodeKey ed25519.PublicKey, services []string, lifetime time.Duration) map[string]any {
	t.Helper()
	nodeJWK, err := jwk.FromPublicKey(nodeKey)
	if err != nil {
		t.Fatal(err)
	}

	now := time.Now
	if is.Now != nil {
		now = is.Now
	}
	iat := now().Truncate(time.Second).Unix()
	return map[string]any{
		"iss":      is.Name,
		"sub":      "workload",
		"aud":      []string{signing.DefaultAudience},
		"iat":      iat,
		"nbf":      iat,
		"exp":      iat + int64(lifetime/time.Second),
		"jti":      fmt.Sprintf("jti-%d-%x", iat, nodeKey[:4]),
		"cnf":      map[string]any{"jwk": nodeJWK},
		"services": services,
	}
}

// SignRaw encodes header and claims as a compact JWS signed with the
// issuer's Ed25519 key, whatever the header says the algorithm is.
func (is *Issuer) SignRaw(t testing.TB, header, claims map[string]any) string {
	t.Helper()
	return RawToken(t, header, claims, func(input []byte) []byte {
		return ed25519.Sign(is.Key, input)
	})
}

// RawToken encodes header and claims as a compact JWS. sign receives the
// signing input ("header.payload") and returns the signature bytes; a nil
// sign leaves the signature segment empty, as an "alg": "none" token has
// it.
func RawToken(t testing.TB, header, claims map[string]any, sign func(input []byte) []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}

	enc := base64.RawURLEncoding
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + enc.EncodeToString(sig)
}

// Forged is what [ForgeNode] needs to sign a record without the checks
// that [signing.Signer] makes: the node key, any token string, and any
// validity window.
type Forged struct {
	Key      ed25519.PrivateKey
	Token    string
	IssuedAt time.Time
	Expiry   time.Time
}

// ForgeNode returns a copy of node carrying a record of svc signed with
// f.Key, built from the wire format alone. It signs what the Signer would
// reject (a service the token does not allow, a window past the token's),
// so tests can reach the verifier's own checks.
func ForgeNode(t testing.TB, f Forged, svc *registry.Service, node *registry.Node) *registry.Node {
	t.Helper()
	address, err := record.CanonicalAddress(node.Address)
	if err != nil {
		t.Fatal(err)
	}

	fields := record.Fields{
		Service:         svc.Name,
		Version:         svc.Version,
		NodeID:          node.Id,
		Address:         address,
		Metadata:        node.Metadata,
		EndpointsDigest: record.DigestEndpoints(svc.Endpoints),
		MetadataDigest:  record.DigestMetadata(svc.Metadata),
		IssuedAt:        f.IssuedAt.Unix(),
		Expiry:          f.Expiry.Unix(),
		TokenDigest:     record.DigestToken(f.Token),
	}
	signed := record.Signed{
		Signature:       ed25519.Sign(f.Key, fields.AppendCanonical(nil)),
		IssuedAt:        fields.IssuedAt,
		Expiry:          fields.Expiry,
		EndpointsDigest: fields.EndpointsDigest,
		MetadataDigest:  fields.MetadataDigest,
		Token:           f.Token,
	}
	own, err := signed.Metadata()
	if err != nil {
		t.Fatal(err)
	}

	md := make(map[string]string, len(node.Metadata)+len(own))
	for k, v := range node.Metadata {
		if !record.IsOwnKey(k) {
			md[k] = v
		}
	}
	maps.Copy(md, own)
	return &registry.Node{Id: node.Id, Address: node.Address, Metadata: md}
}

// CloneNode returns a deep copy of n.
func CloneNode(n *registry.Node) *registry.Node {
	return &registry.Node{Id: n.Id, Address: n.Address, Metadata: maps.Clone(n.Metadata)}
}

// CloneService returns a deep copy of svc: nodes, endpoints, values and
// metadata maps.
func CloneService(svc *registry.Service) *registry.Service {
	if svc == nil {
		return nil
	}
	out := &registry.Service{Name: svc.Name, Version: svc.Version, Metadata: maps.Clone(svc.Metadata)}
	for _, n := range svc.Nodes {
		if n == nil {
			out.Nodes = append(out.Nodes, nil)
			continue
		}
		out.Nodes = append(out.Nodes, CloneNode(n))
	}
	for _, e := range svc.Endpoints {
		if e == nil {
			out.Endpoints = append(out.Endpoints, nil)
			continue
		}
		out.Endpoints = append(out.Endpoints, &registry.Endpoint{
			Name:     e.Name,
			Request:  cloneValue(e.Request),
			Response: cloneValue(e.Response),
			Metadata: maps.Clone(e.Metadata),
		})
	}
	return out
}

func cloneValue(v *registry.Value) *registry.Value {
	if v == nil {
		return nil
	}
	out := &registry.Value{Name: v.Name, Type: v.Type}
	for _, child := range v.Values {
		out.Values = append(out.Values, cloneValue(child))
	}
	return out
}

// Observer counts the events a signet registry reports. It is safe for
// concurrent use.
type Observer struct {
	mu       sync.Mutex
	verified map[string]int // by service
	rejected map[string]int // by reason code
	results  map[string]int // by operation
	stale    map[string]int // by service
}

// NewObserver returns an Observer with all counts at zero.
func NewObserver() *Observer {
	return &Observer{verified: map[string]int{}, rejected: map[string]int{}, results: map[string]int{}, stale: map[string]int{}}
}

// NodeVerified counts a verified node of service.
func (o *Observer) NodeVerified(service string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.verified[service]++
}

// NodeRejected counts a rejected node by reason code.
func (o *Observer) NodeRejected(service, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rejected[reason]++
}

// Verified counts a verified lookup or watch result.
func (o *Observer) Verified(operation string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.results[operation]++
}

// ServedStale counts a serve-stale answer for service.
func (o *Observer) ServedStale(service string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stale[service]++
}

// VerifiedNodes returns the number of verified nodes of service.
func (o *Observer) VerifiedNodes(service string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.verified[service]
}

// Rejections returns the number of nodes rejected with reason code.
func (o *Observer) Rejections(reason string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.rejected[reason]
}

// Results returns the number of results verified for operation
// ("lookup" or "watch").
func (o *Observer) Results(operation string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.results[operation]
}

// StaleAnswers returns the number of serve-stale answers for service.
func (o *Observer) StaleAnswers(service string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stale[service]
}

// LogBuffer collects what a go-micro logger writes. It is safe for
// concurrent use.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logger returns a go-micro logger that writes every level to b, one line
// per entry: the level, the fields sorted by key as key=value, and the
// message. go-micro's own default logger ignores its output option and
// prints to standard output, so it cannot be captured.
func (b *LogBuffer) Logger() logger.Logger {
	return &bufferLogger{buf: b, opts: logger.Options{Level: logger.TraceLevel, Fields: map[string]any{}}}
}

type bufferLogger struct {
	buf  *LogBuffer
	opts logger.Options
}

func (l *bufferLogger) Init(opts ...logger.Option) error {
	for _, o := range opts {
		o(&l.opts)
	}
	return nil
}

func (l *bufferLogger) Options() logger.Options { return l.opts }

func (l *bufferLogger) Fields(fields map[string]any) logger.Logger {
	merged := maps.Clone(l.opts.Fields)
	if merged == nil {
		merged = map[string]any{}
	}
	maps.Copy(merged, fields)
	opts := l.opts
	opts.Fields = merged
	return &bufferLogger{buf: l.buf, opts: opts}
}

func (l *bufferLogger) Log(level logger.Level, v ...any) {
	l.write(level, fmt.Sprint(v...))
}

func (l *bufferLogger) Logf(level logger.Level, format string, v ...any) {
	l.write(level, fmt.Sprintf(format, v...))
}

func (l *bufferLogger) String() string { return "testid" }

func (l *bufferLogger) write(level logger.Level, msg string) {
	if !l.opts.Level.Enabled(level) {
		return
	}
	var line bytes.Buffer
	line.WriteString("level=" + level.String())
	for _, k := range slices.Sorted(maps.Keys(l.opts.Fields)) {
		fmt.Fprintf(&line, " %s=%v", k, l.opts.Fields[k])
	}
	line.WriteString(" " + msg + "\n")
	_, _ = l.buf.Write(line.Bytes())
}
