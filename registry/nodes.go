package registry

import "go-micro.dev/v4/registry"

// Node-list helpers shared by the serve-stale view, the table of handed-out
// nodes and the watcher. None of them modifies a node or its input slices.

// hasNode reports whether svc has a node with id.
func hasNode(svc *registry.Service, id string) bool {
	for _, n := range svc.Nodes {
		if n.Id == id {
			return true
		}
	}
	return false
}

// mergeNodes returns the nodes of newer followed by those of older whose
// ids newer lacks, the way go-micro's cache applies an update result. Every
// lookup calls it with the service's whole node list, so long lists are
// matched through a set of ids rather than by scanning.
func mergeNodes(newer *registry.Service, older []*registry.Node) []*registry.Node {
	merged := append([]*registry.Node(nil), newer.Nodes...)
	if len(newer.Nodes)*len(older) <= 256 {
		for _, n := range older {
			if !hasNode(newer, n.Id) {
				merged = append(merged, n)
			}
		}
		return merged
	}

	ids := make(map[string]struct{}, len(newer.Nodes))
	for _, n := range newer.Nodes {
		ids[n.Id] = struct{}{}
	}
	for _, n := range older {
		if _, ok := ids[n.Id]; !ok {
			merged = append(merged, n)
		}
	}
	return merged
}

// withoutDeleted returns the nodes whose ids the delete result deleted
// lacks.
func withoutDeleted(nodes []*registry.Node, deleted *registry.Service) []*registry.Node {
	kept := make([]*registry.Node, 0, len(nodes))
	for _, n := range nodes {
		if !hasNode(deleted, n.Id) {
			kept = append(kept, n)
		}
	}
	return kept
}

// withNodes returns svc itself when nodes is its whole node list, nil when
// nodes is empty although svc had nodes, and otherwise a copy of svc with
// nodes as its node list.
func withNodes(svc *registry.Service, nodes []*registry.Node) *registry.Service {
	if len(nodes) == len(svc.Nodes) {
		return svc
	}
	if len(nodes) == 0 {
		return nil
	}
	c := *svc
	c.Nodes = nodes
	return &c
}

// copyService copies a service and its node list. Nodes themselves are
// shared: nothing in this package modifies a node.
func copyService(svc *registry.Service) *registry.Service {
	c := *svc
	c.Nodes = append([]*registry.Node(nil), svc.Nodes...)
	return &c
}
