package conformance

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/record"
	"github.com/signet-micro/signet/signing"
)

// nodeMetadata is the node metadata a go-micro rpc server registers.
func nodeMetadata() map[string]string {
	return map[string]string{"transport": "http", "broker": "http", "server": "mucp", "registry": "signet", "protocol": "mucp"}
}

// service returns a service of one version with one node per address.
func service(name, version string, addresses ...string) *registry.Service {
	svc := &registry.Service{
		Name:    name,
		Version: version,
		Endpoints: []*registry.Endpoint{{
			Name:     "Greeter.Hello",
			Request:  &registry.Value{Name: "Request", Type: "Request", Values: []*registry.Value{{Name: "name", Type: "string"}}},
			Response: &registry.Value{Name: "Response", Type: "Response", Values: []*registry.Value{{Name: "greeting", Type: "string"}}},
			Metadata: map[string]string{"stream": "false"},
		}},
	}
	for i, a := range addresses {
		svc.Nodes = append(svc.Nodes, &registry.Node{Id: fmt.Sprintf("%s-%s-%d", name, version, i+1), Address: a, Metadata: nodeMetadata()})
	}
	return svc
}

// manyEndpoints returns n endpoints whose requests nest values three deep.
func manyEndpoints(n int) []*registry.Endpoint {
	eps := make([]*registry.Endpoint, n)
	for i := range eps {
		eps[i] = &registry.Endpoint{
			Name: fmt.Sprintf("Catalog.Method%02d", i),
			Request: &registry.Value{Name: "Request", Type: "Request", Values: []*registry.Value{
				{Name: "user", Type: "User", Values: []*registry.Value{
					{Name: "id", Type: "string"},
					{Name: "address", Type: "Address", Values: []*registry.Value{{Name: "city", Type: "string"}, {Name: "zip", Type: "string"}}},
				}},
				{Name: "page", Type: "int32"},
			}},
			Response: &registry.Value{Name: "Response", Type: "Response", Values: []*registry.Value{{Name: "items", Type: "[]Item"}}},
			Metadata: map[string]string{"stream": "false", "index": strconv.Itoa(i)},
		}
	}
	return eps
}

// maxMetadata returns the largest user metadata that the signer accepts
// for a node signed with creds under limits, and the same metadata made
// one step too large. Where the pair count binds (Consul's 64) the step is
// one more pair, and where the total size binds (the verifier's 64 KiB)
// it is one more byte.
func maxMetadata(t *testing.T, f *fixture, creds *signing.Credentials, limits signing.MetadataLimits) (max, over map[string]string) {
	t.Helper()
	probe, _, err := f.wrap(t, f.b.reader, creds, f.clock.Now, signing.WithMetadataLimits(limits)).Signer().
		Sign(&registry.Service{Name: "rt-metadata", Nodes: []*registry.Node{{Id: "probe", Address: "127.0.0.1:1"}}})
	if err != nil {
		t.Fatal(err)
	}
	ownPairs, ownBytes := 0, 0
	for k, v := range probe.Nodes[0].Metadata {
		ownPairs++
		ownBytes += len(k) + len(v)
	}

	key := func(i, length int) string {
		prefix := fmt.Sprintf("k%03d-", i)
		return prefix + strings.Repeat("x", length-len(prefix))
	}

	max = map[string]string{}
	pairs := limits.MaxPairs - ownPairs
	budget := record.MaxMetadataBytes - ownBytes
	first := key(0, limits.MaxKeyLen)
	max[first] = randomString(limits.MaxValueLen)
	budget -= len(first) + limits.MaxValueLen
	for i := 1; i < pairs; i++ {
		k := key(i, 16)
		if budget-len(k)-limits.MaxValueLen < 0 {
			// The last pair takes what is left of the byte budget.
			if rest := budget - len(k); rest > 0 {
				max[k] = randomString(rest)
				budget = 0
			}
			break
		}
		max[k] = randomString(limits.MaxValueLen)
		budget -= len(k) + limits.MaxValueLen
	}

	over = map[string]string{}
	for k, v := range max {
		over[k] = v
	}
	if len(max)+ownPairs == limits.MaxPairs {
		over[key(999, 16)] = "x"
	} else {
		k := key(len(max)-1, 16)
		over[k] += "x"
	}
	return max, over
}

// testRoundTrip registers valid records through signet and checks that
// each comes back intact through GetService and the signet watcher:
// addresses in every form go-micro nodes use, metadata at the limits,
// many endpoints, several versions, and broker subscriber nodes.
func testRoundTrip(t *testing.T, f *fixture) {
	cases := []struct {
		name     string
		service  string
		services func(t *testing.T, creds *signing.Credentials) []*registry.Service
		topics   []string
		limits   bool
	}{
		{name: "ipv4", service: "rt-ipv4", services: func(*testing.T, *signing.Credentials) []*registry.Service {
			return []*registry.Service{service("rt-ipv4", "1.0.0", "127.0.0.1:18080")}
		}},
		{name: "ipv6", service: "rt-ipv6", services: func(*testing.T, *signing.Credentials) []*registry.Service {
			return []*registry.Service{service("rt-ipv6", "1.0.0", "[::1]:18081")}
		}},
		{name: "hostname", service: "rt-hostname", services: func(*testing.T, *signing.Credentials) []*registry.Service {
			return []*registry.Service{service("rt-hostname", "1.0.0", "localhost:18082", "Greeter.Example:80")}
		}},
		{name: "no-port", service: "rt-noport", services: func(*testing.T, *signing.Credentials) []*registry.Service {
			return []*registry.Service{service("rt-noport", "1.0.0", "127.0.0.1", "localhost")}
		}},
		{name: "metadata-limit", service: "rt-metadata", limits: true, services: func(t *testing.T, creds *signing.Credentials) []*registry.Service {
			svc := service("rt-metadata", "1.0.0", "127.0.0.1:18083")
			max, over := maxMetadata(t, f, creds, f.b.limits)
			svc.Nodes[0].Metadata = max

			tooLarge := service("rt-metadata", "1.0.0", "127.0.0.1:18083")
			tooLarge.Nodes[0].Metadata = over
			_, _, err := f.wrap(t, f.b.reader, creds, f.clock.Now, signing.WithMetadataLimits(f.b.limits)).Signer().Sign(tooLarge)
			if !errors.Is(err, signing.ErrInvalidService) {
				t.Errorf("signing metadata one step over the %s limits: error %v, want ErrInvalidService; the record under test is not at the limit", f.b.name, err)
			}
			bytes := 0
			for k, v := range max {
				bytes += len(k) + len(v)
			}
			f.report.set("max user metadata", "%d pairs, %d bytes", len(max), bytes)
			return []*registry.Service{svc}
		}},
		{name: "endpoints", service: "rt-endpoints", services: func(*testing.T, *signing.Credentials) []*registry.Service {
			svc := service("rt-endpoints", "1.0.0", "127.0.0.1:18084")
			svc.Endpoints = manyEndpoints(50)
			return []*registry.Service{svc}
		}},
		{name: "versions", service: "rt-versions", services: func(*testing.T, *signing.Credentials) []*registry.Service {
			return []*registry.Service{
				service("rt-versions", "1.0.0", "127.0.0.1:18085"),
				service("rt-versions", "1.1.0", "127.0.0.1:18086"),
				service("rt-versions", "2.0.0-beta", "127.0.0.1:18087"),
			}
		}},
		{name: "broker", service: signing.BrokerService, topics: []string{"rt.events"}, services: func(*testing.T, *signing.Credentials) []*registry.Service {
			return []*registry.Service{brokerService("rt.events", "ff.http.broadcast", "127.0.0.1:18088", "127.0.0.1:18089")}
		}},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			creds := f.identity(t, "roundtrip", []string{c.service}, c.topics)
			services := c.services(t, creds)
			name := c.service
			var opts []signing.SignerOption
			if c.limits {
				opts = append(opts, signing.WithMetadataLimits(f.b.limits))
			}

			watch := f.startWatch(t, f.b.reader, f.clock.Now, name, false)
			var signed []*registry.Service
			for _, svc := range services {
				signed = append(signed, f.register(t, creds, svc, opts...))
			}
			f.checkRoundTrip(t, watch, services, signed)
		})
	}
}

// brokerService returns subscriber nodes of the go-micro http broker for
// topic, as broker.Subscribe registers them.
func brokerService(topic, version string, addresses ...string) *registry.Service {
	svc := &registry.Service{Name: signing.BrokerService, Version: version}
	for i, a := range addresses {
		svc.Nodes = append(svc.Nodes, &registry.Node{
			Id:       fmt.Sprintf("%s-%d-%s", topic, i+1, randomID()),
			Address:  a,
			Metadata: map[string]string{"secure": "false", "broker": "http", signing.TopicMetadataKey: topic},
		})
	}
	return svc
}

// checkRoundTrip checks that every signed node comes back intact through
// the verifying reader's GetService and through the signet watcher, with
// the service's endpoints, and counts the records.
func (f *fixture) checkRoundTrip(t *testing.T, watch *watchLog, originals, signed []*registry.Service) {
	t.Helper()
	for i, want := range signed {
		ids := make([]string, len(want.Nodes))
		for j, n := range want.Nodes {
			ids[j] = n.Id
		}

		var got []*registry.Service
		complete := pollUntil(func() bool {
			got, _ = f.reader.GetService(want.Name)
			for _, id := range ids {
				if _, n := findNode(got, want.Version, id); n == nil {
					return false
				}
			}
			return true
		})
		if !complete {
			raw, rawErr := f.b.reader.GetService(want.Name)
			t.Errorf("GetService(%s) through signet after %v: %s; the plain registry returns %s (error %v)", want.Name, pollTimeout, describe(got), describe(raw), rawErr)
		}

		digest := record.DigestEndpoints(originals[i].Endpoints)
		for _, wn := range want.Nodes {
			svc, gn := findNode(got, want.Version, wn.Id)
			if gn == nil {
				t.Errorf("genuine node %s of %s %s was dropped", wn.Id, want.Name, want.Version)
				f.report.add(genuineDropped, 1)
				continue
			}
			if diff := sameNode(gn, wn); diff != "" {
				t.Errorf("GetService(%s) node %s: %s", want.Name, wn.Id, diff)
			}
			if record.DigestEndpoints(svc.Endpoints) != digest {
				t.Errorf("GetService(%s) returned %d endpoints that differ from the %d registered", want.Name, len(svc.Endpoints), len(originals[i].Endpoints))
			}

			wnode := watch.waitOut(t, fmt.Sprintf("node %s of %s", wn.Id, want.Name), wn.Id)
			if diff := sameNode(wnode, wn); diff != "" {
				t.Errorf("watch result for %s node %s: %s", want.Name, wn.Id, diff)
			}
			f.report.add(roundTripped, 1)
		}
	}
}
