package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/testid"
	"github.com/signet-micro/signet/signing"
)

// poisoned is a registry that holds genuine and rogue nodes, with the
// environment that verifies them.
type poisoned struct {
	inner  registry.Registry
	issuer *testid.Issuer
	creds  *signing.Credentials
	env    map[string]string
}

// newPoisoned returns an empty registry setup around inner.
func newPoisoned(t *testing.T, inner registry.Registry) *poisoned {
	t.Helper()
	issuer := testid.NewIssuer(t, time.Now)
	jwks, err := issuer.Bundle.MarshalJWKS()
	if err != nil {
		t.Fatal(err)
	}
	return &poisoned{
		inner:  inner,
		issuer: issuer,
		creds:  issuer.Node(t, "greeter", []string{"greeter", "billing"}, nil, time.Hour),
		env:    map[string]string{"MICRO_REGISTRY_TRUST_BUNDLE": string(jwks)},
	}
}

// command returns a command that audits p's registry.
func (p *poisoned) command() *command {
	return &command{
		lookupEnv: func(name string) (string, bool) {
			v, ok := p.env[name]
			return v, ok
		},
		openRegistry:   func() (registry.Registry, error) { return p.inner, nil },
		now:            time.Now,
		removalTimeout: time.Second,
	}
}

// registerTTL is the TTL that test registrations carry, as go-micro's
// server sends one. The go-micro etcd plugin (v1.2.0) dereferences a nil
// lease in a log line when Register gets none.
var registerTTL = registry.RegisterTTL(90 * time.Second)

// registerGenuine registers a signed node through the signet wrapper.
func (p *poisoned) registerGenuine(t *testing.T, service, nodeID, address string) {
	t.Helper()
	reg := p.issuer.Wrap(t, p.inner, p.creds, time.Now)
	if err := reg.Register(testid.Service(service, nodeID, address), registerTTL); err != nil {
		t.Fatalf("registering genuine node %s: %v", nodeID, err)
	}
}

// registerRaw writes svc to the backend without signet.
func (p *poisoned) registerRaw(t *testing.T, svc *registry.Service) {
	t.Helper()
	if err := p.inner.Register(svc, registerTTL); err != nil {
		t.Fatalf("registering %s directly: %v", svc.Nodes[0].Id, err)
	}
}

// signed returns a service whose node creds signed at the time now.
func signed(t *testing.T, creds signing.CredentialSource, now func() time.Time, service, nodeID, address string) *registry.Service {
	t.Helper()
	svc, _, err := testid.Signer(t, creds, now).Sign(testid.Service(service, nodeID, address))
	if err != nil {
		t.Fatalf("signing %s: %v", nodeID, err)
	}
	return svc
}

// rogueNodes are the node ids that addRogues writes, with the reason each
// fails for.
var rogueNodes = map[string]string{
	"rogue-unsigned": "unsigned",
	"rogue-tampered": "bad-signature",
	"rogue-expired":  "record-expired",
	"rogue-forged":   "token-bad-signature",
}

// addRogues writes the nodes of rogueNodes into the greeter service. The
// first has no signature, and the second is a genuine record whose address
// was changed. A genuine identity signed the third two hours ago, so its
// record has expired. The fourth carries a token signed by an untrusted
// issuer key under the trusted key's id.
func (p *poisoned) addRogues(t *testing.T) {
	t.Helper()
	p.registerRaw(t, testid.Service("greeter", "rogue-unsigned", "127.0.0.1:6661"))

	tampered := signed(t, p.creds, time.Now, "greeter", "rogue-tampered", "127.0.0.1:9002")
	tampered.Nodes[0].Address = "127.0.0.1:6662"
	p.registerRaw(t, tampered)

	past := testid.NewClock(time.Now().Add(-2 * time.Hour))
	pastIssuer := *p.issuer.Issuer
	pastIssuer.Now = past.Now
	_, nodeKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	token, err := pastIssuer.Issue(signing.Identity{
		Subject: "greeter", NodeKey: nodeKey.Public().(ed25519.PublicKey), Services: []string{"greeter"}, Lifetime: 24 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	pastCreds, err := signing.NewCredentials(nodeKey, token)
	if err != nil {
		t.Fatal(err)
	}
	p.registerRaw(t, signed(t, pastCreds, past.Now, "greeter", "rogue-expired", "127.0.0.1:6663"))

	forger := testid.NewIssuer(t, time.Now)
	forged := forger.Node(t, "greeter", []string{"greeter"}, nil, time.Hour)
	p.registerRaw(t, signed(t, forged, time.Now, "greeter", "rogue-forged", "127.0.0.1:6664"))
}

// newPoisonedMemory returns a memory registry with genuine nodes greeter-1
// and billing-1 and the nodes of rogueNodes.
func newPoisonedMemory(t *testing.T) *poisoned {
	t.Helper()
	p := newPoisoned(t, registry.NewMemoryRegistry())
	p.registerGenuine(t, "greeter", "greeter-1", "127.0.0.1:9001")
	p.registerGenuine(t, "billing", "billing-1", "127.0.0.1:9101")
	p.addRogues(t)
	return p
}

// nodeIDs returns the sorted node ids of service name in reg.
func nodeIDs(t *testing.T, reg registry.Registry, name string) []string {
	t.Helper()
	services, err := reg.GetService(name)
	if err != nil {
		if err == registry.ErrNotFound {
			return nil
		}
		t.Fatalf("GetService(%q): %v", name, err)
	}
	var ids []string
	for _, svc := range services {
		for _, n := range svc.Nodes {
			ids = append(ids, n.Id)
		}
	}
	sort.Strings(ids)
	return ids
}

// auditJSON runs audit -json and returns the objects by node id.
func auditJSON(t *testing.T, c *command) (map[string]nodeJSON, result) {
	t.Helper()
	r := runCommand(c, "audit", "--json")
	nodes := map[string]nodeJSON{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if line == "" {
			continue
		}
		var n nodeJSON
		if err := json.Unmarshal([]byte(line), &n); err != nil {
			t.Fatalf("audit -json line %q is not JSON: %v", line, err)
		}
		nodes[n.Node] = n
	}
	return nodes, r
}

func TestAuditListsReasons(t *testing.T) {
	p := newPoisonedMemory(t)

	r := runCommand(p.command(), "audit")
	if r.code != exitInvalid {
		t.Errorf("audit exit status %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(r.stdout, "\n") {
		if fields := strings.Fields(line); len(fields) >= 7 {
			rows[fields[2]] = fields
		}
	}
	for id, want := range map[string]string{"greeter-1": "ok", "billing-1": "ok"} {
		if row := rows[id]; len(row) < 7 || row[4] != want || row[5] != "greeter" {
			t.Errorf("row of %s = %v, want status %s and subject greeter", id, row, want)
		}
	}
	for id, reason := range rogueNodes {
		if row := rows[id]; len(row) < 5 || row[4] != reason {
			t.Errorf("row of %s = %v, want status %s", id, row, reason)
		}
		if !strings.Contains(r.stdout, "greeter node "+id+": ") {
			t.Errorf("audit output lacks the error of %s:\n%s", id, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "4 of 6 nodes in 2 services") {
		t.Errorf("audit summary: %q", r.stderr)
	}

	nodes, jr := auditJSON(t, p.command())
	if jr.code != exitInvalid {
		t.Errorf("audit -json exit status %d, want 1", jr.code)
	}
	if len(nodes) != 6 {
		t.Errorf("audit -json printed %d nodes, want 6: %v", len(nodes), nodes)
	}
	genuine := nodes["greeter-1"]
	if genuine.Status != "ok" || genuine.Error != "" || genuine.TokenID != p.creds.Claims.ID || genuine.KeyID != "test-issuer" || genuine.TokenExpiry == "" {
		t.Errorf("audit -json of the genuine node = %+v", genuine)
	}
	for id, reason := range rogueNodes {
		n := nodes[id]
		if n.Status != reason || n.Error == "" || n.Service != "greeter" || n.Version != "latest" {
			t.Errorf("audit -json of %s = %+v, want status %s with an error", id, n, reason)
		}
	}
	if n := nodes["rogue-forged"]; n.KeyID != "test-issuer" || n.TokenID == "" {
		t.Errorf("audit -json of the forged node lacks the kid and jti it claims: %+v", n)
	}
	if n := nodes["rogue-expired"]; n.RecordExpiry == "" || n.TokenExpiry == "" {
		t.Errorf("audit -json of the expired node lacks its expiry times: %+v", n)
	}
}

func TestAuditAllVerified(t *testing.T) {
	p := newPoisoned(t, registry.NewMemoryRegistry())
	p.registerGenuine(t, "greeter", "greeter-1", "127.0.0.1:9001")

	r := runCommand(p.command(), "audit")
	if r.code != exitOK {
		t.Errorf("audit exit status %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "0 of 1 node in 1 service") {
		t.Errorf("audit summary: %q", r.stderr)
	}
}

func TestAuditServiceFilter(t *testing.T) {
	p := newPoisonedMemory(t)
	nodes, r := auditJSON(t, func() *command { c := p.command(); return c }())
	if r.code != exitInvalid {
		t.Fatalf("audit of everything: exit status %d", r.code)
	}

	c := p.command()
	res := runCommand(c, "audit", "-service", "billing", "-json")
	if res.code != exitOK {
		t.Errorf("audit -service billing: exit status %d, want 0\n%s%s", res.code, res.stdout, res.stderr)
	}
	if strings.Count(res.stdout, "\n") != 1 || !strings.Contains(res.stdout, `"node":"billing-1"`) {
		t.Errorf("audit -service billing printed:\n%s", res.stdout)
	}
	_ = nodes
}

func TestAuditConfigErrors(t *testing.T) {
	p := newPoisonedMemory(t)
	delete(p.env, "MICRO_REGISTRY_TRUST_BUNDLE")
	r := runCommand(p.command(), "audit")
	if r.code != exitError || !strings.Contains(r.stderr, "MICRO_REGISTRY_TRUST_BUNDLE") {
		t.Errorf("audit without a trust bundle: exit status %d, stderr %q", r.code, r.stderr)
	}

	c := p.command()
	c.openRegistry = nil
	c.lookupEnv = func(string) (string, bool) { return "", false }
	r = runCommand(c, "audit")
	if r.code != exitError || !strings.Contains(r.stderr, "MICRO_REGISTRY") {
		t.Errorf("audit without MICRO_REGISTRY: exit status %d, stderr %q", r.code, r.stderr)
	}
}

func TestPurgeDryRunRemovesNothing(t *testing.T) {
	p := newPoisonedMemory(t)
	before := nodeIDs(t, p.inner, "greeter")

	r := runCommand(p.command(), "purge")
	if r.code != exitInvalid {
		t.Errorf("purge dry run exit status %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	for id, reason := range rogueNodes {
		if !strings.Contains(r.stdout, "would remove service greeter version latest node "+id+" at ") || !strings.Contains(r.stdout, "("+reason+")") {
			t.Errorf("purge dry run does not list %s (%s):\n%s", id, reason, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "greeter-1") || strings.Contains(r.stdout, "billing-1") {
		t.Errorf("purge dry run lists a genuine node:\n%s", r.stdout)
	}
	if after := nodeIDs(t, p.inner, "greeter"); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("purge dry run changed the registry: %v, then %v", before, after)
	}
}

func TestPurgeRemovesOnlyRogues(t *testing.T) {
	p := newPoisonedMemory(t)

	r := runCommand(p.command(), "purge", "--yes")
	if r.code != exitOK {
		t.Fatalf("purge --yes exit status %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := nodeIDs(t, p.inner, "greeter"); len(got) != 1 || got[0] != "greeter-1" {
		t.Errorf("greeter nodes after purge = %v, want [greeter-1]", got)
	}
	if got := nodeIDs(t, p.inner, "billing"); len(got) != 1 || got[0] != "billing-1" {
		t.Errorf("billing nodes after purge = %v, want [billing-1]", got)
	}
	for id := range rogueNodes {
		if !strings.Contains(r.stdout, "removed service greeter version latest node "+id+" at ") {
			t.Errorf("purge output lacks the removal of %s:\n%s", id, r.stdout)
		}
	}
	if n := strings.Count(r.stderr, "signet purge: removed a node that failed verification"); n != len(rogueNodes) {
		t.Errorf("purge logged %d removals, want %d:\n%s", n, len(rogueNodes), r.stderr)
	}
	if !strings.Contains(r.stderr, "node=rogue-tampered") || !strings.Contains(r.stderr, "status=bad-signature") {
		t.Errorf("the removal log lines lack the node id and reason:\n%s", r.stderr)
	}

	if again := runCommand(p.command(), "audit"); again.code != exitOK {
		t.Errorf("audit after purge: exit status %d\n%s", again.code, again.stdout)
	}
}

func TestPurgeServiceFilter(t *testing.T) {
	p := newPoisonedMemory(t)
	p.registerRaw(t, testid.Service("billing", "rogue-billing", "127.0.0.1:6671"))

	r := runCommand(p.command(), "purge", "-yes", "-service", "billing")
	if r.code != exitOK {
		t.Fatalf("purge -service billing: exit status %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := nodeIDs(t, p.inner, "billing"); len(got) != 1 || got[0] != "billing-1" {
		t.Errorf("billing nodes = %v, want [billing-1]", got)
	}
	if got := nodeIDs(t, p.inner, "greeter"); len(got) != 1+len(rogueNodes) {
		t.Errorf("greeter nodes = %v; purge -service billing touched greeter", got)
	}
}

func TestPurgeKeepsSharedNodeID(t *testing.T) {
	p := newPoisoned(t, registry.NewMemoryRegistry())
	p.registerGenuine(t, "greeter", "greeter-1", "127.0.0.1:9001")
	rogue := testid.Service("greeter", "greeter-1", "127.0.0.1:6666")
	rogue.Version = "v2"
	p.registerRaw(t, rogue)

	dry := runCommand(p.command(), "purge")
	if dry.code != exitInvalid || !strings.Contains(dry.stdout, "would keep service greeter version v2 node greeter-1") {
		t.Errorf("purge dry run: exit status %d\n%s", dry.code, dry.stdout)
	}

	r := runCommand(p.command(), "purge", "-yes")
	if r.code != exitInvalid {
		t.Errorf("purge -yes exit status %d, want 1 (a failing node kept)\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "kept service greeter version v2 node greeter-1") {
		t.Errorf("purge does not report the kept node:\n%s", r.stdout)
	}
	if got := nodeIDs(t, p.inner, "greeter"); len(got) != 2 {
		t.Errorf("greeter nodes after purge = %v, want the genuine and the rogue greeter-1", got)
	}
	if nodes, _ := auditJSON(t, p.command()); nodes["greeter-1"].Status == "" {
		t.Error("the genuine greeter-1 is gone")
	}
}

func TestPurgeNoVerifiedNode(t *testing.T) {
	p := newPoisoned(t, registry.NewMemoryRegistry())
	p.addRogues(t)

	r := runCommand(p.command(), "purge", "-yes")
	if r.code != exitError || !strings.Contains(r.stderr, "no node in the registry verifies") || !strings.Contains(r.stderr, "-force") {
		t.Errorf("purge -yes with no verified node: exit status %d, stderr %q", r.code, r.stderr)
	}
	if got := nodeIDs(t, p.inner, "greeter"); len(got) != len(rogueNodes) {
		t.Errorf("greeter nodes = %v; purge removed nodes although none verifies", got)
	}

	r = runCommand(p.command(), "purge", "-yes", "-force")
	if r.code != exitOK {
		t.Errorf("purge -yes -force: exit status %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := nodeIDs(t, p.inner, "greeter"); len(got) != 0 {
		t.Errorf("greeter nodes after purge -yes -force = %v, want none", got)
	}
}

// renamedRegistry is a real memory registry that reports another backend
// name, to check that purge -yes refuses backends whose Deregister does not
// remove the node it is given.
type renamedRegistry struct {
	registry.Registry
	name string
}

func (r *renamedRegistry) String() string { return r.name }

func TestPurgeRefusesKubernetes(t *testing.T) {
	p := newPoisoned(t, &renamedRegistry{Registry: registry.NewMemoryRegistry(), name: "kubernetes"})
	p.registerGenuine(t, "greeter", "greeter-1", "127.0.0.1:9001")
	p.addRogues(t)

	r := runCommand(p.command(), "purge", "-yes")
	if r.code != exitError || !strings.Contains(r.stderr, "kubernetes") {
		t.Errorf("purge -yes on kubernetes: exit status %d, stderr %q", r.code, r.stderr)
	}
	if got := nodeIDs(t, p.inner, "greeter"); len(got) != 1+len(rogueNodes) {
		t.Errorf("greeter nodes = %v; purge changed a kubernetes registry", got)
	}
	if dry := runCommand(p.command(), "purge"); dry.code != exitInvalid {
		t.Errorf("purge dry run on kubernetes: exit status %d, want 1", dry.code)
	}
}

// reregistering is a real memory registry that runs a hook before the
// second lookup of a service. Purge makes that lookup right before it
// deregisters a node, so the hook stands for a node that re-registers
// between the scan and the removal.
type reregistering struct {
	registry.Registry

	mu      sync.Mutex
	lookups map[string]int
	hook    func()
}

func (r *reregistering) GetService(name string, opts ...registry.GetOption) ([]*registry.Service, error) {
	r.mu.Lock()
	r.lookups[name]++
	second := r.lookups[name] == 2
	r.mu.Unlock()

	if second && r.hook != nil {
		r.hook()
	}
	return r.Registry.GetService(name, opts...)
}

func TestPurgeRechecksBeforeRemoval(t *testing.T) {
	rr := &reregistering{Registry: registry.NewMemoryRegistry(), lookups: map[string]int{}}
	p := newPoisoned(t, rr)
	p.registerGenuine(t, "billing", "billing-1", "127.0.0.1:9101")
	p.registerRaw(t, testid.Service("greeter", "greeter-2", "127.0.0.1:6666"))

	// Between the scan and the removal, the unsigned greeter-2 is replaced
	// by a genuine record of the same node id.
	rr.hook = func() {
		if err := rr.Registry.Deregister(&registry.Service{Name: "greeter", Version: "latest", Nodes: []*registry.Node{{Id: "greeter-2"}}}); err != nil {
			t.Error(err)
		}
		p.registerGenuine(t, "greeter", "greeter-2", "127.0.0.1:9002")
	}

	r := runCommand(p.command(), "purge", "-yes")
	if r.code != exitOK {
		t.Errorf("purge -yes exit status %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "kept service greeter version latest node greeter-2") || !strings.Contains(r.stdout, "(ok): it verifies now") {
		t.Errorf("purge does not report that greeter-2 verifies now:\n%s", r.stdout)
	}
	if got := nodeIDs(t, rr.Registry, "greeter"); len(got) != 1 || got[0] != "greeter-2" {
		t.Errorf("greeter nodes = %v, want the re-registered genuine greeter-2", got)
	}
	if nodes, _ := auditJSON(t, p.command()); nodes["greeter-2"].Status != "ok" {
		t.Errorf("greeter-2 after purge: %+v, want a verified node", nodes["greeter-2"])
	}
}

func TestPurgeUsageErrors(t *testing.T) {
	p := newPoisonedMemory(t)
	cases := map[string]struct {
		args []string
		want string
	}{
		"force without yes": {[]string{"purge", "-force"}, "-force needs -yes"},
		"positional":        {[]string{"purge", "greeter"}, "-service"},
	}
	for name, tc := range cases {
		r := runCommand(p.command(), tc.args...)
		if r.code != exitError || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit status %d, stderr %q; want 2 and %q", name, r.code, r.stderr, tc.want)
		}
	}
	if got := nodeIDs(t, p.inner, "greeter"); len(got) != 1+len(rogueNodes) {
		t.Errorf("a purge usage error changed the registry: %v", got)
	}
}
