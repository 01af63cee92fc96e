package registry

import (
	"sync"
	"time"

	"go-micro.dev/v4/registry"
)

// staleView remembers the verified nodes of each service, from lookups and
// watch results, so that serve-stale can return them for a bounded window
// when none is left. It does nothing when the window is 0.
type staleView struct {
	window time.Duration
	now    func() time.Time

	mu       sync.Mutex
	services map[string]*staleService
}

type staleService struct {
	versions   map[string]*registry.Service // nodes by version, copied
	verifiedAt time.Time
}

func newStaleView(window time.Duration, now func() time.Time) *staleView {
	return &staleView{window: window, now: now, services: map[string]*staleService{}}
}

// replace records the verified result of a lookup of name.
func (v *staleView) replace(name string, services []*registry.Service) {
	if v.window == 0 {
		return
	}

	s := &staleService{versions: make(map[string]*registry.Service, len(services)), verifiedAt: v.now()}
	for _, svc := range services {
		s.versions[svc.Version] = copyService(svc)
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	v.services[name] = s
}

// add records the verified nodes of a create or update watch result.
func (v *staleView) add(svc *registry.Service) {
	if v.window == 0 {
		return
	}

	v.mu.Lock()
	defer v.mu.Unlock()

	s, ok := v.services[svc.Name]
	if !ok {
		s = &staleService{versions: map[string]*registry.Service{}}
		v.services[svc.Name] = s
	}
	s.verifiedAt = v.now()

	merged := copyService(svc)
	if cur, ok := s.versions[svc.Version]; ok {
		merged.Nodes = mergeNodes(svc, cur.Nodes)
	}
	s.versions[svc.Version] = merged
}

// holdDelete applies a delete watch result to the view and reports whether
// it must be held back, because it would remove the last nodes of a
// service whose verified nodes were seen within the window.
func (v *staleView) holdDelete(svc *registry.Service) bool {
	if v.window == 0 {
		return false
	}

	v.mu.Lock()
	defer v.mu.Unlock()

	s, ok := v.services[svc.Name]
	if !ok {
		return false
	}

	remaining := 0
	for version, cur := range s.versions {
		if version != svc.Version {
			remaining += len(cur.Nodes)
			continue
		}
		if len(svc.Nodes) == 0 {
			continue
		}
		for _, n := range cur.Nodes {
			if !hasNode(svc, n.Id) {
				remaining++
			}
		}
	}
	if remaining > 0 || v.now().Sub(s.verifiedAt) > v.window {
		v.applyDelete(s, svc)
		return false
	}
	return true
}

func (v *staleView) applyDelete(s *staleService, svc *registry.Service) {
	cur, ok := s.versions[svc.Version]
	if !ok {
		return
	}
	if len(svc.Nodes) == 0 {
		delete(s.versions, svc.Version)
		return
	}

	cur.Nodes = withoutDeleted(cur.Nodes, svc)
}

// withdraw removes nodes that stopped verifying, so that serve-stale never
// returns them.
func (v *staleView) withdraw(svc *registry.Service) {
	if v.window == 0 {
		return
	}

	v.mu.Lock()
	defer v.mu.Unlock()

	if s, ok := v.services[svc.Name]; ok {
		v.applyDelete(s, svc)
	}
}

// serve returns copies of the last verified versions of name, when they
// were verified within the window.
func (v *staleView) serve(name string) []*registry.Service {
	if v.window == 0 {
		return nil
	}

	v.mu.Lock()
	defer v.mu.Unlock()

	s, ok := v.services[name]
	if !ok || v.now().Sub(s.verifiedAt) > v.window {
		return nil
	}

	var out []*registry.Service
	for _, svc := range s.versions {
		if len(svc.Nodes) > 0 {
			out = append(out, copyService(svc))
		}
	}
	return out
}
