package node_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/internal/walsync"
)

// logSyncs watches the syncs of one node's write-ahead log: its gate can
// hold one, and once watch is set every sync is told to synced.
type logSyncs struct {
	gate   *walsync.Gate
	watch  atomic.Bool
	synced chan struct{}
}

func newLogSyncs() *logSyncs {
	return &logSyncs{gate: walsync.NewGate(), synced: make(chan struct{}, 1024)}
}

func (l *logSyncs) wrap(fs vfs.FS) vfs.FS {
	return walsync.OnSync(fs, func() error {
		l.gate.Wait()
		if l.watch.Load() {
			select {
			case l.synced <- struct{}{}:
			default:
			}
		}
		return nil
	})
}

// A put's copies leave for the other replicas while the coordinator's
// own write syncs, and the put is acknowledged only once that sync is
// done: with the coordinator's log sync held, both other replicas get
// the write and the put has not returned; released, it returns.
func TestCopiesLeaveWhileTheCoordinatorSyncs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		syncs := map[string]*logSyncs{}
		tc := startCluster(t, clusterOpts{regions: []string{"east"}, nodesPerRegion: 3, fs: func(id string, fs vfs.FS) vfs.FS {
			mu.Lock()
			defer mu.Unlock()
			syncs[id] = newLogSyncs()
			return syncs[id].wrap(fs)
		}})
		key := []byte("pipelined")
		ring, err := tc.client.Ring(ctx(t), "", key)
		if err != nil {
			t.Fatal(err)
		}
		coord, others := ring.Replicas["east"][0], ring.Replicas["east"][1:]
		cl := tc.dialOnly(coord, client.Config{})

		mu.Lock()
		for _, id := range others {
			syncs[id].watch.Store(true)
		}
		gate := syncs[coord].gate
		mu.Unlock()
		gate.Hold()

		type outcome struct {
			res *client.PutResult
			err error
		}
		done := make(chan outcome, 1)
		go func() {
			res, err := cl.Put(ctx(t), key, []byte("v"), &client.WriteOptions{Consistency: "LOCAL_QUORUM"})
			done <- outcome{res, err}
		}()
		var release chan struct{}
		select {
		case release = <-gate.Held():
		case o := <-done:
			t.Fatalf("the put returned (%+v, %v) without a log sync on %s", o.res, o.err, coord)
		}
		// Both other replicas hold the write while the coordinator's sync is
		// out. Each of their log syncs is a moment to look again.
		wait := ctx(t)
		have := func() bool {
			for _, id := range others {
				obj, err := tc.nodes[id].Store().Get("default", key)
				if err != nil || obj.IsEmpty() {
					return false
				}
			}
			return true
		}
		for !have() {
			select {
			case <-syncs[others[0]].synced:
			case <-syncs[others[1]].synced:
			case o := <-done:
				close(release)
				t.Fatalf("the put returned (%+v, %v) while %s's log sync was held", o.res, o.err, coord)
			case <-wait.Done():
				close(release)
				t.Fatalf("%v: the copies never reached %v while %s's log sync was held", wait.Err(), others, coord)
			}
		}
		select {
		case o := <-done:
			close(release)
			t.Fatalf("the put returned (%+v, %v) before %s's log sync finished", o.res, o.err, coord)
		default:
		}
		close(release)
		o := <-done
		if o.err != nil {
			t.Fatalf("put: %v", o.err)
		}
		if o.res.Acked["east"] < 2 {
			t.Fatalf("acked %v, want east=2 at least", o.res.Acked)
		}
	})
}
