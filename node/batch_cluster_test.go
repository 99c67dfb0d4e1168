package node_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/version"
)

// A replica of an earlier release, which refuses replica batches as an
// unknown message type, still gets every write and serves every read: its
// peers fall back to single calls. Without the fallback its refusals fail
// the writes at ALL.
func TestReplicaWithoutBatchesGetsEveryWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east"}})
		node.RefuseBatches(tc.nodes["east-2"], true)
		const keys = 40
		var wg sync.WaitGroup
		errs := make(chan error, keys)
		for i := range keys {
			wg.Go(func() {
				key := fmt.Appendf(nil, "old-%d", i)
				if _, err := tc.client.Put(ctx(t), key, []byte("v"), &client.WriteOptions{Consistency: "ALL"}); err != nil {
					errs <- fmt.Errorf("put %s: %w", key, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for i := range keys {
			key := fmt.Appendf(nil, "old-%d", i)
			obj, err := tc.nodes["east-2"].Store().Get("default", key)
			if err != nil {
				t.Fatal(err)
			}
			if v := obj.Values(); len(v) != 1 || string(v[0]) != "v" {
				t.Errorf("east-2 holds %q for %s", v, key)
			}
			res, err := tc.client.Get(ctx(t), key, &client.ReadOptions{Consistency: "ALL"})
			if err != nil {
				t.Fatalf("read %s at ALL: %v", key, err)
			}
			if v := values(res); len(v) != 1 || v[0] != "v" {
				t.Errorf("read %s at ALL: %q", key, v)
			}
		}
	})
}

// Each write of a replica batch succeeds or fails on its own: a write to a
// keyspace the replica does not know, or with a key past the limit, fails
// alone, and the others in the batch are merged.
func TestBatchWritesFailOnTheirOwn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east"}})
		obj := version.New().Update(nil, "east-9~a", version.Write{Value: []byte("v"), WrittenAt: 1})
		long := []byte(strings.Repeat("k", api.MaxKeyLen+1))
		got := node.MergeBatch(tc.nodes["east-1"], "east-2", []node.BatchWrite{
			{Keyspace: "default", Key: []byte("a"), Object: obj},
			{Keyspace: "nowhere", Key: []byte("b"), Object: obj},
			{Keyspace: "default", Key: long, Object: obj},
			{Keyspace: "default", Key: []byte("c"), Object: obj},
		})
		if len(got) != 4 || got[0] != "" || got[1] == "" || got[2] == "" || got[3] != "" {
			t.Fatalf("errors %q: want the unknown keyspace and the long key to fail alone", got)
		}
		for _, k := range []string{"a", "c"} {
			o, err := tc.nodes["east-1"].Store().Get("default", []byte(k))
			if err != nil {
				t.Fatal(err)
			}
			if v := o.Values(); len(v) != 1 || string(v[0]) != "v" {
				t.Errorf("%s holds %q, want the batch's write", k, v)
			}
		}
		if o, err := tc.nodes["east-1"].Store().Get("default", []byte("b")); err != nil || len(o.Values()) != 0 {
			if err == nil {
				err = errors.New("written")
			}
			t.Errorf("b in keyspace default: %v", err)
		}
	})
}
