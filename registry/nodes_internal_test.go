package registry

import (
	"fmt"
	"testing"

	"go-micro.dev/v4/registry"
)

func TestMergeNodesShortAndLong(t *testing.T) {
	for _, size := range []int{4, 100} {
		newer := &registry.Service{}
		var older []*registry.Node
		for i := 0; i < size; i++ {
			newer.Nodes = append(newer.Nodes, &registry.Node{Id: fmt.Sprintf("n-%d", i)})
			older = append(older, &registry.Node{Id: fmt.Sprintf("n-%d", i+size/2)})
		}

		merged := mergeNodes(newer, older)
		if want := size + size/2; len(merged) != want {
			t.Fatalf("size %d: merged %d nodes, want %d", size, len(merged), want)
		}
		seen := map[string]bool{}
		for _, n := range merged {
			if seen[n.Id] {
				t.Fatalf("size %d: node %s appears twice", size, n.Id)
			}
			seen[n.Id] = true
		}
		for i, n := range newer.Nodes {
			if merged[i] != n {
				t.Fatalf("size %d: merged[%d] is not newer's node %s", size, i, n.Id)
			}
		}
	}
}
