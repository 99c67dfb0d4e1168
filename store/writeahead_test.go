package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/meridian-kv/meridian/version"
)

var queueTargets = []string{"east-2", "west-1", "west-2"}

// queued returns the Queue of a test write.
func queued(trace []byte) Queue {
	return Queue{Targets: queueTargets, Trace: trace, Now: hintT0}
}

// hintValues returns, per target, the (key, value) pairs its hints hold.
func hintValues(t *testing.T, s *Store) map[string]map[ack]bool {
	t.Helper()
	out := map[string]map[ack]bool{}
	for _, target := range queueTargets {
		out[target] = map[ack]bool{}
		for _, h := range hintsOf(t, s, target) {
			if h.Keyspace != "ks" {
				t.Fatalf("hint for %s in keyspace %q", target, h.Keyspace)
			}
			for _, v := range h.Object.Values() {
				out[target][ack{string(h.Key), string(v)}] = true
			}
		}
	}
	return out
}

// TestQueuedWriteAndItsHintsAreOneSyncedBatch crashes a store while
// writers write with UpdateQueued: in every crash clone, each acknowledged
// write is in its object AND in the hint of every target; and the object
// and the hints are one batch, so no clone holds a value in the object
// without it in every hint, or in a hint without it in the object.
func TestQueuedWriteAndItsHintsAreOneSyncedBatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 0x77726974656168))
	fs := vfs.NewCrashableMem()
	s, err := Open("db", &Options{FS: fs, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	const workers, each, keys = 6, 40, 32
	total := workers * each
	var log ackLog
	var cloneMu sync.Mutex
	var clones []*vfs.MemFS
	var before [][]ack
	crash := func() {
		cloneMu.Lock()
		defer cloneMu.Unlock()
		before = append(before, log.snapshot())
		clones = append(clones, fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rng}))
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("key-%02d", (w*each+i)%keys)
				val := fmt.Sprintf("w%d-%d", w, i)
				_, _, dropped, err := s.UpdateQueued("ks", []byte(key), blind(fmt.Sprintf("n%d", w), val), queued(nil))
				if err != nil || len(dropped) > 0 {
					t.Errorf("UpdateQueued: dropped %v, %v", dropped, err)
					continue
				}
				log.add(ack{key, val})
				if w == 0 && i%10 == 5 {
					crash()
				}
			}
		})
	}
	wg.Wait()
	crash()

	for i, c := range clones {
		r, err := Open("db", &Options{FS: c, Logger: quiet})
		if err != nil {
			t.Fatalf("reopen clone %d: %v", i, err)
		}
		objects := map[ack]bool{}
		for _, a := range storedValues(t, r) {
			objects[a] = true
		}
		hints := hintValues(t, r)
		for _, a := range before[i] {
			if !objects[a] {
				t.Errorf("crash %d lost acknowledged write %v", i, a)
			}
		}
		for _, target := range queueTargets {
			for a := range objects {
				if !hints[target][a] {
					t.Errorf("crash %d: %v is in the object but not queued for %s", i, a, target)
				}
			}
			for a := range hints[target] {
				if !objects[a] {
					t.Errorf("crash %d: %v is queued for %s but not in the object", i, a, target)
				}
			}
		}
		checkHintStats(t, r)
		t.Logf("crash %d: %d acknowledged before it, %d of %d values present", i, len(before[i]), len(objects), total)
		r.Close()
	}
}

func TestUpdateQueuedMergesClearsAndBounds(t *testing.T) {
	s := openMem(t)
	key := []byte("k")
	trace1, trace2 := bytes.Repeat([]byte{1}, 24), bytes.Repeat([]byte{2}, 24)

	obj1, changed, dropped, err := s.UpdateQueued("ks", key, put("c", "v1"), queued(trace1))
	if err != nil || !changed || len(dropped) > 0 {
		t.Fatalf("UpdateQueued: changed=%v dropped=%v err=%v", changed, dropped, err)
	}
	for _, target := range queueTargets {
		hs := hintsOf(t, s, target)
		if len(hs) != 1 || !version.Equal(hs[0].Object, obj1) || !bytes.Equal(hs[0].Trace, trace1) || !hs[0].Created.Equal(hintT0) {
			t.Fatalf("hint for %s: %+v, want the written object with the write's trace", target, hs)
		}
	}
	checkHintStats(t, s)

	// A second write while the first one's hints are pending merges into
	// them, keeping the first trace and creation time.
	q := queued(trace2)
	q.Now = hintT0.Add(time.Minute)
	obj2, _, _, err := s.UpdateQueued("ks", key, put("c", "v2"), q)
	if err != nil {
		t.Fatal(err)
	}
	hs := hintsOf(t, s, "west-1")
	if len(hs) != 1 || !version.Equal(hs[0].Object, obj2) || !bytes.Equal(hs[0].Trace, trace1) || !hs[0].Created.Equal(hintT0) {
		t.Fatalf("merged hint %+v", hs)
	}
	checkHintStats(t, s)

	// The first write's acks do not remove a hint that holds the second.
	if n, err := s.ClearHints("ks", key, obj1, queueTargets); err != nil || n != 0 {
		t.Fatalf("ClearHints(obj1) removed %d hints (%v), want 0", n, err)
	}
	// The second write's acks remove the hints of the targets that acked.
	if n, err := s.ClearHints("ks", key, obj2, []string{"east-2", "west-1"}); err != nil || n != 2 {
		t.Fatalf("ClearHints(obj2) removed %d hints (%v), want 2", n, err)
	}
	if got := s.HintStats(); len(got) != 1 || got["west-2"].Count != 1 {
		t.Fatalf("HintStats after clearing = %v, want one hint for west-2", got)
	}
	checkHintStats(t, s)

	// A target at its byte bound gets no hint and is reported dropped; the
	// write itself and the other targets' hints are kept.
	q = queued(nil)
	q.Limits.MaxBytesPerTarget = s.HintStats()["west-2"].Bytes + 10
	q.Targets = []string{"east-2", "west-2"}
	obj3, _, dropped, err := s.UpdateQueued("ks", []byte("other"), put("c", "v3"), q)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dropped, []string{"west-2"}) {
		t.Fatalf("dropped %v, want [west-2]", dropped)
	}
	if got := values(obj3); len(got) != 1 || got[0] != "v3" {
		t.Fatalf("write at a full hint bound stored %q", got)
	}
	if hs := hintsOf(t, s, "east-2"); len(hs) != 1 || string(hs[0].Key) != "other" {
		t.Fatalf("east-2 hints %+v", hs)
	}
	checkHintStats(t, s)

	// A write that changes nothing queues nothing.
	before := s.HintStats()
	if _, changed, _, err := s.UpdateQueued("ks", key, func(*version.Object) (*version.Object, error) { return nil, nil }, queued(nil)); err != nil || changed {
		t.Fatalf("no-op UpdateQueued: changed=%v err=%v", changed, err)
	}
	if after := s.HintStats(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a no-op write changed the hints: %v -> %v", before, after)
	}

	// Bad input is refused up front.
	if _, _, _, err := s.UpdateQueued("ks", key, put("c", "x"), Queue{Targets: []string{""}, Now: hintT0}); err == nil {
		t.Error("an empty target was accepted")
	}
	if _, _, _, err := s.UpdateQueued("ks", key, put("c", "x"), Queue{Targets: queueTargets}); err == nil {
		t.Error("a queue without a time was accepted")
	}
	if _, _, _, err := s.UpdateQueued("ks", key, put("c", "x"), Queue{Targets: queueTargets, Now: hintT0, Trace: []byte{1}}); err == nil {
		t.Error("a malformed trace reference was accepted")
	}
}

// TestQueuedTombstone: a delete queues its tombstone like any write, and
// the tombstone index is written with it.
func TestQueuedTombstone(t *testing.T) {
	s := openMem(t)
	key := []byte("gone")
	if _, _, _, err := s.UpdateQueued("ks", key, put("c", "v"), queued(nil)); err != nil {
		t.Fatal(err)
	}
	del := func(cur *version.Object) (*version.Object, error) {
		return cur.Update(cur.Context(), "c", version.Write{Deleted: true}), nil
	}
	obj, _, _, err := s.UpdateQueued("ks", key, del, queued(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !IsTombstone(obj) {
		t.Fatalf("delete stored %+v", obj)
	}
	for _, target := range queueTargets {
		hs := hintsOf(t, s, target)
		if len(hs) != 1 || !IsTombstone(hs[0].Object) {
			t.Fatalf("hint for %s after a delete: %+v", target, hs)
		}
	}
	n := 0
	if err := s.Tombstones("ks", func(uint64, []byte, time.Time) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("tombstone index holds %d entries, want 1", n)
	}
}

// BenchmarkUpdateQueued compares, on the real disk with 64 writers sharing
// fsyncs, a plain Update of 1 KiB values with an UpdateQueued that queues
// hints for the 5 other replicas of 2 regions × 3 in the same batch, and
// with the whole life of those hints (UpdateQueued, then ClearHints once
// the replicas acked).
func BenchmarkUpdateQueued(b *testing.B) {
	value := bytes.Repeat([]byte("v"), 1024)
	fn := benchWrite(value)
	targets := []string{"east-2", "east-3", "west-1", "west-2", "west-3"}
	for _, mode := range []string{"plain", "queued", "queued+clear"} {
		b.Run(mode, func(b *testing.B) {
			s := openDisk(b)
			b.SetBytes(int64(len(value)))
			b.SetParallelism(32)
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					key := benchKey(int(next.Add(1)))
					var obj *version.Object
					var err error
					if mode == "plain" {
						obj, _, err = s.Update("ks", key, fn)
					} else {
						obj, _, _, err = s.UpdateQueued("ks", key, fn, Queue{Targets: targets, Now: hintT0})
					}
					if err == nil && mode == "queued+clear" {
						_, err = s.ClearHints("ks", key, obj, targets)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestRedeliveryWritesNothing: a hint delivered to a replica that already
// holds its object (a write-ahead hint whose clear was lost in a crash,
// or sent while the write's own copy landed) costs the replica a read and
// no write: no WAL bytes, so no fsync.
func TestRedeliveryWritesNothing(t *testing.T) {
	s := openMem(t)
	obj, _, _, err := s.UpdateQueued("ks", []byte("k"), put("c", "v"), queued(nil))
	if err != nil {
		t.Fatal(err)
	}
	replica := openMem(t)
	if _, changed, err := replica.Merge("ks", []byte("k"), obj); err != nil || !changed {
		t.Fatalf("first delivery: changed=%v err=%v", changed, err)
	}
	before := replica.db.Metrics().WAL.BytesIn
	if before == 0 {
		t.Fatal("the first delivery wrote no WAL bytes: the check below would prove nothing")
	}
	h := hintsOf(t, s, "west-1")[0]
	if _, changed, err := replica.Merge("ks", h.Key, h.Object); err != nil || changed {
		t.Fatalf("redelivery: changed=%v err=%v", changed, err)
	}
	if after := replica.db.Metrics().WAL.BytesIn; after != before {
		t.Fatalf("redelivery wrote %d WAL bytes", after-before)
	}
}
