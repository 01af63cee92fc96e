package conformance

import (
	"testing"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/record"
)

// testRogueFirst checks that a rogue record that the backend reads before
// the genuine one lends neither its endpoints nor its service metadata to
// the verified nodes. The backends merge the records of a version and take
// the service fields from the first record they read. etcd and the Consul
// dev agent return nodes in node id order, kube-apiserver lists pods by
// name, and the memory registry keeps the first registration. The rogue
// node id and pod name therefore sort first, and the rogue registers first.
func testRogueFirst(t *testing.T, f *fixture) {
	const name = "rogue-first"
	creds := f.identity(t, "rogue-first", []string{name}, nil)

	genuine := service(name, "1.0.0", "127.0.0.1:9201")
	genuine.Nodes[0].Id = "zzz-genuine"
	genuine.Metadata = map[string]string{"team": "payments"}

	rogue := service(name, "1.0.0", "127.0.0.1:6666")
	rogue.Nodes[0].Id = "aaa-rogue"
	rogue.Metadata = map[string]string{"team": "evil", "auth": "none"}
	rogue.Endpoints = []*registry.Endpoint{{
		Name:     "Greeter.Hello",
		Request:  &registry.Value{Name: "Request", Type: "Request", Values: []*registry.Value{{Name: "password", Type: "string"}}},
		Response: &registry.Value{Name: "Response", Type: "Response"},
		Metadata: map[string]string{"stream": "true"},
	}}
	rogueEndpoints, rogueMetadata := record.DigestEndpoints(rogue.Endpoints), record.DigestMetadata(rogue.Metadata)
	genuineEndpoints := record.DigestEndpoints(genuine.Endpoints)

	watch := f.startWatch(t, f.b.reader, f.clock.Now, name, false)
	f.attack(t, rogue)
	f.waitRaw(t, name, "aaa-rogue")
	f.register(t, creds, genuine)

	raw := f.waitRaw(t, name, "aaa-rogue", "zzz-genuine")
	rawSvc, _ := findNode(raw, "1.0.0", "zzz-genuine")
	if record.DigestEndpoints(rawSvc.Endpoints) != rogueEndpoints {
		t.Errorf("the plain %s registry returned the genuine record's endpoints for the merged version, so this case does not put the rogue's first", f.b.name)
	}
	readFirst := "the rogue's endpoints"
	if len(rawSvc.Metadata) > 0 && record.DigestMetadata(rawSvc.Metadata) == rogueMetadata {
		readFirst += " and metadata"
	}

	got := f.waitVerified(t, f.reader, name, "zzz-genuine")
	svc, _ := findNode(got, "1.0.0", "zzz-genuine")
	if len(svc.Nodes) != 1 {
		t.Errorf("GetService(%s) through signet returned %s, want only the genuine node", name, describe(got))
	}
	checkServiceFields(t, "GetService", svc, rogueEndpoints, rogueMetadata, genuineEndpoints)

	out := watch.waitRaw(t, "the rogue and the genuine node", "aaa-rogue", "zzz-genuine")
	watch.waitOut(t, "the genuine node", "zzz-genuine")
	for _, res := range out {
		if res.Service != nil && res.Action != "delete" {
			checkServiceFields(t, "watch result", res.Service, rogueEndpoints, rogueMetadata, genuineEndpoints)
		}
	}

	passed := "none"
	if len(svc.Endpoints) > 0 {
		passed = "the genuine endpoints"
	}
	f.report.set("rogue read first", "plain registry returned %s; signet passed on %s", readFirst, passed)
}

// checkServiceFields fails the test when svc carries the rogue's endpoints
// or metadata, or endpoints other than the genuine ones.
func checkServiceFields(t *testing.T, what string, svc *registry.Service, rogueEndpoints, rogueMetadata, genuineEndpoints [32]byte) {
	t.Helper()
	eps := record.DigestEndpoints(svc.Endpoints)
	switch {
	case len(svc.Endpoints) > 0 && eps == rogueEndpoints:
		t.Errorf("%s of %s through signet carries the rogue record's endpoints", what, svc.Name)
	case len(svc.Endpoints) > 0 && eps != genuineEndpoints:
		t.Errorf("%s of %s through signet carries %d endpoints that no verified node signed", what, svc.Name, len(svc.Endpoints))
	}
	if len(svc.Metadata) > 0 && record.DigestMetadata(svc.Metadata) == rogueMetadata {
		t.Errorf("%s of %s through signet carries the rogue record's service metadata %v", what, svc.Name, svc.Metadata)
	}
}
