package verify_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/record"
	"github.com/signet-micro/signet/internal/testid"
	"github.com/signet-micro/signet/signing"
	"github.com/signet-micro/signet/verify"
)

// tamperCase changes one signed field of a signed service in place.
type tamperCase struct {
	name   string
	mutate func(svc *registry.Service)
	want   error
}

func setKey(key, value string) func(svc *registry.Service) {
	return func(svc *registry.Service) { svc.Nodes[0].Metadata[key] = value }
}

func deleteKey(key string) func(svc *registry.Service) {
	return func(svc *registry.Service) { delete(svc.Nodes[0].Metadata, key) }
}

func encodeDigest(d [32]byte) string { return base64.RawURLEncoding.EncodeToString(d[:]) }

// shiftTime moves a Unix-seconds key of the record by delta seconds.
func shiftTime(key string, delta int64) func(svc *registry.Service) {
	return func(svc *registry.Service) {
		v, err := strconv.ParseInt(svc.Nodes[0].Metadata[key], 10, 64)
		if err != nil {
			panic(err)
		}
		svc.Nodes[0].Metadata[key] = strconv.FormatInt(v+delta, 10)
	}
}

// flipMiddle replaces the middle character of a base64url value with
// another, keeping the value decodable.
func flipMiddle(key string) func(svc *registry.Service) {
	return func(svc *registry.Service) {
		v := []byte(svc.Nodes[0].Metadata[key])
		i := len(v) / 2
		if v[i] == 'A' {
			v[i] = 'B'
		} else {
			v[i] = 'A'
		}
		svc.Nodes[0].Metadata[key] = string(v)
	}
}

// tamperCases lists one case per signed field of the fixture's service.
func tamperCases(t *testing.T, f *fixture, signed *registry.Service) []tamperCase {
	otherDigest := record.DigestEndpoints([]*registry.Endpoint{{Name: "Rogue.Exfiltrate"}})
	otherMetadata := record.DigestMetadata(map[string]string{"owner": "attacker"})

	otherRecord := f.sign(t, testid.Service("greeter", "greeter-9", "10.0.0.9:9000"))
	otherSig := otherRecord.Nodes[0].Metadata[record.KeySignature]

	sameKeyToken, err := f.issuer.Issue(signing.Identity{
		Subject: "greeter", NodeKey: f.creds.Key.Public().(ed25519.PublicKey), Services: []string{"greeter"}, Lifetime: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	otherNode := f.issuer.Node(t, "greeter", []string{"greeter"}, nil, time.Hour)

	cases := []tamperCase{
		{"service/allowed-name", func(s *registry.Service) { s.Name = "greeter-admin" }, verify.ErrBadSignature},
		{"service/not-allowed-name", func(s *registry.Service) { s.Name = "billing" }, verify.ErrNotAllowed},
		{"service/case", func(s *registry.Service) { s.Name = "Greeter" }, verify.ErrNotAllowed},
		{"version/changed", func(s *registry.Service) { s.Version = "1.2.1" }, verify.ErrBadSignature},
		{"version/empty", func(s *registry.Service) { s.Version = "" }, verify.ErrBadSignature},
		{"version/latest", func(s *registry.Service) { s.Version = "latest" }, verify.ErrBadSignature},
		{"node-id/changed", func(s *registry.Service) { s.Nodes[0].Id = "greeter-2" }, verify.ErrBadSignature},
		{"node-id/suffix", func(s *registry.Service) { s.Nodes[0].Id += " " }, verify.ErrBadSignature},
		{"node-id/empty", func(s *registry.Service) { s.Nodes[0].Id = "" }, verify.ErrBadSignature},
		{"address/host", func(s *registry.Service) { s.Nodes[0].Address = "10.0.0.2:9000" }, verify.ErrBadSignature},
		{"address/port", func(s *registry.Service) { s.Nodes[0].Address = "10.0.0.1:9001" }, verify.ErrBadSignature},
		{"address/no-port", func(s *registry.Service) { s.Nodes[0].Address = "10.0.0.1" }, verify.ErrBadSignature},
		{"address/ipv6", func(s *registry.Service) { s.Nodes[0].Address = "[::ffff:10.0.0.1]:9000" }, verify.ErrBadSignature},
		{"address/host-name", func(s *registry.Service) { s.Nodes[0].Address = "attacker.example:9000" }, verify.ErrBadSignature},
		{"address/empty", func(s *registry.Service) { s.Nodes[0].Address = "" }, verify.ErrMalformed},
		{"address/garbage", func(s *registry.Service) { s.Nodes[0].Address = "10.0.0.1:9000/evil" }, verify.ErrMalformed},
		{"metadata/added", setKey("extra", "1"), verify.ErrBadSignature},
		{"metadata/added-empty", setKey("extra", ""), verify.ErrBadSignature},
		{"metadata/added-topic", setKey("topic", "orders"), verify.ErrBadSignature},
		{"metadata/added-own-prefix", setKey(record.Prefix+"extra", "1"), verify.ErrMalformed},
		{"endpoints-digest/other", setKey(record.KeyEndpointsDigest, encodeDigest(otherDigest)), verify.ErrBadSignature},
		{"endpoints-digest/flipped", flipMiddle(record.KeyEndpointsDigest), verify.ErrBadSignature},
		{"endpoints-digest/removed", deleteKey(record.KeyEndpointsDigest), verify.ErrMalformed},
		{"metadata-digest/other", setKey(record.KeyMetadataDigest, encodeDigest(otherMetadata)), verify.ErrBadSignature},
		{"metadata-digest/flipped", flipMiddle(record.KeyMetadataDigest), verify.ErrBadSignature},
		{"metadata-digest/removed", deleteKey(record.KeyMetadataDigest), verify.ErrMalformed},
		{"iat/earlier", shiftTime(record.KeyIssuedAt, -1), verify.ErrBadSignature},
		{"iat/later", shiftTime(record.KeyIssuedAt, 1), verify.ErrBadSignature},
		{"iat/removed", deleteKey(record.KeyIssuedAt), verify.ErrMalformed},
		{"exp/earlier", shiftTime(record.KeyExpiry, -1), verify.ErrBadSignature},
		{"exp/later", shiftTime(record.KeyExpiry, 1), verify.ErrBadSignature},
		{"exp/much-later", shiftTime(record.KeyExpiry, 1800), verify.ErrBadSignature},
		{"exp/past-token", shiftTime(record.KeyExpiry, 7200), verify.ErrRecordOutlivesToken},
		{"exp/removed", deleteKey(record.KeyExpiry), verify.ErrMalformed},
		{"signature/flipped", flipMiddle(record.KeySignature), verify.ErrBadSignature},
		{"signature/other-record", setKey(record.KeySignature, otherSig), verify.ErrBadSignature},
		{"signature/removed", deleteKey(record.KeySignature), verify.ErrMalformed},
		{"version-key/2", setKey(record.KeyVersion, "2"), verify.ErrMalformed},
		{"token/same-key-reissued", setToken(sameKeyToken), verify.ErrBadSignature},
		{"token/other-node", setToken(otherNode.Token), verify.ErrBadSignature},
		{"token/parts-removed", deleteKey(record.KeyTokenParts), verify.ErrMalformed},
	}

	for _, k := range slices.Sorted(maps.Keys(signed.Nodes[0].Metadata)) {
		if record.IsOwnKey(k) {
			continue
		}
		v := signed.Nodes[0].Metadata[k]
		cases = append(cases,
			tamperCase{"metadata/" + k + "/changed", setKey(k, v+"x"), verify.ErrBadSignature},
			tamperCase{"metadata/" + k + "/emptied", setKey(k, ""), verify.ErrBadSignature},
			tamperCase{"metadata/" + k + "/removed", deleteKey(k), verify.ErrBadSignature},
			tamperCase{"metadata/" + k + "/renamed", func(s *registry.Service) {
				delete(s.Nodes[0].Metadata, k)
				s.Nodes[0].Metadata[k+"x"] = v
			}, verify.ErrBadSignature},
			tamperCase{"metadata/" + k + "/upper-case-key", func(s *registry.Service) {
				delete(s.Nodes[0].Metadata, k)
				s.Nodes[0].Metadata[strings.ToUpper(k)] = v
			}, verify.ErrBadSignature},
		)
	}

	token := f.creds.Token
	parts, err := record.SplitToken(token)
	if err != nil {
		t.Fatal(err)
	}
	for i := range parts {
		cases = append(cases, tamperCase{fmt.Sprintf("token/part-%d", i), setToken(tamperToken(t, token, i)), verify.ErrTokenSignature})
	}
	return cases
}

// setToken replaces the record's token parts with those of token.
func setToken(token string) func(svc *registry.Service) {
	return func(svc *registry.Service) {
		md := svc.Nodes[0].Metadata
		for k := range md {
			if strings.HasPrefix(k, record.KeyTokenPartPrefix) {
				delete(md, k)
			}
		}
		parts, err := record.SplitToken(token)
		if err != nil {
			panic(err)
		}
		md[record.KeyTokenParts] = strconv.Itoa(len(parts))
		for i, p := range parts {
			md[record.TokenPartKey(i)] = p
		}
	}
}

// tamperToken returns token with one base64url character of token part
// part replaced so that the token still parses: the header keeps its alg
// and kid, the claims still decode, and the signature is still 64 bytes.
// Only the issuer's signature can then tell the change. It tries the
// middle of the part first.
func tamperToken(t *testing.T, token string, part int) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	lo := part * record.MaxValueLen
	hi := min(lo+record.MaxValueLen, len(token))
	mid := lo + (hi-lo)/2

	for i := range hi - lo {
		p := lo + (mid-lo+i)%(hi-lo)
		if token[p] == '.' || p+1 == len(token) || token[p+1] == '.' {
			continue // the last character of a segment may carry padding bits
		}
		for _, c := range []byte(alphabet) {
			if c == token[p] {
				continue
			}
			candidate := token[:p] + string(c) + token[p+1:]
			if stillParses(token, candidate) {
				return candidate
			}
		}
	}
	t.Fatalf("no single-character change in token part %d keeps the token parseable", part)
	return ""
}

func stillParses(original, candidate string) bool {
	enc := base64.RawURLEncoding.Strict()
	was, now := strings.Split(original, "."), strings.Split(candidate, ".")
	if len(now) != 3 {
		return false
	}

	var wasHeader, nowHeader map[string]any
	h, err := enc.DecodeString(now[0])
	if err != nil || json.Unmarshal(h, &nowHeader) != nil {
		return false
	}
	h, _ = enc.DecodeString(was[0])
	_ = json.Unmarshal(h, &wasHeader)
	if nowHeader["alg"] != wasHeader["alg"] || nowHeader["kid"] != wasHeader["kid"] {
		return false
	}

	payload, err := enc.DecodeString(now[1])
	if err != nil || json.Unmarshal(payload, &signing.Claims{}) != nil {
		return false
	}
	sig, err := enc.DecodeString(now[2])
	return err == nil && len(sig) == 64
}

func TestTamperEachField(t *testing.T) {
	f := newFixture(t)
	signed := f.sign(t, service())
	if _, err := f.verifier.VerifyNode(signed.Name, signed.Version, signed.Nodes[0]); err != nil {
		t.Fatalf("genuine node rejected: %v", err)
	}
	if n, _ := strconv.Atoi(signed.Nodes[0].Metadata[record.KeyTokenParts]); n < 2 {
		t.Fatalf("the fixture token fits in %d part; the token-part cases need at least 2", n)
	}

	cases := tamperCases(t, f, signed)
	t.Logf("%d tamper cases", len(cases))
	for _, tc := range cases {
		for _, warm := range []bool{false, true} {
			name := tc.name + "/cold"
			if warm {
				name = tc.name + "/warm"
			}
			t.Run(name, func(t *testing.T) {
				v := f.newVerifier(t)
				if warm {
					if _, err := v.VerifyNode(signed.Name, signed.Version, signed.Nodes[0]); err != nil {
						t.Fatalf("genuine node rejected: %v", err)
					}
				}

				svc := testid.CloneService(signed)
				tc.mutate(svc)
				_, err := v.VerifyNode(svc.Name, svc.Version, svc.Nodes[0])
				wantReason(t, err, tc.want)
				wantNoSecret(t, err.Error(), f.creds.Token)

				// A rejection must not poison the cache for the genuine node.
				if _, err := v.VerifyNode(signed.Name, signed.Version, signed.Nodes[0]); err != nil {
					t.Fatalf("genuine node rejected after the tampered one: %v", err)
				}
			})
		}
	}
}

func TestTamperLongTokenParts(t *testing.T) {
	f := newFixture(t)
	services := []string{"greeter"}
	for i := range 60 {
		services = append(services, fmt.Sprintf("padding-service-%02d-*", i))
	}
	f.creds = f.issuer.Node(t, "greeter", services, nil, time.Hour)
	f.signer = testid.Signer(t, f.creds, f.clock.Now)

	signed := f.sign(t, service())
	n, _ := strconv.Atoi(signed.Nodes[0].Metadata[record.KeyTokenParts])
	if n < 3 {
		t.Fatalf("token fits in %d parts; this test needs at least 3", n)
	}

	parts, _ := record.SplitToken(f.creds.Token)
	for i := range parts {
		t.Run(fmt.Sprintf("part-%d", i), func(t *testing.T) {
			tampered := tamperToken(t, f.creds.Token, i)
			svc := testid.CloneService(signed)
			setToken(tampered)(svc)

			changed := 0
			for k, v := range svc.Nodes[0].Metadata {
				if signed.Nodes[0].Metadata[k] != v {
					changed++
				}
			}
			if changed != 1 {
				t.Fatalf("%d metadata values changed; the case must change only token part %d", changed, i)
			}

			_, err := f.newVerifier(t).VerifyNode(svc.Name, svc.Version, svc.Nodes[0])
			wantReason(t, err, verify.ErrTokenSignature)
		})
	}
}

func TestTamperRecordCopied(t *testing.T) {
	f := newFixture(t)
	signed := f.sign(t, service())
	genuine := signed.Nodes[0]

	cases := []struct {
		name    string
		service string
		node    *registry.Node
		want    error
	}{
		{"other-node-id", "greeter", &registry.Node{Id: "rogue-1", Address: genuine.Address, Metadata: maps.Clone(genuine.Metadata)}, verify.ErrBadSignature},
		{"other-node-and-address", "greeter", &registry.Node{Id: "rogue-1", Address: "10.6.6.6:9000", Metadata: maps.Clone(genuine.Metadata)}, verify.ErrBadSignature},
		{"other-allowed-service", "greeter-admin", testid.CloneNode(genuine), verify.ErrBadSignature},
		{"other-service", "billing", testid.CloneNode(genuine), verify.ErrNotAllowed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.verifier.VerifyNode(tc.service, signed.Version, tc.node)
			wantReason(t, err, tc.want)
		})
	}
}

func TestTamperSwappedAddresses(t *testing.T) {
	f := newFixture(t)
	svc := service()
	svc.Nodes = append(svc.Nodes, &registry.Node{Id: "greeter-2", Address: "10.0.0.2:9000", Metadata: maps.Clone(svc.Nodes[0].Metadata)})
	signed := f.sign(t, svc)

	for _, n := range signed.Nodes {
		if _, err := f.verifier.VerifyNode(signed.Name, signed.Version, n); err != nil {
			t.Fatalf("genuine node %s rejected: %v", n.Id, err)
		}
	}

	swapped := testid.CloneService(signed)
	swapped.Nodes[0].Address, swapped.Nodes[1].Address = swapped.Nodes[1].Address, swapped.Nodes[0].Address
	for _, n := range swapped.Nodes {
		_, err := f.verifier.VerifyNode(swapped.Name, swapped.Version, n)
		wantReason(t, err, verify.ErrBadSignature)
	}

	// Swapping the whole metadata instead of the address is the same
	// attack seen from the other side.
	swapped = testid.CloneService(signed)
	swapped.Nodes[0].Metadata, swapped.Nodes[1].Metadata = swapped.Nodes[1].Metadata, swapped.Nodes[0].Metadata
	for _, n := range swapped.Nodes {
		_, err := f.verifier.VerifyNode(swapped.Name, swapped.Version, n)
		wantReason(t, err, verify.ErrBadSignature)
	}
}

func TestUnsignedNode(t *testing.T) {
	f := newFixture(t)
	svc := service()

	for name, node := range map[string]*registry.Node{
		"go-micro-metadata": svc.Nodes[0],
		"nil-metadata":      {Id: "n1", Address: "10.0.0.1:9000"},
		"empty-metadata":    {Id: "n1", Address: "10.0.0.1:9000", Metadata: map[string]string{}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := f.verifier.VerifyNode(svc.Name, svc.Version, node)
			wantReason(t, err, verify.ErrUnsigned)
		})
	}

	t.Run("nil-node", func(t *testing.T) {
		_, err := f.verifier.VerifyNode(svc.Name, svc.Version, nil)
		wantReason(t, err, verify.ErrMalformed)
	})
}

func TestReplayAfterExpiry(t *testing.T) {
	f := newFixture(t)
	signed := f.sign(t, service())
	node := signed.Nodes[0]
	expiry := start.Add(signing.DefaultRecordTTL)

	cold := f.newVerifier(t)
	if _, err := f.verifier.VerifyNode(signed.Name, signed.Version, node); err != nil {
		t.Fatalf("genuine node rejected: %v", err)
	}

	// The leeway extends the window: a record is accepted until its expiry
	// plus the leeway, and not from then on.
	f.clock.Advance(expiry.Add(verify.DefaultLeeway).Sub(f.clock.Now()) - time.Second)
	if _, err := f.verifier.VerifyNode(signed.Name, signed.Version, node); err != nil {
		t.Fatalf("record rejected within the leeway after its expiry: %v", err)
	}

	f.clock.Advance(time.Second)
	for name, v := range map[string]*verify.Verifier{"cached": f.verifier, "uncached": cold} {
		_, err := v.VerifyNode(signed.Name, signed.Version, node)
		wantReason(t, err, verify.ErrRecordExpired)
		if !strings.Contains(err.Error(), "expired at") {
			t.Errorf("%s: error %q does not say when the record expired", name, err)
		}
	}

	// A replay long after expiry, with the token still valid, is rejected
	// the same way.
	f.clock.Advance(30 * time.Minute)
	_, err := f.verifier.VerifyNode(signed.Name, signed.Version, node)
	wantReason(t, err, verify.ErrRecordExpired)
}

func TestForgedRecordNotAllowed(t *testing.T) {
	f := newFixture(t)
	svc := service()
	svc.Name = "billing"

	// The signer rejects the service, so the record is built by hand with
	// the node's own key and token.
	if _, _, err := f.signer.Sign(svc); err == nil {
		t.Fatal("Signer signed a service its token does not allow")
	}
	node := testid.ForgeNode(t, f.forged(5*time.Minute), svc, svc.Nodes[0])
	_, err := f.verifier.VerifyNode(svc.Name, svc.Version, node)
	wantReason(t, err, verify.ErrNotAllowed)
	if !strings.Contains(err.Error(), `"billing"`) {
		t.Errorf("error %q does not name the service", err)
	}
}

func TestBrokerTopic(t *testing.T) {
	f := newFixture(t)
	creds := f.issuer.Node(t, "events", []string{signing.BrokerService}, []string{"events.*"}, time.Hour)
	signer := testid.Signer(t, creds, f.clock.Now)
	forged := testid.Forged{Key: creds.Key, Token: creds.Token, IssuedAt: start, Expiry: start.Add(5 * time.Minute)}

	broker := func(topic string) *registry.Service {
		md := map[string]string{"secure": "false"}
		if topic != "" {
			md[signing.TopicMetadataKey] = topic
		}
		return &registry.Service{
			Name:  signing.BrokerService,
			Nodes: []*registry.Node{{Id: "sub-" + topic, Address: "127.0.0.1:40000", Metadata: md}},
		}
	}

	signed, _, err := signer.Sign(broker("events.created"))
	if err != nil {
		t.Fatalf("Sign broker node for an allowed topic: %v", err)
	}
	if _, err := f.verifier.VerifyNode(signing.BrokerService, "", signed.Nodes[0]); err != nil {
		t.Fatalf("genuine broker node rejected: %v", err)
	}

	if _, _, err := signer.Sign(broker("orders")); err == nil {
		t.Fatal("Signer signed a broker node for a topic outside the topics claim")
	}

	for _, topic := range []string{"orders", "events", "Events.created", ""} {
		t.Run("forged/"+topic, func(t *testing.T) {
			svc := broker(topic)
			node := testid.ForgeNode(t, forged, svc, svc.Nodes[0])
			_, err := f.verifier.VerifyNode(svc.Name, svc.Version, node)
			wantReason(t, err, verify.ErrNotAllowed)
		})
	}

	t.Run("genuine-topic-changed", func(t *testing.T) {
		node := testid.CloneNode(signed.Nodes[0])
		node.Metadata[signing.TopicMetadataKey] = "orders"
		_, err := f.verifier.VerifyNode(signing.BrokerService, "", node)
		wantReason(t, err, verify.ErrNotAllowed)
	})

	t.Run("genuine-topic-other-allowed", func(t *testing.T) {
		node := testid.CloneNode(signed.Nodes[0])
		node.Metadata[signing.TopicMetadataKey] = "events.deleted"
		_, err := f.verifier.VerifyNode(signing.BrokerService, "", node)
		wantReason(t, err, verify.ErrBadSignature)
	})

	// A node identity allowed the broker service but no topic cannot
	// serve as a subscriber at all.
	t.Run("no-topics-claim", func(t *testing.T) {
		plain := f.issuer.Node(t, "plain", []string{signing.BrokerService}, nil, time.Hour)
		svc := broker("events.created")
		node := testid.ForgeNode(t, testid.Forged{Key: plain.Key, Token: plain.Token, IssuedAt: start, Expiry: start.Add(time.Minute)}, svc, svc.Nodes[0])
		_, err := f.verifier.VerifyNode(svc.Name, svc.Version, node)
		wantReason(t, err, verify.ErrNotAllowed)
	})
}

func TestForgeMatchesSigner(t *testing.T) {
	// testid.ForgeNode builds records from the wire format alone. When its
	// output equals the signer's, the tests that rely on forged records
	// exercise the same format the signer writes.
	f := newFixture(t)
	svc := service()
	signed := f.sign(t, svc)

	forged := testid.ForgeNode(t, f.forged(signing.DefaultRecordTTL), svc, svc.Nodes[0])
	if !maps.Equal(forged.Metadata, signed.Nodes[0].Metadata) {
		t.Fatalf("forged record differs from the signer's:\n forged %v\n signed %v", forged.Metadata, signed.Nodes[0].Metadata)
	}
}
