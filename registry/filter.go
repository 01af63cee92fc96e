package registry

import (
	"go-micro.dev/v4/logger"
	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/record"
	"github.com/signet-micro/signet/verify"
)

// filter returns new services holding the verified nodes of services,
// without the versions that have none left. The input is not modified.
func (r *Registry) filter(services []*registry.Service) []*registry.Service {
	out := make([]*registry.Service, 0, len(services))
	for _, svc := range services {
		if v := r.filterService(svc); v != nil {
			out = append(out, v)
		}
	}
	return out
}

// filterService returns a new service with the verified nodes of svc, or
// nil when none verified. Endpoints and metadata are kept only when a
// verified node signed exactly those, because backends take them from
// whichever record they read first, which may be a rogue one.
func (r *Registry) filterService(svc *registry.Service) *registry.Service {
	if svc == nil {
		return nil
	}

	// The node list is read once: go-micro's memory registry hands the same
	// *Service to every watcher, and its registry cache appends to a watch
	// result's node list in place.
	nodes := svc.Nodes
	out := &registry.Service{Name: svc.Name, Version: svc.Version, Nodes: make([]*registry.Node, 0, len(nodes))}
	verified, errs := r.opts.verifier.VerifyNodes(svc.Name, svc.Version, nodes)
	records := verified[:0]
	for i, node := range nodes {
		if err := errs[i]; err != nil {
			r.rejected(err)
			if r.opts.mode == Permissive && node != nil {
				out.Nodes = append(out.Nodes, node)
			}
			continue
		}

		if r.opts.observer != nil {
			r.opts.observer.NodeVerified(svc.Name)
		}
		out.Nodes = append(out.Nodes, node)
		records = append(records, verified[i])
	}
	if len(out.Nodes) == 0 {
		return nil
	}

	if r.opts.mode == Permissive {
		out.Endpoints, out.Metadata = svc.Endpoints, svc.Metadata
	}
	if len(records) == 0 {
		return out
	}

	endpoints := record.DigestEndpoints(svc.Endpoints)
	metadata := record.DigestMetadata(svc.Metadata)
	var endpointsOK, metadataOK bool
	for _, rec := range records {
		endpointsOK = endpointsOK || rec.EndpointsDigest == endpoints
		metadataOK = metadataOK || rec.MetadataDigest == metadata
	}

	if endpointsOK {
		out.Endpoints = svc.Endpoints
	} else if r.opts.mode == Enforce && len(svc.Endpoints) > 0 {
		r.unverifiedFields(svc, "endpoints")
	}
	if metadataOK {
		out.Metadata = svc.Metadata
	} else if r.opts.mode == Enforce && len(svc.Metadata) > 0 {
		r.unverifiedFields(svc, "metadata")
	}
	return out
}

func (r *Registry) rejected(err error) {
	reason := verify.Reason(err)
	rej, _ := err.(*verify.Rejection)
	if rej == nil {
		rej = &verify.Rejection{Err: err}
	}
	if r.opts.observer != nil {
		r.opts.observer.NodeRejected(rej.Service, reason)
	}
	r.log.rejected(rej, reason, r.opts.mode)
}

func (r *Registry) unverifiedFields(svc *registry.Service, what string) {
	r.log.limited("fields/"+svc.Name+"/"+svc.Version+"/"+what, func(repeats int) {
		r.opts.logger.Fields(map[string]any{
			"service": logValue(svc.Name),
			"version": logValue(svc.Version),
			"field":   what,
			"repeats": repeats,
		}).Log(logger.WarnLevel, "signet: service "+what+" do not match any verified node's record; passing none on")
	})
}
