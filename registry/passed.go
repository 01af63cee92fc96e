package registry

import (
	"sync"
	"time"

	"go-micro.dev/v4/registry"
)

// passedNodes remembers the verified nodes that the wrapper has handed to
// callers, per service version, so that watchers can withdraw a node once
// it stops verifying. That happens when its record expires, its identity is
// revoked or its issuer key leaves the trust bundle. go-micro's registry cache keeps a node
// until a delete result names it, and serves its copy when a lookup fails,
// so without a withdrawal such a node would stay selectable for as long as
// watch events keep refreshing the cache.
type passedNodes struct {
	mu       sync.Mutex
	services map[string]map[string]*passedVersion // by service, then version
	count    int                                  // versions tracked
}

type versionKey struct{ service, version string }

type passedVersion struct {
	nodes []*registry.Node

	// failedSince records when each node id first failed a sweep, so that
	// it is forgotten once every watcher has had time to withdraw it.
	failedSince map[string]time.Time
}

// maxPassedVersions bounds the number of service versions tracked. Past it,
// new versions are not tracked, so the caller's cache refreshes them only
// through its own lookups.
const maxPassedVersions = 10000

// forgetFailedAfter is how long a node that failed a sweep stays tracked, so
// that every watcher, sweeping once per interval, withdraws it.
const forgetFailedAfter = 10 * time.Minute

func newPassedNodes() *passedNodes {
	return &passedNodes{services: map[string]map[string]*passedVersion{}}
}

func (p *passedNodes) get(key versionKey) (*passedVersion, bool) {
	v, ok := p.services[key.service][key.version]
	return v, ok
}

func (p *passedNodes) set(key versionKey, v *passedVersion) {
	versions, ok := p.services[key.service]
	if !ok {
		if p.count >= maxPassedVersions {
			return
		}
		versions = map[string]*passedVersion{}
		p.services[key.service] = versions
	}
	if _, ok := versions[key.version]; !ok {
		if p.count >= maxPassedVersions {
			return
		}
		p.count++
	}
	versions[key.version] = v
}

func (p *passedNodes) drop(key versionKey) {
	versions := p.services[key.service]
	if _, ok := versions[key.version]; !ok {
		return
	}
	delete(versions, key.version)
	p.count--
	if len(versions) == 0 {
		delete(p.services, key.service)
	}
}

// add records the verified nodes of a lookup or of a create or update watch
// result, replacing earlier nodes with the same ids and keeping the others.
func (p *passedNodes) add(svc *registry.Service) {
	p.mu.Lock()
	defer p.mu.Unlock()

	key := versionKey{svc.Name, svc.Version}
	cur, ok := p.get(key)
	if !ok {
		p.set(key, &passedVersion{nodes: append([]*registry.Node(nil), svc.Nodes...)})
		return
	}

	cur.nodes = mergeNodes(svc, cur.nodes)
	for _, n := range svc.Nodes {
		delete(cur.failedSince, n.Id)
	}
}

// remove stops tracking the nodes of a delete result. A result without
// nodes removes the whole version. go-micro's cache then drops the whole
// service and looks it up again, which tracks the other versions anew.
func (p *passedNodes) remove(svc *registry.Service) {
	p.mu.Lock()
	defer p.mu.Unlock()

	key := versionKey{svc.Name, svc.Version}
	cur, ok := p.get(key)
	if !ok {
		return
	}
	if len(svc.Nodes) == 0 {
		p.drop(key)
		return
	}

	cur.nodes = withoutDeleted(cur.nodes, svc)
	if len(cur.nodes) == 0 {
		p.drop(key)
	}
}

// snapshot returns copies of the tracked versions of service, or of every
// service when service is empty.
func (p *passedNodes) snapshot(service string) []*registry.Service {
	p.mu.Lock()
	defer p.mu.Unlock()

	var out []*registry.Service
	add := func(name string, versions map[string]*passedVersion) {
		for version, v := range versions {
			out = append(out, &registry.Service{Name: name, Version: version, Nodes: append([]*registry.Node(nil), v.nodes...)})
		}
	}
	if service != "" {
		add(service, p.services[service])
		return out
	}
	for name, versions := range p.services {
		add(name, versions)
	}
	return out
}

// failed records that node failed a sweep at now, and stops tracking it
// once it has been failing for longer than forgetFailedAfter. A renewed
// record for the same id replaces the node, so only the tracked node itself
// is ever removed.
func (p *passedNodes) failed(service, version string, node *registry.Node, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()

	cur, ok := p.get(versionKey{service, version})
	if !ok {
		return
	}
	if cur.failedSince == nil {
		cur.failedSince = map[string]time.Time{}
	}
	since, seen := cur.failedSince[node.Id]
	if !seen {
		cur.failedSince[node.Id] = now
		return
	}
	if now.Sub(since) < forgetFailedAfter {
		return
	}

	kept := cur.nodes[:0:0]
	for _, n := range cur.nodes {
		if n != node {
			kept = append(kept, n)
		}
	}
	cur.nodes = kept
	delete(cur.failedSince, node.Id)
	if len(kept) == 0 {
		p.drop(versionKey{service, version})
	}
}
