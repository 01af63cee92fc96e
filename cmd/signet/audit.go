package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/record"
	"github.com/signet-micro/signet/signing"
	"github.com/signet-micro/signet/verify"
)

const auditSynopsis = `    signet audit [-json] [-service LIST]

Connects to the live registry with the services' settings, looks up every
service as the backend stores it, without signet's filtering, and verifies
each node as a signet client would. Prints one row per node: service,
version, node id, address, status ("ok" or the reason code), the subject
of its identity token and the token's expiry. With -json it prints one
JSON object per line and node, with the error text, kid and jti. Exits
with status 1 when any node fails verification.

The registry comes from MICRO_REGISTRY, MICRO_REGISTRY_ADDRESS and the
MICRO_REGISTRY_TLS_* and credential variables. Verification reads
MICRO_REGISTRY_TRUST_BUNDLE[_FILE], MICRO_REGISTRY_AUDIENCE,
MICRO_REGISTRY_ISSUER, MICRO_REGISTRY_TOKEN_ALGORITHMS,
MICRO_REGISTRY_CLOCK_LEEWAY and MICRO_REGISTRY_REVOCATIONS[_FILE]. The
signing key and identity token variables are ignored.

Service names come from the backend's ListServices. The go-micro etcd
plugin (v1.2.0) lists the names written inside the records, while
GetService reads a key prefix, so a rogue record under the prefix of a
service that no record names is missed; name that service with -service
to audit it.

Examples:
    $ MICRO_REGISTRY=etcd MICRO_REGISTRY_ADDRESS=127.0.0.1:2379 \
      MICRO_REGISTRY_TRUST_BUNDLE_FILE=bundle.jwks signet audit
    $ signet audit -service greeter -json | jq 'select(.status != "ok")'
`

// nodeStatus is the verification result of one node as the backend
// stores it.
type nodeStatus struct {
	service string // the name the node was looked up under
	version string
	node    *registry.Node
	record  *verify.Record // nil when verification failed
	err     error          // a *verify.Rejection when verification failed
}

func (s *nodeStatus) ok() bool { return s.err == nil }

// status returns "ok" or the reason code of the failure.
func (s *nodeStatus) status() string {
	if s.ok() {
		return "ok"
	}
	return verify.Reason(s.err)
}

// nodeJSON is the -json form of a nodeStatus.
type nodeJSON struct {
	Service      string `json:"service"`
	Version      string `json:"version"`
	Node         string `json:"node"`
	Address      string `json:"address"`
	Status       string `json:"status"`
	Error        string `json:"error,omitempty"`
	Subject      string `json:"subject,omitempty"`
	KeyID        string `json:"kid,omitempty"`
	TokenID      string `json:"jti,omitempty"`
	TokenExpiry  string `json:"token_expiry,omitempty"`
	RecordExpiry string `json:"record_expiry,omitempty"`
}

func (s *nodeStatus) json() nodeJSON {
	j := nodeJSON{
		Service: s.service,
		Version: s.version,
		Node:    s.node.Id,
		Address: s.node.Address,
		Status:  s.status(),
	}
	if s.ok() {
		id := s.record.Identity
		j.Subject, j.KeyID, j.TokenID = id.Subject, id.KeyID, id.TokenID
		j.TokenExpiry, j.RecordExpiry = formatTime(id.Expiry), formatTime(s.record.Expiry)
		return j
	}

	var rej *verify.Rejection
	if errors.As(s.err, &rej) {
		j.Error = rej.Err.Error()
		j.Subject, j.KeyID, j.TokenID = rej.Subject, rej.KeyID, rej.TokenID
	} else {
		j.Error = s.err.Error()
	}
	claimed := claimedExpiry(s.node)
	j.TokenExpiry, j.RecordExpiry = timeOrEmpty(claimed.token), timeOrEmpty(claimed.record)
	return j
}

func timeOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return formatTime(t)
}

// subject returns the token subject, verified or as the failing record
// claims it.
func (s *nodeStatus) subject() string {
	if s.ok() {
		return s.record.Identity.Subject
	}
	var rej *verify.Rejection
	if errors.As(s.err, &rej) {
		return rej.Subject
	}
	return ""
}

// tokenExpiry returns the token expiry, verified or as the failing
// record claims it, or the zero time.
func (s *nodeStatus) tokenExpiry() time.Time {
	if s.ok() {
		return s.record.Identity.Expiry
	}
	return claimedExpiry(s.node).token
}

// claimedTimes are the expiry times that a record claims for its token
// and for itself; a missing one is the zero time.
type claimedTimes struct{ token, record time.Time }

// claimedExpiry decodes the expiry of a node's record and of its token
// without verifying either, for display only.
func claimedExpiry(node *registry.Node) (claimed claimedTimes) {
	signed, err := record.Parse(node.Metadata)
	if err != nil {
		return claimed
	}
	claimed.record = time.Unix(signed.Expiry, 0)

	claims := &signing.Claims{}
	if _, _, err := jwt.NewParser().ParseUnverified(signed.Token, claims); err == nil && claims.ExpiresAt != nil {
		claimed.token = claims.ExpiresAt.Time
	}
	return claimed
}

func (c *command) audit(args []string) int {
	flagSet := c.flags("audit", auditSynopsis)
	asJSON := flagSet.Bool("json", false, "print one JSON object per line and node")
	var services listFlag
	flagSet.Var(&services, "service", "audit only these comma-separated service `names`")
	positional, status, ok := parse(flagSet, args)
	if !ok {
		return status
	}
	if len(positional) > 0 {
		return c.fail("audit", exitError, "unexpected argument %s; limit the audit to services with -service", printable(positional[0]))
	}

	log := c.newLogger()
	inner, verifier, err := c.registryVerifier(log)
	if err != nil {
		return c.fail("audit", exitError, "%v", err)
	}
	nodes, names, err := scanRegistry(inner, verifier, services)
	if err != nil {
		return c.fail("audit", exitError, "%v", err)
	}

	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		for _, n := range nodes {
			if err := enc.Encode(n.json()); err != nil {
				return c.fail("audit", exitError, "writing the report: %v", err)
			}
		}
	} else {
		c.printNodeTable(c.stdout, nodes)
		c.printFailures(c.stdout, nodes)
	}

	failed := 0
	for _, n := range nodes {
		if !n.ok() {
			failed++
		}
	}
	fmt.Fprintf(c.stderr, "signet audit: %d of %s in %s of the %s registry failed verification\n",
		failed, plural(len(nodes), "node"), plural(names, "service"), printable(inner.String()))
	if failed > 0 {
		return exitInvalid
	}
	return exitOK
}

// scanRegistry verifies every node of the services in inner, or of only
// the named ones, and returns the results sorted by service, version and
// node id, with the number of services found. Each node is verified
// for the name it was looked up under, whatever name its record claims.
func scanRegistry(inner registry.Registry, verifier *verify.Verifier, only []string) ([]*nodeStatus, int, error) {
	names := only
	if len(names) == 0 {
		listed, err := inner.ListServices()
		if err != nil {
			return nil, 0, fmt.Errorf("listing the services of the %s registry: %w", inner.String(), err)
		}
		for _, svc := range listed {
			// Consul lists its own servers as the service "consul", which
			// go-micro never registers; it is not signet's to judge.
			if svc != nil && !(inner.String() == "consul" && svc.Name == "consul") {
				names = append(names, svc.Name)
			}
		}
	}
	names = uniqueSorted(names)

	var nodes []*nodeStatus
	found := 0
	for _, name := range names {
		services, err := inner.GetService(name)
		if errors.Is(err, registry.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("looking up service %s in the %s registry: %w", printable(name), inner.String(), err)
		}
		found++
		for _, svc := range services {
			if svc == nil {
				continue
			}
			for _, node := range svc.Nodes {
				if node == nil {
					continue
				}
				rec, err := verifier.VerifyNode(name, svc.Version, node)
				nodes = append(nodes, &nodeStatus{service: name, version: svc.Version, node: node, record: rec, err: err})
			}
		}
	}

	sort.SliceStable(nodes, func(i, j int) bool {
		a, b := nodes[i], nodes[j]
		if a.service != b.service {
			return a.service < b.service
		}
		if a.version != b.version {
			return a.version < b.version
		}
		return a.node.Id < b.node.Id
	})
	return nodes, found, nil
}

func uniqueSorted(items []string) []string {
	seen := make(map[string]bool, len(items))
	out := make([]string, 0, len(items))
	for _, item := range items {
		if !seen[item] {
			seen[item] = true
			out = append(out, item)
		}
	}
	sort.Strings(out)
	return out
}

// printNodeTable prints one row per node.
func (c *command) printNodeTable(w io.Writer, nodes []*nodeStatus) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tVERSION\tNODE\tADDRESS\tSTATUS\tSUBJECT\tTOKEN EXPIRES")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			printable(n.service), printable(n.version), printable(n.node.Id), printable(n.node.Address),
			n.status(), printable(n.subject()), formatTime(n.tokenExpiry()))
	}
	tw.Flush()
}

// printFailures prints the error of each failing node, one a line.
func (c *command) printFailures(w io.Writer, nodes []*nodeStatus) {
	first := true
	for _, n := range nodes {
		if n.ok() {
			continue
		}
		if first {
			fmt.Fprintln(w)
			first = false
		}
		j := n.json()
		fmt.Fprintf(w, "%s node %s: %s\n", printable(n.service), printable(n.node.Id), sanitize(j.Error))
	}
}
