package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"time"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/record"
	"github.com/signet-micro/signet/signing"
	"github.com/signet-micro/signet/verify"
)

const (
	issuerKeyID = "demo-issuer"
	issuerName  = "signet-demo"

	tokenLifetime = 24 * time.Hour

	// replayAge is how long ago the replayed record was signed. It is past
	// the record's lifetime, signing.DefaultRecordTTL.
	replayAge = time.Hour

	// rogueTTL is the registration TTL of the rogue records, so that they
	// expire even if the demo cannot remove them. The etcd plugin (v1.2.0)
	// also crashes on a registration without a TTL.
	rogueTTL = 2 * time.Minute

	// rewriteGap bounds the wait between removing and writing a rogue
	// record again.
	rewriteGap = time.Second
)

// identities are the issuer, its trust bundle and the workload credentials
// of the demo.
type identities struct {
	bundle *verify.Bundle

	// greeter is the genuine greeter's key and token, allowed the service
	// greeter only. The token was issued two hours ago, so that it also
	// covers the record replayed in attack (d), signed an hour ago.
	greeter *signing.Credentials

	// billing is the key and token of another workload, allowed the
	// service billing only, that the attacker has stolen.
	billing *signing.Credentials
}

// newIdentities creates an issuer with a fresh Ed25519 key and the
// credentials it issues.
func newIdentities(now time.Time) (*identities, error) {
	issuerPub, issuerKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	bundle, err := verify.NewBundle(verify.IssuerKey{ID: issuerKeyID, Key: issuerPub})
	if err != nil {
		return nil, err
	}

	greeter, err := issue(issuerKey, now.Add(-2*replayAge), "greeter", []string{serviceName})
	if err != nil {
		return nil, err
	}
	billing, err := issue(issuerKey, now, "billing", []string{"billing"})
	if err != nil {
		return nil, err
	}
	return &identities{bundle: bundle, greeter: greeter, billing: billing}, nil
}

// issue returns credentials for a fresh node key with a token issued at
// issuedAt that allows services.
func issue(issuerKey ed25519.PrivateKey, issuedAt time.Time, subject string, services []string) (*signing.Credentials, error) {
	_, nodeKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}

	issuer := &signing.Issuer{Key: issuerKey, KeyID: issuerKeyID, Name: issuerName, Now: func() time.Time { return issuedAt }}
	token, err := issuer.Issue(signing.Identity{
		Subject:  subject,
		NodeKey:  nodeKey.Public().(ed25519.PublicKey),
		Services: services,
		Lifetime: tokenLifetime,
	})
	if err != nil {
		return nil, fmt.Errorf("issuing the %s token: %w", subject, err)
	}
	return signing.NewCredentials(nodeKey, token)
}

// attack is one rogue record the attacker writes into the backend.
type attack struct {
	label string // "a" to "d"

	// description is the record in words, for the report.
	description string

	// afterLookup is set for records written after the clients' first
	// lookup, which reach them only in watch results.
	afterLookup bool

	// service is the registration the attacker writes: the greeter
	// service with one rogue node.
	service *registry.Service
}

func (a *attack) node() *registry.Node { return a.service.Nodes[0] }

// buildAttacks returns the four rogue records, all pointing at rogueAddr.
// genuine is the genuine greeter's service as the backend returned it, with
// the genuine node only.
func buildAttacks(ids *identities, genuine *registry.Service, rogueAddr string, now time.Time) ([]*attack, error) {
	genuineNode := genuine.Nodes[0]
	rogueService := func(node *registry.Node) *registry.Service {
		return &registry.Service{Name: genuine.Name, Version: genuine.Version, Endpoints: genuine.Endpoints, Nodes: []*registry.Node{node}}
	}

	// (a) A node as the rpc server registers it, with no signature.
	unsigned := rogueService(&registry.Node{Id: serviceName + "-rogue-unsigned", Address: rogueAddr, Metadata: plainMetadata(genuineNode.Metadata)})

	// (b) The genuine node's metadata, signature and token included, under
	// a new node id and the rogue address. A new id keeps the genuine
	// record in place: in etcd the node id is the key, so reusing it would
	// overwrite the genuine record.
	copied := rogueService(&registry.Node{Id: serviceName + "-rogue-copy", Address: rogueAddr, Metadata: maps.Clone(genuineNode.Metadata)})

	// (c) A greeter record signed with the stolen billing key and token.
	// signing.Signer rejects it, so it is computed from the wire format.
	forgedNode := &registry.Node{Id: serviceName + "-rogue-billing", Address: rogueAddr, Metadata: plainMetadata(genuineNode.Metadata)}
	billingSigner, err := signing.NewSigner(ids.billing)
	if err != nil {
		return nil, err
	}
	if _, _, err := billingSigner.Sign(rogueService(forgedNode)); !errors.Is(err, signing.ErrNotAllowed) {
		return nil, fmt.Errorf("signet's Signer signed a greeter record with a billing identity (error %v); the demo expects it to reject the record", err)
	}
	forged, err := forgeNode(ids.billing, rogueService(forgedNode), forgedNode, now, now.Add(signing.DefaultRecordTTL))
	if err != nil {
		return nil, err
	}

	// (d) A record that the genuine greeter key signed an hour ago for the
	// address that the rogue server listens on now, replayed after it
	// expired.
	pastSigner, err := signing.NewSigner(ids.greeter, signing.WithSignerClock(func() time.Time { return now.Add(-replayAge) }))
	if err != nil {
		return nil, err
	}
	replayNode := &registry.Node{Id: serviceName + "-rogue-replay", Address: rogueAddr, Metadata: plainMetadata(genuineNode.Metadata)}
	replayed, _, err := pastSigner.Sign(rogueService(replayNode))
	if err != nil {
		return nil, fmt.Errorf("signing the record to replay: %w", err)
	}
	replayRecord, err := record.Parse(replayed.Nodes[0].Metadata)
	if err != nil {
		return nil, fmt.Errorf("reading the record to replay: %w", err)
	}
	expiry := time.Unix(replayRecord.Expiry, 0).UTC()

	return []*attack{
		{label: "a", description: fmt.Sprintf("unsigned node %s at %s", unsigned.Nodes[0].Id, rogueAddr), service: unsigned},
		{label: "b", description: fmt.Sprintf("copy of the genuine signed record as node %s, address changed to %s", copied.Nodes[0].Id, rogueAddr), service: copied},
		{label: "c", description: fmt.Sprintf("node %s at %s signed by hand with the stolen key and token of %q (allowed: billing; signet's Signer rejects it)", forgedNode.Id, rogueAddr, ids.billing.Claims.Subject), service: rogueService(forged), afterLookup: true},
		{label: "d", description: fmt.Sprintf("record the genuine greeter key signed %d minutes ago for %s (expired at %s UTC), replayed as node %s", int(replayAge.Minutes()), rogueAddr, expiry.Format(time.TimeOnly), replayNode.Id), service: replayed, afterLookup: true},
	}, nil
}

// plainMetadata returns md without signet's keys.
func plainMetadata(md map[string]string) map[string]string {
	out := make(map[string]string, len(md))
	for k, v := range md {
		if !record.IsOwnKey(k) {
			out[k] = v
		}
	}
	return out
}

// forgeNode returns a copy of node carrying a record of svc signed with
// creds for the window issuedAt to expiry, computed from the wire format
// without the checks of signing.Signer.
func forgeNode(creds *signing.Credentials, svc *registry.Service, node *registry.Node, issuedAt, expiry time.Time) (*registry.Node, error) {
	address, err := record.CanonicalAddress(node.Address)
	if err != nil {
		return nil, err
	}

	fields := record.Fields{
		Service:         svc.Name,
		Version:         svc.Version,
		NodeID:          node.Id,
		Address:         address,
		Metadata:        node.Metadata,
		EndpointsDigest: record.DigestEndpoints(svc.Endpoints),
		MetadataDigest:  record.DigestMetadata(svc.Metadata),
		IssuedAt:        issuedAt.Unix(),
		Expiry:          expiry.Unix(),
		TokenDigest:     record.DigestToken(creds.Token),
	}
	signed := record.Signed{
		Signature:       ed25519.Sign(creds.Key, fields.AppendCanonical(nil)),
		IssuedAt:        fields.IssuedAt,
		Expiry:          fields.Expiry,
		EndpointsDigest: fields.EndpointsDigest,
		MetadataDigest:  fields.MetadataDigest,
		Token:           creds.Token,
	}
	own, err := signed.Metadata()
	if err != nil {
		return nil, err
	}

	md := plainMetadata(node.Metadata)
	maps.Copy(md, own)
	return &registry.Node{Id: node.Id, Address: node.Address, Metadata: md}, nil
}

// attacker writes straight into the backend through a plain go-micro
// registry, as anyone with write access to it can.
type attacker struct {
	reg      registry.Registry
	injected []*registry.Service
}

// inject registers svc.
func (a *attacker) inject(svc *registry.Service) error {
	if err := a.reg.Register(svc, registry.RegisterTTL(rogueTTL)); err != nil {
		return fmt.Errorf("writing rogue node %s: %w", svc.Nodes[0].Id, err)
	}
	a.injected = append(a.injected, svc)
	return nil
}

// rewrite removes svc, waits until removed reports true or for at most
// rewriteGap, and registers svc again, so that watchers get a new delete
// and create result. Registering again alone would send nothing, because
// the etcd plugin and the memory registry skip a registration of an
// unchanged node. The wait keeps the two writes out of one etcd watch
// response, of which the etcd plugin returns only the first event.
func (a *attacker) rewrite(ctx context.Context, svc *registry.Service, removed func() bool) error {
	if err := a.reg.Deregister(svc); err != nil {
		return fmt.Errorf("removing rogue node %s: %w", svc.Nodes[0].Id, err)
	}
	deadline := time.Now().Add(rewriteGap)
	for !removed() && time.Now().Before(deadline) {
		if err := sleep(ctx, pollInterval); err != nil {
			return err
		}
	}
	if err := a.reg.Register(svc, registry.RegisterTTL(rogueTTL)); err != nil {
		return fmt.Errorf("writing rogue node %s: %w", svc.Nodes[0].Id, err)
	}
	return nil
}

// cleanup removes every record the attacker wrote.
func (a *attacker) cleanup() error {
	var errs []error
	for _, svc := range a.injected {
		if err := a.reg.Deregister(svc); err != nil {
			errs = append(errs, fmt.Errorf("removing rogue node %s: %w", svc.Nodes[0].Id, err))
		}
	}
	return errors.Join(errs...)
}
