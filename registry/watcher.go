package registry

import (
	"errors"
	"sync"
	"time"

	"go-micro.dev/v4/logger"
	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/verify"
)

// watcher filters the results of an inner watcher. go-micro's selector
// cache applies a create or update result by replacing the nodes with the
// same ids and keeping the others, so an unfiltered result would put a
// rogue node into the cache after GetService kept it out.
//
// It also withdraws nodes. Once per sweep interval it checks the nodes the
// wrapper has handed out for this watcher's service and sends a delete
// result for each one that no longer verifies, because go-micro's cache
// would otherwise keep serving it.
type watcher struct {
	inner   registry.Watcher
	r       *Registry
	service string // the watched service, or "" for all

	results chan innerResult
	stop    chan struct{}
	once    sync.Once
	ticker  *time.Ticker

	pending   []*registry.Result
	withdrawn map[versionKey]map[string]*registry.Node // by node id
}

type innerResult struct {
	res *registry.Result
	err error
}

func newWatcher(r *Registry, inner registry.Watcher, service string) *watcher {
	w := &watcher{
		inner:     inner,
		r:         r,
		service:   service,
		results:   make(chan innerResult),
		stop:      make(chan struct{}),
		ticker:    time.NewTicker(r.opts.sweepEvery),
		withdrawn: map[versionKey]map[string]*registry.Node{},
	}
	go w.read()
	return w
}

// read forwards the inner watcher's results until it fails or Stop is
// called.
func (w *watcher) read() {
	for {
		res, err := w.inner.Next()
		select {
		case w.results <- innerResult{res, err}:
		case <-w.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// Next returns the next result with only its verified nodes, or a delete
// result that withdraws nodes which stopped verifying. Results that keep no
// node are skipped, so a result that only adds rogue nodes never reaches
// the caller. Deletions pass, unless serve-stale holds back the deletion of
// a service's last verified nodes.
func (w *watcher) Next() (*registry.Result, error) {
	for {
		if len(w.pending) > 0 {
			res := w.pending[0]
			w.pending = w.pending[1:]
			return res, nil
		}

		select {
		case <-w.stop:
			return nil, registry.ErrWatcherStopped
		case <-w.ticker.C:
			w.pending = w.sweep()
		case in := <-w.results:
			if in.err != nil {
				return nil, in.err
			}
			if res := w.filter(in.res); res != nil {
				return res, nil
			}
		}
	}
}

// Stop stops the inner watcher. Next then returns registry.ErrWatcherStopped.
func (w *watcher) Stop() {
	w.once.Do(func() {
		close(w.stop)
		w.ticker.Stop()
		w.inner.Stop()
	})
}

func (w *watcher) filter(res *registry.Result) *registry.Result {
	if res == nil || res.Service == nil {
		return nil
	}

	if res.Action == "delete" {
		svc := w.r.deletableNodes(withoutNilNodes(res.Service))
		if svc == nil {
			return nil
		}
		if w.r.stale.holdDelete(svc) {
			w.r.servedStale(svc.Name, "watch")
			return nil
		}
		w.r.passed.remove(svc)
		return &registry.Result{Action: res.Action, Service: svc}
	}

	start := time.Now()
	svc := w.r.filterService(res.Service)
	w.r.observeDuration("watch", time.Since(start))
	if svc == nil {
		return nil
	}

	w.r.stale.add(svc)
	if w.r.opts.mode == Enforce {
		w.r.passed.add(svc)
	}
	return &registry.Result{Action: res.Action, Service: svc}
}

// sweep returns delete results for the nodes of this watcher's service that
// were handed out verified and no longer verify, each node once.
func (w *watcher) sweep() []*registry.Result {
	if w.r.opts.mode != Enforce {
		return nil
	}

	var out []*registry.Result
	now := w.r.opts.now()
	tracked := w.r.passed.snapshot(w.service)
	w.forgetUntracked(tracked)
	for _, svc := range tracked {
		key := versionKey{svc.Name, svc.Version}
		_, errs := w.r.opts.verifier.VerifyNodes(svc.Name, svc.Version, svc.Nodes)

		var withdrawn []*registry.Node
		for i, n := range svc.Nodes {
			if errs[i] == nil {
				continue
			}
			w.r.passed.failed(svc.Name, svc.Version, n, now)
			if w.withdrawn[key][n.Id] == n {
				continue
			}
			if w.withdrawn[key] == nil {
				w.withdrawn[key] = map[string]*registry.Node{}
			}
			w.withdrawn[key][n.Id] = n
			withdrawn = append(withdrawn, n)
			w.r.withdrawnNode(svc, n, errs[i])
		}
		if len(withdrawn) > 0 {
			del := &registry.Service{Name: svc.Name, Version: svc.Version, Nodes: withdrawn}
			w.r.stale.withdraw(del)
			out = append(out, &registry.Result{Action: "delete", Service: del})
		}
	}
	return out
}

// forgetUntracked drops the withdrawal records of versions that are no
// longer tracked, so that the map does not grow with every version ever
// withdrawn.
func (w *watcher) forgetUntracked(tracked []*registry.Service) {
	if len(w.withdrawn) == 0 {
		return
	}
	live := make(map[versionKey]bool, len(tracked))
	for _, svc := range tracked {
		live[versionKey{svc.Name, svc.Version}] = true
	}
	for key := range w.withdrawn {
		if !live[key] {
			delete(w.withdrawn, key)
		}
	}
}

// forgedDeletion lists the reasons that show a deleted record was never a
// genuine one. A genuine record that expired or was revoked may be deleted.
var forgedDeletion = []error{
	verify.ErrUnsigned, verify.ErrMalformed, verify.ErrBadSignature, verify.ErrNotAllowed,
	verify.ErrTokenMalformed, verify.ErrTokenSignature, verify.ErrAlgorithmNotAllowed,
	verify.ErrUnknownKeyID, verify.ErrConfirmation, verify.ErrAudience, verify.ErrIssuer,
}

// deletableNodes returns svc without the nodes whose deletion must not
// reach the caller, or nil when that leaves none of the nodes it had.
//
// An attacker who can write to the backend can file a record under the id
// of a genuine node (a forged one, or a byte-for-byte copy of the genuine
// record under another key) and then delete it. Passed on, that deletion
// makes every watcher drop the genuine node, while the genuine record stays
// in the backend where an audit finds nothing wrong. So a deletion is
// ignored in two cases. The first is a deleted record that never verified;
// this applies to etcd and consul only, whose plugins put the deleted
// record in the result, while go-micro's memory registry passes the
// Deregister argument, which has no metadata. The second is a backend that,
// asked again, still contains a verified record for that node id.
func (r *Registry) deletableNodes(svc *registry.Service) *registry.Service {
	if svc == nil || len(svc.Nodes) == 0 || r.opts.mode != Enforce {
		return svc
	}

	nodes := svc.Nodes
	if kind := r.inner.String(); kind == "etcd" || kind == "consul" {
		_, errs := r.opts.verifier.VerifyNodes(svc.Name, svc.Version, nodes)
		var kept []*registry.Node
		for i, n := range nodes {
			if isForged(errs[i]) {
				r.ignoredDeletion(svc, n, errs[i], "the deleted record never verified")
				continue
			}
			kept = append(kept, n)
		}
		nodes = kept
	}
	return withNodes(svc, r.withoutStillRegistered(svc, nodes))
}

// withoutStillRegistered drops the nodes for which the backend still holds
// a record that verifies. A failed lookup keeps every node: a deletion is
// then passed on as the backend reported it.
func (r *Registry) withoutStillRegistered(svc *registry.Service, nodes []*registry.Node) []*registry.Node {
	if len(nodes) == 0 {
		return nodes
	}
	current, err := r.inner.GetService(svc.Name)
	if err != nil {
		return nodes
	}

	live := map[string]bool{}
	for _, cur := range current {
		if cur == nil || cur.Version != svc.Version {
			continue
		}
		_, errs := r.opts.verifier.VerifyNodes(svc.Name, svc.Version, cur.Nodes)
		for i, n := range cur.Nodes {
			if n != nil && errs[i] == nil {
				live[n.Id] = true
			}
		}
	}

	kept := nodes[:0:0]
	for _, n := range nodes {
		if live[n.Id] {
			r.ignoredDeletion(svc, n, nil, "the backend still contains a verified record for this node id")
			continue
		}
		kept = append(kept, n)
	}
	return kept
}

func isForged(err error) bool {
	for _, reason := range forgedDeletion {
		if errors.Is(err, reason) {
			return true
		}
	}
	return false
}

func (r *Registry) ignoredDeletion(svc *registry.Service, n *registry.Node, err error, cause string) {
	r.log.limited("deletion\x00"+truncateKey(svc.Name)+"\x00"+truncateKey(n.Id)+"\x00"+cause, func(repeats int) {
		fields := map[string]any{
			"service": logValue(svc.Name),
			"version": logValue(svc.Version),
			"node":    logValue(n.Id),
			"cause":   cause,
			"repeats": repeats,
		}
		if err != nil {
			fields["reason"] = verify.Reason(err)
		}
		r.opts.logger.Fields(fields).Log(logger.WarnLevel, "signet: ignored a deletion from the watch")
	})
}

// withoutNilNodes returns svc without its nil nodes, or nil when it had
// nodes and all were nil: go-micro's cache dereferences every node of a
// delete result, and a backend record can hold a null node.
func withoutNilNodes(svc *registry.Service) *registry.Service {
	if svc == nil {
		return nil
	}
	kept := make([]*registry.Node, 0, len(svc.Nodes))
	for _, n := range svc.Nodes {
		if n != nil {
			kept = append(kept, n)
		}
	}
	return withNodes(svc, kept)
}

func (r *Registry) withdrawnNode(svc *registry.Service, n *registry.Node, err error) {
	r.log.limited("withdrawn\x00"+svc.Name+"\x00"+svc.Version+"\x00"+truncateKey(n.Id), func(repeats int) {
		r.opts.logger.Fields(map[string]any{
			"service": logValue(svc.Name),
			"version": logValue(svc.Version),
			"node":    logValue(n.Id),
			"address": logValue(n.Address),
			"reason":  verify.Reason(err),
			"error":   logValue(err.Error()),
		}).Log(logger.WarnLevel, "signet: node no longer verifies; withdrawn from watchers")
	})
}
