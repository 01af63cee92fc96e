package operations

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go-micro.dev/v4/logger"
	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/record"
	"github.com/signet-micro/signet/internal/testid"
	signet "github.com/signet-micro/signet/registry"
	"github.com/signet-micro/signet/signing"
	"github.com/signet-micro/signet/verify"
)

// heartbeatInterval is how often envNode.heartbeatUntil registers. The
// go-micro server re-registers every 30 s; the tests go faster.
const heartbeatInterval = 50 * time.Millisecond

// envNode is a node configured as a deployment configures it, through
// registry.FromLookup with MICRO_REGISTRY_SIGNING_KEY_FILE and
// MICRO_REGISTRY_IDENTITY_TOKEN_FILE. Those files are checked at most once
// a second, at a registration, so the tests register repeatedly until a
// change of a file shows.
type envNode struct {
	service   string
	id        string
	address   string
	key       ed25519.PrivateKey
	keyPEM    []byte
	tokenPath string
	reg       *signet.Registry
	log       *recordingLogger
	round     int
}

// startEnvNode writes a node key and a token from issuer with lifetime
// into files, builds the node's wrapper from the environment variables
// that name them, registers the node, and returns it with the token.
func startEnvNode(t *testing.T, b *target, service string, issuer *issuerKey, lifetime time.Duration) (*envNode, string) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := signing.MarshalPrivateKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyPath, tokenPath := filepath.Join(dir, "node.key"), filepath.Join(dir, "node.jwt")
	replaceFile(t, keyPath, keyPEM, 0o600)
	token, _ := issuer.token(t, key.Public().(ed25519.PublicKey), service, lifetime)
	replaceFile(t, tokenPath, []byte(token+"\n"), 0o600)

	env := map[string]string{
		signet.EnvTrustBundle:             string(jwks(t, issuer)),
		signet.EnvSigningKey + "_FILE":    keyPath,
		signet.EnvIdentityToken + "_FILE": tokenPath,
	}
	log := newRecordingLogger()
	reg, err := signet.FromLookup(lookupIn(env), b.connect(t), signet.WithLogger(log))
	if err != nil {
		t.Fatalf("building the node's wrapper from %v: %v", env, err)
	}

	n := &envNode{service: service, id: service + "-1", address: "127.0.0.1:19101", key: key, keyPEM: keyPEM, tokenPath: tokenPath, reg: reg, log: log, round: 1}
	n.register(t)
	t.Cleanup(func() {
		if err := reg.Deregister(n.registration()); err != nil {
			t.Logf("deregistering node %s at cleanup: %v", n.id, err)
		}
	})
	return n, token
}

// lookupIn returns a function with the signature of os.LookupEnv that
// reads env.
func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

func (n *envNode) registration() *registry.Service {
	return &registry.Service{Name: n.service, Version: "latest", Nodes: []*registry.Node{{
		Id:       n.id,
		Address:  n.address,
		Metadata: map[string]string{"server": "mucp", "round": strconv.Itoa(n.round)},
	}}}
}

func (n *envNode) register(t *testing.T) {
	t.Helper()
	if err := n.reg.Register(n.registration(), registry.RegisterTTL(registerTTL)); err != nil {
		t.Fatalf("registering node %s: %v", n.id, err)
	}
}

// heartbeatUntil registers the node every heartbeatInterval until cond
// returns true, and fails the test with what after pollTimeout.
func (n *envNode) heartbeatUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for {
		n.register(t)
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v of heartbeats waiting for %s", pollTimeout, what)
		}
		time.Sleep(heartbeatInterval)
	}
}

// storedToken returns the identity token that a stored record carries in
// its signet-tok-N values, or "" when it carries none.
func storedToken(md map[string]string) string {
	signed, err := record.Parse(md)
	if err != nil {
		return ""
	}
	return signed.Token
}

// verifyStored verifies node id of service as the server stores it.
func verifyStored(t *testing.T, b *target, v *verify.Verifier, service, id, address string) (*verify.Record, error) {
	t.Helper()
	md, ok := b.stored(t, service)[id]
	if !ok {
		t.Fatalf("the %s server stores no node %s of %s", b.name, id, service)
	}
	return v.VerifyNode(service, "latest", &registry.Node{Id: id, Address: address, Metadata: md})
}

// testTokenRenewal renews a node's token file before the old token
// expires, and checks that the next heartbeat re-signs the record with
// the new token and that the node still verifies after the old token's
// expiry.
func testTokenRenewal(t *testing.T, b *target) {
	service := uniqueName("renewal")
	issuer := newIssuerKey(t, "ops-renewal", time.Now)
	n, oldToken := startEnvNode(t, b, service, issuer, 5*time.Minute)
	oldJTI := tokenID(t, oldToken)
	oldMetadata := waitStored(t, b, service, func(_ string, md map[string]string) bool { return storedToken(md) == oldToken }, n.id)[n.id]

	clock := testid.NewClock(time.Now())
	verifier, err := verify.New(verify.WithBundle(bundleOf(t, issuer)), verify.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	client, err := signet.New(b.connect(t), signet.WithVerifier(verifier), signet.WithClock(clock.Now), signet.WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := verifyStored(t, b, verifier, service, n.id, n.address); err != nil || rec.Identity.TokenID != oldJTI {
		t.Fatalf("the first record: %v, %+v; want one that verifies with jti %s", err, rec, oldJTI)
	}

	// The renewal job writes a new token for the same key.
	newToken, newJTI := issuer.token(t, n.key.Public().(ed25519.PublicKey), service, time.Hour)
	replaceFile(t, n.tokenPath, []byte(newToken+"\n"), 0o600)
	n.heartbeatUntil(t, "a record with the renewed token", func() bool {
		return storedToken(b.stored(t, service)[n.id]) == newToken
	})

	newMetadata := b.stored(t, service)[n.id]
	if newMetadata[record.TokenPartKey(0)] == oldMetadata[record.TokenPartKey(0)] {
		t.Errorf("%s did not change with the renewal", record.TokenPartKey(0))
	}
	if newMetadata[record.KeySignature] == oldMetadata[record.KeySignature] {
		t.Errorf("%s did not change with the renewal", record.KeySignature)
	}
	if got := n.log.matching(logger.InfoLevel, "reloaded identity token", map[string]string{"file": n.tokenPath}); len(got) == 0 {
		t.Errorf("no log line reports the reload of %s:\n%s", n.tokenPath, n.log.text())
	}
	rec, err := verifyStored(t, b, verifier, service, n.id, n.address)
	if err != nil {
		t.Fatalf("the renewed record does not verify: %v", err)
	}
	if rec.Identity.TokenID != newJTI {
		t.Errorf("the renewed record verifies with jti %s, want %s", rec.Identity.TokenID, newJTI)
	}

	// Past the old token's expiry, the old record fails and the renewed
	// one verifies.
	clock.Advance(6 * time.Minute)
	_, err = verifier.VerifyNode(service, "latest", &registry.Node{Id: n.id, Address: n.address, Metadata: oldMetadata})
	if !errors.Is(err, verify.ErrTokenExpired) && !errors.Is(err, verify.ErrRecordExpired) {
		t.Errorf("the record with the old token, after its expiry: %v, want an expired token or record", err)
	}
	if rec, err := verifyStored(t, b, verifier, service, n.id, n.address); err != nil || rec.Identity.TokenID != newJTI {
		t.Errorf("the renewed record after the old token's expiry: %v, %+v; want one that verifies with jti %s", err, rec, newJTI)
	}
	expectLookup(t, client, service, n.id)
}

// testTokenFileBroken replaces a node's token file with garbage and then
// removes it. The node keeps signing with the last good token, and each
// failure is logged once with the file's path and no secret.
func testTokenFileBroken(t *testing.T, b *target) {
	service := uniqueName("broken-token")
	issuer := newIssuerKey(t, "ops-broken", time.Now)
	n, token := startEnvNode(t, b, service, issuer, time.Hour)
	jti := tokenID(t, token)
	waitStored(t, b, service, func(_ string, md map[string]string) bool { return storedToken(md) == token }, n.id)

	verifier, err := verify.New(verify.WithBundle(bundleOf(t, issuer)))
	if err != nil {
		t.Fatal(err)
	}
	stillSigned := func(step string) {
		t.Helper()
		rec, err := verifyStored(t, b, verifier, service, n.id, n.address)
		if err != nil {
			t.Fatalf("%s: the stored record does not verify: %v", step, err)
		}
		if rec.Identity.TokenID != jti {
			t.Errorf("%s: the stored record verifies with jti %s, want the last good token's %s", step, rec.Identity.TokenID, jti)
		}
	}

	replaceFile(t, n.tokenPath, []byte("not a token\n"), 0o600)
	n.heartbeatUntil(t, "an error log line naming the garbage token file", func() bool {
		return len(fileErrors(n.log, n.tokenPath, "does not hold one JWT")) > 0
	})
	stillSigned("after garbage")

	if err := os.Remove(n.tokenPath); err != nil {
		t.Fatal(err)
	}
	n.heartbeatUntil(t, "an error log line naming the removed token file", func() bool {
		return len(fileErrors(n.log, n.tokenPath, "no such file")) > 0
	})

	// A changed node is signed anew, with the last good token.
	n.round++
	n.heartbeatUntil(t, "a record of the changed node", func() bool {
		return b.stored(t, service)[n.id]["round"] == strconv.Itoa(n.round)
	})
	stillSigned("after removal and a change")

	for _, step := range []string{"does not hold one JWT", "no such file"} {
		if got := fileErrors(n.log, n.tokenPath, step); len(got) != 1 {
			t.Errorf("log lines for %q = %d, want exactly one:\n%s", step, len(got), n.log.text())
		}
	}
	secrets := map[string]string{
		"the token":           token,
		"the token signature": token[strings.LastIndexByte(token, '.')+1:],
		"the node key":        strings.Split(string(n.keyPEM), "\n")[1],
	}
	for _, e := range n.log.all() {
		for what, secret := range secrets {
			if strings.Contains(e.String(), secret) {
				t.Errorf("a log line contains %s: %s", what, e)
			}
		}
	}
}

// fileErrors returns the error log lines that name the file path and whose
// error contains text.
func fileErrors(log *recordingLogger, path, text string) []logEntry {
	var out []logEntry
	for _, e := range log.matching(logger.ErrorLevel, "keeping the last good identity token", map[string]string{"file": path}) {
		if msg, _ := e.fields["error"].(string); strings.Contains(msg, text) {
			out = append(out, e)
		}
	}
	return out
}
