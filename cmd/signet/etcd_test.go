package main

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"go-micro.dev/v4/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/signet-micro/signet/internal/testid"
	"github.com/signet-micro/signet/internal/testserver"
	"github.com/signet-micro/signet/registry/backend"
)

// etcdKeyPrefix is where the go-micro etcd plugin (v1.2.0) stores nodes:
// one key per node, /micro/registry/<service>/<node id>.
const etcdKeyPrefix = "/micro/registry/"

// newPoisonedEtcd starts an embedded etcd on loopback and returns a setup
// whose commands reach it through MICRO_REGISTRY and
// MICRO_REGISTRY_ADDRESS, as the signet binary does, with a raw client to
// inspect and write keys.
func newPoisonedEtcd(t *testing.T) (*poisoned, *clientv3.Client) {
	t.Helper()
	server := testserver.StartEtcd(t, testserver.EtcdOptions{})

	inner, err := backend.New(backend.Config{Registry: backend.Etcd, Addresses: server.Endpoints})
	if err != nil {
		t.Fatalf("building the etcd registry for %v: %v", server.Endpoints, err)
	}
	p := newPoisoned(t, inner)
	p.env[backend.EnvRegistry] = backend.Etcd
	p.env[backend.EnvAddress] = server.Endpoints[0]

	cfg := server.ClientConfig()
	cfg.Logger = zap.NewNop()
	client, err := clientv3.New(cfg)
	if err != nil {
		t.Fatalf("connecting to etcd at %v: %v", server.Endpoints, err)
	}
	t.Cleanup(func() { client.Close() })
	return p, client
}

// etcdCommand returns a command that opens the registry from p.env, not
// p.inner.
func (p *poisoned) etcdCommand() *command {
	c := p.command()
	c.openRegistry = nil
	return c
}

// etcdKeys returns the sorted registry keys in etcd.
func etcdKeys(t *testing.T, client *clientv3.Client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := client.Get(ctx, etcdKeyPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatalf("listing etcd keys under %s: %v", etcdKeyPrefix, err)
	}
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, strings.TrimPrefix(string(kv.Key), etcdKeyPrefix))
	}
	sort.Strings(keys)
	return keys
}

// putRaw writes svc under an etcd key of the attacker's choice, as someone
// with write access to etcd can.
func putRaw(t *testing.T, client *clientv3.Client, key string, svc *registry.Service) {
	t.Helper()
	value, err := json.Marshal(svc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.Put(ctx, etcdKeyPrefix+key, string(value)); err != nil {
		t.Fatalf("writing etcd key %s: %v", key, err)
	}
}

func TestEtcdAuditPurge(t *testing.T) {
	p, client := newPoisonedEtcd(t)
	p.registerGenuine(t, "greeter", "greeter-1", "127.0.0.1:9001")
	p.registerGenuine(t, "greeter", "greeter-2", "127.0.0.1:9002")
	p.registerGenuine(t, "billing", "billing-1", "127.0.0.1:9101")
	p.addRogues(t)

	// A rogue record under the node id of greeter-2 replaces it: the
	// plugin keeps one key per node id.
	p.registerRaw(t, testid.Service("greeter", "greeter-2", "127.0.0.1:6665"))

	nodes, r := auditJSON(t, p.etcdCommand())
	if r.code != exitInvalid {
		t.Fatalf("audit exit status %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	for id, want := range map[string]string{"greeter-1": "ok", "billing-1": "ok", "greeter-2": "unsigned"} {
		if got := nodes[id].Status; got != want {
			t.Errorf("audit status of %s = %q, want %q", id, got, want)
		}
	}
	for id, reason := range rogueNodes {
		if got := nodes[id].Status; got != reason {
			t.Errorf("audit status of %s = %q, want %q", id, got, reason)
		}
	}
	if !strings.Contains(r.stderr, "of the etcd registry") {
		t.Errorf("audit did not go through the etcd backend: %q", r.stderr)
	}

	before := etcdKeys(t, client)
	if dry := runCommand(p.etcdCommand(), "purge"); dry.code != exitInvalid {
		t.Errorf("purge dry run exit status %d, want 1\n%s%s", dry.code, dry.stdout, dry.stderr)
	}
	if after := etcdKeys(t, client); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("purge dry run changed etcd: keys %v, then %v", before, after)
	}

	purge := runCommand(p.etcdCommand(), "purge", "-yes")
	if purge.code != exitOK {
		t.Fatalf("purge -yes exit status %d, want 0\n%s%s", purge.code, purge.stdout, purge.stderr)
	}
	want := []string{"billing/billing-1", "greeter/greeter-1"}
	if got := etcdKeys(t, client); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("etcd keys after purge = %v, want %v", got, want)
	}
	if n := strings.Count(purge.stdout, "removed service greeter"); n != len(rogueNodes)+1 {
		t.Errorf("purge reported %d removals, want %d:\n%s", n, len(rogueNodes)+1, purge.stdout)
	}

	if again := runCommand(p.etcdCommand(), "audit"); again.code != exitOK {
		t.Errorf("audit after purge: exit status %d\n%s%s", again.code, again.stdout, again.stderr)
	}
}

func TestEtcdPurgeSharedNodeID(t *testing.T) {
	p, client := newPoisonedEtcd(t)
	p.registerGenuine(t, "greeter", "greeter-1", "127.0.0.1:9001")

	// A rogue record under its own key that claims greeter-1's node id.
	// Deregistering greeter-1 would delete the genuine key.
	putRaw(t, client, "greeter/rogue-key", testid.Service("greeter", "greeter-1", "127.0.0.1:6666"))

	audit := runCommand(p.etcdCommand(), "audit", "-json")
	if n := strings.Count(audit.stdout, `"node":"greeter-1"`); n != 2 {
		t.Errorf("audit lists greeter-1 %d times, want twice:\n%s", n, audit.stdout)
	}
	if !strings.Contains(audit.stdout, `"status":"ok"`) || !strings.Contains(audit.stdout, `"status":"unsigned"`) {
		t.Errorf("audit does not list greeter-1 once verified and once unsigned:\n%s", audit.stdout)
	}

	r := runCommand(p.etcdCommand(), "purge", "-yes")
	if r.code != exitInvalid {
		t.Errorf("purge -yes exit status %d, want 1 (a failing node kept)\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "kept service greeter version latest node greeter-1 at 127.0.0.1:6666 (unsigned)") {
		t.Errorf("purge does not report the kept rogue record:\n%s", r.stdout)
	}
	want := []string{"greeter/greeter-1", "greeter/rogue-key"}
	if got := etcdKeys(t, client); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("etcd keys after purge = %v, want %v: the genuine key must stay", got, want)
	}
}

func TestEtcdPurgeReportsUndeletable(t *testing.T) {
	p, client := newPoisonedEtcd(t)
	p.registerGenuine(t, "greeter", "greeter-1", "127.0.0.1:9001")

	// A rogue record whose node id is not its key: the plugin's Deregister
	// deletes the key of the node id, which does not exist.
	putRaw(t, client, "greeter/ghost", testid.Service("greeter", "phantom", "127.0.0.1:6667"))

	r := runCommand(p.etcdCommand(), "purge", "-yes")
	if r.code != exitError {
		t.Errorf("purge -yes exit status %d, want 2\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "node phantom at 127.0.0.1:6667 (unsigned) is still registered") {
		t.Errorf("purge does not report that phantom is still registered:\n%s", r.stderr)
	}
	if strings.Contains(r.stdout, "removed service") {
		t.Errorf("purge reports a removal that did not happen:\n%s", r.stdout)
	}
	want := []string{"greeter/ghost", "greeter/greeter-1"}
	if got := etcdKeys(t, client); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("etcd keys after purge = %v, want %v", got, want)
	}
}

func TestEtcdRecordUnderOtherName(t *testing.T) {
	p, client := newPoisonedEtcd(t)
	p.registerGenuine(t, "greeter", "greeter-1", "127.0.0.1:9001")
	p.registerGenuine(t, "billing", "billing-1", "127.0.0.1:9101")

	// A copy of billing-1's genuine record under greeter's key prefix. The
	// etcd plugin returns it for GetService("greeter"), and names the
	// merged service after it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := client.Get(ctx, etcdKeyPrefix+"billing/billing-1")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("reading billing-1's record: %v (%d keys)", err, len(resp.Kvs))
	}
	if _, err := client.Put(ctx, etcdKeyPrefix+"greeter/copy", string(resp.Kvs[0].Value)); err != nil {
		t.Fatal(err)
	}

	wrapped := p.issuer.Wrap(t, p.inner, nil, time.Now)
	services, err := wrapped.GetService("greeter")
	if err != nil {
		t.Fatalf("GetService(greeter) through signet: %v", err)
	}
	if len(services) != 1 || services[0].Name != "greeter" || len(services[0].Nodes) != 1 || services[0].Nodes[0].Id != "greeter-1" {
		t.Errorf("GetService(greeter) through signet = %s, want only greeter-1", describeServices(services))
	}

	r := runCommand(p.etcdCommand(), "audit")
	if r.code != exitInvalid {
		t.Errorf("audit exit status %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "greeter node billing-1: record signature does not match") {
		t.Errorf("audit does not flag billing-1's record under greeter:\n%s", r.stdout)
	}

	// Deregistering node billing-1 could remove the genuine billing-1 on
	// backends that delete by node id alone, so purge keeps the copy.
	purge := runCommand(p.etcdCommand(), "purge", "-yes")
	if purge.code != exitInvalid || !strings.Contains(purge.stdout, "kept service greeter version latest node billing-1") {
		t.Errorf("purge -yes: exit status %d\n%s%s", purge.code, purge.stdout, purge.stderr)
	}
	want := []string{"billing/billing-1", "greeter/copy", "greeter/greeter-1"}
	if got := etcdKeys(t, client); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("etcd keys after purge = %v, want %v", got, want)
	}
}

func describeServices(services []*registry.Service) string {
	var parts []string
	for _, s := range services {
		for _, n := range s.Nodes {
			parts = append(parts, s.Name+"/"+n.Id+"@"+n.Address)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func TestEtcdAuditUnlistedPrefix(t *testing.T) {
	p, client := newPoisonedEtcd(t)
	p.registerGenuine(t, "billing", "billing-1", "127.0.0.1:9101")

	// A record under the prefix of "payments" that names itself billing:
	// ListServices returns only billing.
	rogue := testid.Service("billing", "rogue-1", "127.0.0.1:6668")
	putRaw(t, client, "payments/rogue-1", rogue)

	if r := runCommand(p.etcdCommand(), "audit"); r.code != exitOK || strings.Contains(r.stdout, "rogue-1") {
		t.Errorf("audit of the listed services: exit status %d\n%s\nwant 0 without rogue-1, as the usage text says", r.code, r.stdout)
	}
	r := runCommand(p.etcdCommand(), "audit", "-service", "payments")
	if r.code != exitInvalid || !strings.Contains(r.stdout, "payments node rogue-1: ") {
		t.Errorf("audit -service payments: exit status %d\n%s", r.code, r.stdout)
	}
}
