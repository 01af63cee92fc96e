package conformance

import (
	"encoding/base64"
	"errors"
	"fmt"
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

// tamperCase is one way an attacker alters genuine records before writing
// them to the backend.
type tamperCase struct {
	name string
	want error

	// late verifies with a clock past the record's expiry.
	late bool

	// keep registers the genuine first node through signet, and requires
	// it to stay verified next to the forgery.
	keep bool

	// forge returns the records the attacker writes, made from g, the
	// genuine signed service of two nodes. It must not modify g.
	forge func(t *testing.T, g *registry.Service) *registry.Service
}

// firstNode returns a deep copy of g with only its first node.
func firstNode(g *registry.Service) *registry.Service {
	c := testid.CloneService(g)
	c.Nodes = c.Nodes[:1]
	return c
}

// editFirst returns a forge function that applies edit to a copy of the
// first node's service.
func editFirst(edit func(s *registry.Service, md map[string]string)) func(*testing.T, *registry.Service) *registry.Service {
	return func(_ *testing.T, g *registry.Service) *registry.Service {
		s := firstNode(g)
		edit(s, s.Nodes[0].Metadata)
		return s
	}
}

// flip returns v with the character at i replaced by another base64url
// character.
func flip(v string, i int) string {
	c := byte('A')
	if v[i] == 'A' {
		c = 'B'
	}
	return v[:i] + string(c) + v[i+1:]
}

func b64(digest [32]byte) string { return base64.RawURLEncoding.EncodeToString(digest[:]) }

func addSeconds(v string, d int64) string {
	n, _ := strconv.ParseInt(v, 10, 64)
	return strconv.FormatInt(n+d, 10)
}

func tamperCases(tokenParts int) []tamperCase {
	cases := []tamperCase{
		{name: "service-name", want: verify.ErrBadSignature, forge: editFirst(func(s *registry.Service, _ map[string]string) {
			s.Name += "-moved"
		})},
		{name: "version", want: verify.ErrBadSignature, forge: editFirst(func(s *registry.Service, _ map[string]string) {
			s.Version = "1.0.1"
		})},
		{name: "node-id", want: verify.ErrBadSignature, forge: editFirst(func(s *registry.Service, _ map[string]string) {
			s.Nodes[0].Id += "-x"
		})},
		{name: "address", want: verify.ErrBadSignature, forge: editFirst(func(s *registry.Service, _ map[string]string) {
			s.Nodes[0].Address = "127.0.0.1:6666"
		})},
		{name: "metadata-value", want: verify.ErrBadSignature, forge: editFirst(func(_ *registry.Service, md map[string]string) {
			md["owner"] = "team-evil"
		})},
		{name: "metadata-added", want: verify.ErrBadSignature, forge: editFirst(func(_ *registry.Service, md map[string]string) {
			md["debug"] = "true"
		})},
		{name: "signet-v", want: verify.ErrMalformed, forge: editFirst(func(_ *registry.Service, md map[string]string) {
			md[record.KeyVersion] = "2"
		})},
		{name: "signet-sig", want: verify.ErrBadSignature, forge: editFirst(func(_ *registry.Service, md map[string]string) {
			md[record.KeySignature] = flip(md[record.KeySignature], 40)
		})},
		{name: "signet-iat", want: verify.ErrBadSignature, forge: editFirst(func(_ *registry.Service, md map[string]string) {
			md[record.KeyIssuedAt] = addSeconds(md[record.KeyIssuedAt], -1)
		})},
		{name: "signet-exp", want: verify.ErrBadSignature, forge: editFirst(func(_ *registry.Service, md map[string]string) {
			md[record.KeyExpiry] = addSeconds(md[record.KeyExpiry], 60)
		})},
		{name: "signet-eps", want: verify.ErrBadSignature, forge: editFirst(func(_ *registry.Service, md map[string]string) {
			md[record.KeyEndpointsDigest] = b64(record.DigestEndpoints(manyEndpoints(1)))
		})},
		{name: "signet-smd", want: verify.ErrBadSignature, forge: editFirst(func(_ *registry.Service, md map[string]string) {
			md[record.KeyMetadataDigest] = b64(record.DigestMetadata(map[string]string{"team": "evil"}))
		})},
		{name: "signet-tokn", want: verify.ErrMalformed, forge: editFirst(func(_ *registry.Service, md map[string]string) {
			md[record.KeyTokenParts] = addSeconds(md[record.KeyTokenParts], 1)
		})},
	}

	for i := 0; i < tokenParts; i++ {
		cases = append(cases, tamperCase{
			name: fmt.Sprintf("signet-tok-%d", i),
			want: verify.ErrTokenSignature,
			forge: func(t *testing.T, g *registry.Service) *registry.Service {
				s := firstNode(g)
				tamperTokenPart(t, s.Nodes[0].Metadata, i)
				return s
			},
		})
	}

	return append(cases,
		tamperCase{name: "unsigned", want: verify.ErrUnsigned, forge: editFirst(func(_ *registry.Service, md map[string]string) {
			for k := range md {
				if record.IsOwnKey(k) {
					delete(md, k)
				}
			}
		})},
		tamperCase{name: "replay-expired", want: verify.ErrRecordExpired, late: true, forge: func(_ *testing.T, g *registry.Service) *registry.Service {
			return firstNode(g)
		}},
		tamperCase{name: "copy-service", want: verify.ErrBadSignature, forge: editFirst(func(s *registry.Service, _ map[string]string) {
			s.Name += "-copy"
		})},
		tamperCase{name: "copy-service-denied", want: verify.ErrNotAllowed, forge: editFirst(func(s *registry.Service, _ map[string]string) {
			s.Name = "denied-copy"
		})},
		tamperCase{name: "copy-node-id", want: verify.ErrBadSignature, keep: true, forge: editFirst(func(s *registry.Service, _ map[string]string) {
			s.Nodes[0].Id += "-copy"
		})},
		tamperCase{name: "swap-addresses", want: verify.ErrBadSignature, forge: func(_ *testing.T, g *registry.Service) *registry.Service {
			s := testid.CloneService(g)
			s.Nodes[0].Address, s.Nodes[1].Address = s.Nodes[1].Address, s.Nodes[0].Address
			return s
		}},
	)
}

// tamperTokenPart changes token part i of md alone, so that the token's
// JWS signature no longer verifies. It changes a character of the
// signature when part i contains one, and else a hex digit of the "jti"
// claim, encoding the payload again. It fails the test when no such change
// stays within part i.
func tamperTokenPart(t *testing.T, md map[string]string, part int) {
	t.Helper()
	n, err := strconv.Atoi(md[record.KeyTokenParts])
	if err != nil {
		t.Fatal(err)
	}
	var token string
	for i := 0; i < n; i++ {
		token += md[record.TokenPartKey(i)]
	}
	start, end := part*record.MaxValueLen, min((part+1)*record.MaxValueLen, len(token))
	payloadStart, sigStart := strings.IndexByte(token, '.')+1, strings.LastIndexByte(token, '.')+1

	forged := ""
	if p := max(start, sigStart); p < end && p < len(token)-1 {
		// The last character of the signature carries padding bits, so
		// it is never the one changed.
		forged = flip(token, p)
	} else {
		enc := base64.RawURLEncoding
		payload, err := enc.DecodeString(token[payloadStart : sigStart-1])
		if err != nil {
			t.Fatal(err)
		}
		at := strings.Index(string(payload), `"jti":"`) + len(`"jti":"`)
		for k := 0; k < 32 && forged == ""; k++ {
			changed := []byte(string(payload))
			if changed[at+k] == '0' {
				changed[at+k] = '1'
			} else {
				changed[at+k] = '0'
			}
			candidate := token[:payloadStart] + enc.EncodeToString(changed) + token[sigStart-1:]
			if differsOnlyIn(token, candidate, start, end) {
				forged = candidate
			}
		}
	}
	if forged == "" || !differsOnlyIn(token, forged, start, end) {
		t.Fatalf("cannot change token part %d of %d alone; the token layout is not covered", part, n)
	}

	parts, err := record.SplitToken(forged)
	if err != nil {
		t.Fatal(err)
	}
	md[record.TokenPartKey(part)] = parts[part]
}

func differsOnlyIn(a, b string, start, end int) bool {
	if len(a) != len(b) || a == b {
		return false
	}
	for i := range a {
		if a[i] != b[i] && (i < start || i >= end) {
			return false
		}
	}
	return true
}

// testTamper writes each tampered record through a plain registry of the
// backend. After the backend's round trip, VerifyNode must reject the raw
// node with the case's sentinel error, and neither GetService nor Watch
// through signet may return it.
func testTamper(t *testing.T, f *fixture) {
	// Patterns that nothing registers make the token longer than one
	// metadata value, so that it is split and each part is tampered with.
	patterns := []string{"tp-*"}
	creds := f.identity(t, "tamper", patterns, nil)
	for len(creds.Token) <= record.MaxValueLen {
		patterns = append(patterns, fmt.Sprintf("unused-pattern-%02d", len(patterns)))
		creds = f.identity(t, "tamper", patterns, nil)
	}
	markerCreds := f.identity(t, "marker", []string{"*"}, nil)
	signer := testid.Signer(t, creds, f.clock.Now)

	parts, err := record.SplitToken(creds.Token)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range tamperCases(len(parts)) {
		t.Run(c.name, func(t *testing.T) {
			base := service("tp-"+c.name, "1.0.0", "127.0.0.1:9001", "127.0.0.1:9002")
			for _, n := range base.Nodes {
				n.Metadata["owner"] = "team-a"
			}
			genuine, _, err := signer.Sign(base)
			if err != nil {
				t.Fatal(err)
			}
			if c.keep {
				f.register(t, creds, firstNode(base))
			}
			forged := c.forge(t, genuine)

			now, reader := f.clock.Now, f.reader
			if c.late {
				late := testid.NewClock(f.clock.Now().Add(signing.DefaultRecordTTL + verify.DefaultLeeway + time.Minute))
				now, reader = late.Now, f.wrap(t, f.b.reader, nil, late.Now)
			}
			watch := f.startWatch(t, f.b.reader, now, forged.Name, false)

			f.attack(t, forged)

			// A genuine node written after the forgery marks the point by
			// which the watchers have seen it.
			marker := service(forged.Name, "1.0.0", "127.0.0.1:9100")
			marker.Nodes[0].Id = forged.Name + "-marker"
			f.registerAt(t, markerCreds, marker, now)
			markerID := marker.Nodes[0].Id

			ids := make([]string, len(forged.Nodes))
			for i, n := range forged.Nodes {
				ids[i] = n.Id
			}
			f.report.add(tampersWritten, len(ids))
			rejected := map[string]bool{}
			for _, id := range ids {
				rejected[id] = true
			}

			raw := f.waitRaw(t, forged.Name, append([]string{markerID}, ids...)...)
			for _, id := range ids {
				svc, n := findNode(raw, "", id)
				_, err := reader.Verifier().VerifyNode(forged.Name, svc.Version, n)
				if !errors.Is(err, c.want) {
					t.Errorf("VerifyNode(%s %s node %s) after the %s round trip: %v, want an error wrapping %q", forged.Name, svc.Version, id, f.b.name, err, c.want)
					rejected[id] = false
				}
			}

			got := f.waitVerified(t, reader, forged.Name, markerID)
			for _, id := range ids {
				if _, n := findNode(got, "", id); n != nil {
					t.Errorf("GetService(%s) through signet returned the forged node %s at %s", forged.Name, id, n.Address)
					rejected[id] = false
				}
			}
			if c.keep {
				if _, n := findNode(got, "", genuine.Nodes[0].Id); n == nil {
					t.Errorf("GetService(%s) through signet dropped the genuine node %s next to its copy: %s", forged.Name, genuine.Nodes[0].Id, describe(got))
				}
			}

			out := watch.waitRaw(t, "the forged nodes and the marker", append([]string{markerID}, ids...)...)
			watch.waitOut(t, "the marker", markerID)
			for _, id := range ids {
				if nodes := resultNodes(out, id); len(nodes) > 0 {
					t.Errorf("the signet watcher returned the forged node %s of %s at %s", id, forged.Name, nodes[0].Address)
					rejected[id] = false
				}
			}

			for _, ok := range rejected {
				if ok {
					f.report.add(tampersRejected, 1)
				}
			}
		})
	}
}
