package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go-micro.dev/v4/logger"
	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/verify"
)

const purgeSynopsis = `    signet purge [-yes [-force]] [-service LIST]

Removes the nodes that fail verification from the live registry, with
the same settings and checks as "signet audit". Without -yes it is a dry
run that lists what it would remove. With -yes it deregisters each failing
node through the backend, and prints and logs every removal.

Purge never removes a node that verifies:
  - right before each removal it looks the service up again and verifies
    the node once more, and keeps it when it now verifies or is gone;
  - it keeps a failing node whose node id a verifying node also uses,
    in any service, because the backends delete by node id;
  - it removes nothing when no node in the registry verifies, which more
    often means that its trust bundle, audience or clock differs from the
    services' than that every node is rogue; -force removes them anyway.
After each removal it checks that the node is gone.

With etcd, a rogue record written under the node id of a genuine node
replaces the genuine record, so removing the rogue one leaves the genuine
node missing until it re-registers a changed record: at the latest when
its signer renews the record, at half the record lifetime. With Consul,
node ids are Consul service ids, and deregistration goes through the agent
at MICRO_REGISTRY_ADDRESS, which can remove only what was registered
through it. The kubernetes plugin deregisters the pod named by $HOSTNAME
whatever node it is given, so purge -yes refuses to run on kubernetes.

Exits with status 0 when no failing node is left, 1 when failing nodes
remain (a dry run, or nodes kept), and 2 on an error.

Examples:
    $ signet purge                   # dry run
    $ signet purge -yes
    $ signet purge -yes -service greeter
`

// purgeBackends are the backends whose Deregister removes exactly the node
// it is given.
var purgeBackends = map[string]bool{"memory": true, "etcd": true, "consul": true}

// defaultRemovalTimeout bounds how long purge waits for a deregistered node
// to disappear from lookups. Consul applies an agent's deregistration to
// its catalog asynchronously.
const defaultRemovalTimeout = 5 * time.Second

// purgeRun holds the state of one purge: the backend, the verifier and the
// node ids of verified nodes.
type purgeRun struct {
	c        *command
	inner    registry.Registry
	verifier *verify.Verifier
	log      logger.Logger

	verifiedIDs map[string]bool // by nodeIDKey
}

// nodeIDKey returns the form under which backends store a node id. The
// go-micro etcd plugin stores node "a/b" under the key of node "a-b", so
// both ids name one record there.
func nodeIDKey(id string) string {
	return strings.ReplaceAll(id, "/", "-")
}

func (c *command) purge(args []string) int {
	flagSet := c.flags("purge", purgeSynopsis)
	yes := flagSet.Bool("yes", false, "remove the failing nodes; without it purge only lists them")
	force := flagSet.Bool("force", false, "with -yes, remove failing nodes even when no node in the registry verifies")
	var services listFlag
	flagSet.Var(&services, "service", "remove failing nodes of only these comma-separated service `names`")
	positional, status, ok := parse(flagSet, args)
	if !ok {
		return status
	}
	switch {
	case len(positional) > 0:
		return c.fail("purge", exitError, "unexpected argument %s; limit the purge to services with -service", printable(positional[0]))
	case *force && !*yes:
		return c.fail("purge", exitError, "-force needs -yes; a dry run removes nothing")
	}

	log := c.newLogger()
	inner, verifier, err := c.registryVerifier(log)
	if err != nil {
		return c.fail("purge", exitError, "%v", err)
	}
	if *yes && !purgeBackends[inner.String()] {
		return c.fail("purge", exitError, "the %s registry's Deregister does not remove exactly the node it is given, so purge -yes supports only memory, etcd and consul; run signet audit and remove the failing records with the backend's own tools",
			printable(inner.String()))
	}

	// All services are scanned, even with -service, so that no node id of
	// a verified node anywhere is deregistered.
	nodes, _, err := scanRegistry(inner, verifier, nil)
	if err != nil {
		return c.fail("purge", exitError, "%v", err)
	}

	p := &purgeRun{c: c, inner: inner, verifier: verifier, log: log, verifiedIDs: map[string]bool{}}
	only := map[string]bool{}
	for _, name := range services {
		only[name] = true
	}
	var candidates []*nodeStatus
	for _, n := range nodes {
		switch {
		case n.ok():
			p.verifiedIDs[nodeIDKey(n.node.Id)] = true
		case len(only) == 0 || only[n.service]:
			candidates = append(candidates, n)
		}
	}

	if len(candidates) == 0 {
		fmt.Fprintf(c.stderr, "signet purge: nothing to remove; no node of the selected services fails verification (%d nodes checked)\n", len(nodes))
		return exitOK
	}
	if !*yes {
		return p.dryRun(candidates)
	}
	if len(p.verifiedIDs) == 0 && !*force {
		return c.fail("purge", exitError, "no node in the registry verifies, so purge removes nothing: check that MICRO_REGISTRY_TRUST_BUNDLE, MICRO_REGISTRY_AUDIENCE and this machine's clock match the services', or give -force to remove all %d failing nodes", len(candidates))
	}
	return p.remove(candidates)
}

// dryRun lists the nodes that purge -yes would remove and those it would
// keep.
func (p *purgeRun) dryRun(candidates []*nodeStatus) int {
	removable := 0
	for _, n := range candidates {
		if p.verifiedIDs[nodeIDKey(n.node.Id)] {
			fmt.Fprintf(p.c.stdout, "would keep %s: a verified node has the same node id\n", describeNode(n))
			continue
		}
		fmt.Fprintf(p.c.stdout, "would remove %s\n", describeNode(n))
		removable++
	}
	fmt.Fprintf(p.c.stderr, "signet purge: dry run; %d of %d failing nodes would be removed. Run signet purge -yes to remove them.\n", removable, len(candidates))
	return exitInvalid
}

// remove deregisters the failing nodes that still fail right before their
// removal.
func (p *purgeRun) remove(candidates []*nodeStatus) int {
	removed, kept, verified, gone, failed := 0, 0, 0, 0, 0
	for _, n := range candidates {
		switch err := p.removeNode(n); {
		case errors.Is(err, errKept):
			kept++
		case errors.Is(err, errVerifiesNow):
			verified++
		case errors.Is(err, errGone):
			gone++
		case err != nil:
			failed++
			fmt.Fprintf(p.c.stderr, "signet purge: %v\n", err)
			p.logNode(logger.ErrorLevel, n, "signet purge: failed to remove a node that failed verification", err)
		default:
			removed++
		}
	}

	fmt.Fprintf(p.c.stderr, "signet purge: of %d failing nodes, removed %d, kept %d that share a verified node's id, kept %d that verify now, found %d gone, and failed to remove %d\n",
		len(candidates), removed, kept, verified, gone, failed)
	switch {
	case failed > 0:
		return exitError
	case kept > 0:
		return exitInvalid
	}
	return exitOK
}

// Reasons why removeNode removed nothing on purpose.
var (
	errKept        = errors.New("node kept: a verified node has its id")
	errVerifiesNow = errors.New("node kept: it verifies now")
	errGone        = errors.New("node gone")
)

// removeNode verifies n as the backend holds it now and deregisters it when
// it still fails and no verified node shares its id. It returns errKept,
// errVerifiesNow or errGone when it removed nothing on purpose.
func (p *purgeRun) removeNode(n *nodeStatus) error {
	if p.verifiedIDs[nodeIDKey(n.node.Id)] {
		fmt.Fprintf(p.c.stdout, "kept %s: a verified node has the same node id, and deregistering the id would remove that node too; remove the rogue record with the backend's own tools\n", describeNode(n))
		p.logNode(logger.WarnLevel, n, "signet purge: kept a failing node whose node id a verified node also has", nil)
		return errKept
	}

	current, err := p.recheck(n)
	if err != nil {
		return err
	}

	svc := &registry.Service{Name: n.service, Version: n.version, Nodes: []*registry.Node{{Id: n.node.Id}}}
	if err := p.inner.Deregister(svc); err != nil {
		return fmt.Errorf("deregistering %s: %w", describeNode(current), err)
	}
	if err := p.waitGone(current); err != nil {
		return err
	}

	fmt.Fprintf(p.c.stdout, "removed %s\n", describeNode(current))
	p.logNode(logger.InfoLevel, current, "signet purge: removed a node that failed verification", nil)
	return nil
}

// recheck looks n's service up again and returns the node's current status
// when it still fails. It returns errGone when no node with n's version and
// id is left, errVerifiesNow when none of them fails any more, and errKept
// when one still fails but a node with the same id verifies now.
func (p *purgeRun) recheck(n *nodeStatus) (*nodeStatus, error) {
	services, err := p.inner.GetService(n.service)
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		return nil, fmt.Errorf("looking up service %s again before removing node %s: %w", printable(n.service), printable(n.node.Id), err)
	}

	var current, verified *nodeStatus
	for _, svc := range services {
		if svc == nil {
			continue
		}
		for _, node := range svc.Nodes {
			if node == nil || nodeIDKey(node.Id) != nodeIDKey(n.node.Id) {
				continue
			}
			rec, err := p.verifier.VerifyNode(n.service, svc.Version, node)
			status := &nodeStatus{service: n.service, version: svc.Version, node: node, record: rec, err: err}
			switch {
			case err == nil:
				verified = status
			case svc.Version == n.version && node.Id == n.node.Id:
				current = status
			}
		}
	}

	switch {
	case current != nil && verified != nil:
		fmt.Fprintf(p.c.stdout, "kept %s: node %s with the same id verifies now, and deregistering the id could remove it too\n", describeNode(current), printable(verified.node.Id))
		p.logNode(logger.WarnLevel, current, "signet purge: kept a failing node whose node id a verified node also has", nil)
		return nil, errKept
	case current != nil:
		return current, nil
	case verified != nil:
		fmt.Fprintf(p.c.stdout, "kept %s: it verifies now\n", describeNode(verified))
		p.logNode(logger.InfoLevel, verified, "signet purge: kept a node that verifies now", nil)
		return nil, errVerifiesNow
	default:
		fmt.Fprintf(p.c.stdout, "skipped %s: it is no longer registered\n", describeNode(n))
		return nil, errGone
	}
}

// waitGone polls until the deregistered node n no longer appears in a
// lookup, for at most the command's removal timeout.
func (p *purgeRun) waitGone(n *nodeStatus) error {
	timeout := p.c.removalTimeout
	if timeout <= 0 {
		timeout = defaultRemovalTimeout
	}
	deadline := time.Now().Add(timeout)
	for {
		present, err := p.stillRegistered(n)
		if err != nil {
			return fmt.Errorf("checking that %s is gone: %w", describeNode(n), err)
		}
		if !present {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is still registered %v after its deregistration; the backend may store it under another key or agent, so remove it with the backend's own tools", describeNode(n), timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stillRegistered reports whether a lookup still returns a node with n's
// version, id and metadata signature.
func (p *purgeRun) stillRegistered(n *nodeStatus) (bool, error) {
	services, err := p.inner.GetService(n.service)
	if errors.Is(err, registry.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, svc := range services {
		if svc == nil || svc.Version != n.version {
			continue
		}
		for _, node := range svc.Nodes {
			if node != nil && node.Id == n.node.Id && sameRecord(node, n.node) {
				return true, nil
			}
		}
	}
	return false, nil
}

// sameRecord reports whether two nodes carry the same address and
// metadata, so a genuine node that re-registered under the id after the
// removal does not count as the removed one.
func sameRecord(a, b *registry.Node) bool {
	if a.Address != b.Address || len(a.Metadata) != len(b.Metadata) {
		return false
	}
	for k, v := range a.Metadata {
		if bv, ok := b.Metadata[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// describeNode names a node for output: service, version, node id,
// address and status.
func describeNode(n *nodeStatus) string {
	return fmt.Sprintf("service %s version %s node %s at %s (%s)",
		printable(n.service), printable(n.version), printable(n.node.Id), printable(n.node.Address), n.status())
}

// logNode logs an event about node n with the go-micro logger, with the
// node's ids and, for a failing node, the reason and error.
func (p *purgeRun) logNode(level logger.Level, n *nodeStatus, msg string, err error) {
	j := n.json()
	fields := map[string]any{
		"service": j.Service,
		"version": j.Version,
		"node":    j.Node,
		"address": j.Address,
		"status":  j.Status,
		"subject": j.Subject,
		"kid":     j.KeyID,
		"jti":     j.TokenID,
	}
	if j.Error != "" {
		fields["verify_error"] = j.Error
	}
	if err != nil {
		fields["error"] = err.Error()
	}
	p.log.Fields(fields).Log(level, msg)
}
