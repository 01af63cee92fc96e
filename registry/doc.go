// Package registry wraps a go-micro registry so that every node a service
// registers is signed and every node a client discovers is verified.
//
//	reg, err := registry.FromEnv(etcd.NewRegistry(registry.Addrs("127.0.0.1:2379")))
//	service := micro.NewService(micro.Registry(reg))
//
// The wrapper is itself a go-micro registry.Registry. Register signs a copy
// of the service with the node's key (the caller's service is never
// modified). GetService and every result of Watch drop the nodes that fail
// verification before they reach the caller, so go-micro's selector cache,
// its client and its broker only ever see verified nodes: a rogue node that
// appears after the first lookup is dropped from the watch result as well.
// Service-level endpoints and metadata are passed on only when a verified
// node signed them; otherwise they are emptied.
//
// What the wrapper does not guarantee: ListServices returns service names
// as the backend holds them, rogue ones included, because it carries no
// nodes to verify (look a name up with GetService before trusting it);
// Deregister and watch deletions pass through unverified, because the
// backend accepts a deletion from anyone who can write to it, and deleting
// a node cannot redirect traffic (see [WithServeStale] for riding out a
// mass deletion).
package registry
