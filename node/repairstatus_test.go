package node_test

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/meridian-kv/meridian/api"
)

// TestRepairStatusNamesEveryMemberThatDidNotAnswer: repair status merges
// every member's checkpoints, so with members down it fails as unavailable
// and names each of them, instead of answering from the rest.
func TestRepairStatusNamesEveryMemberThatDidNotAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west", "central"}, nodesPerRegion: 1, replicas: 1})
		if _, err := tc.client.RepairStatus(ctx(t), ""); err != nil {
			t.Fatalf("with every member up: %v", err)
		}
		var down []string
		for _, id := range tc.ids() {
			if tc.config(id).DC != "east" {
				down = append(down, id)
				if err := tc.kill(id); err != nil {
					t.Fatal(err)
				}
			}
		}
		_, err := tc.client.RepairStatus(ctx(t), "")
		var ce *api.ClientError
		if !errors.As(err, &ce) || ce.Code != api.CodeUnavailable {
			t.Fatalf("with %v down: %v, want %s", down, err, api.CodeUnavailable)
		}
		for _, id := range down {
			if !strings.Contains(ce.Message, id) {
				t.Errorf("the error does not name %s: %s", id, ce.Message)
			}
		}
	})
}
