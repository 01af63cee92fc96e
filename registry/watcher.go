package registry

import (
	"time"

	"go-micro.dev/v4/registry"
)

// watcher filters the results of an inner watcher. go-micro's selector
// cache applies a create or update result by replacing the nodes with the
// same ids and keeping the others, so an unfiltered result would put a
// rogue node into the cache after GetService kept it out.
type watcher struct {
	inner registry.Watcher
	r     *Registry
}

// Next returns the next result with only its verified nodes. Results that
// keep no node are skipped, so a result that only adds rogue nodes never
// reaches the caller. Deletions pass, unless serve-stale holds back the
// deletion of a service's last verified nodes.
func (w *watcher) Next() (*registry.Result, error) {
	for {
		res, err := w.inner.Next()
		if err != nil {
			return nil, err
		}
		if res == nil || res.Service == nil {
			continue
		}

		if res.Action == "delete" {
			if w.r.stale.holdDelete(res.Service) {
				w.r.servedStale(res.Service.Name, "watch")
				continue
			}
			return res, nil
		}

		start := time.Now()
		svc := w.r.filterService(res.Service)
		w.r.observeDuration("watch", time.Since(start))
		if svc == nil {
			continue
		}

		w.r.stale.add(svc)
		return &registry.Result{Action: res.Action, Service: svc}, nil
	}
}

// Stop stops the inner watcher.
func (w *watcher) Stop() { w.inner.Stop() }
