package store

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/meridian-kv/meridian/version"
)

var crashSeed = flag.Uint64("crash-seed", 0, "seed of the crash tests (0: from the clock)")

func seed(t *testing.T) uint64 {
	s := *crashSeed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -crash-seed=%d)", s, s)
	return s
}

// ack is one write Update returned without error for.
type ack struct{ key, val string }

// ackLog records acknowledged writes in completion order.
type ackLog struct {
	mu   sync.Mutex
	acks []ack
}

func (l *ackLog) add(a ack) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acks = append(l.acks, a)
}

func (l *ackLog) snapshot() []ack {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.acks)
}

// checkClone opens a store on a crash clone and reports the acknowledged
// writes missing from it and how many values it holds in all.
func checkClone(t *testing.T, fs vfs.FS, acked []ack) (missing []ack, present int) {
	t.Helper()
	s, err := Open("db", &Options{FS: fs, Logger: quiet})
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer s.Close()
	held := map[ack]bool{}
	err = s.Scan("ks", 0, 0, func(_ uint64, key []byte, obj *version.Object) error {
		for _, v := range obj.Values() {
			held[ack{string(key), string(v)}] = true
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan after crash: %v", err)
	}
	for _, a := range acked {
		if !held[a] {
			missing = append(missing, a)
		}
		// Get agrees with Scan.
		obj, err := s.Get("ks", []byte(a.key))
		if err != nil {
			t.Fatal(err)
		}
		if held[a] != slices.Contains(values(obj), a.val) {
			t.Fatalf("Get and Scan disagree on %v", a)
		}
	}
	return missing, len(held)
}

// crashWorkload runs writers blind-writing unique values to shared keys
// (each becomes a sibling, so every acknowledged value must still be there
// after a crash), and takes a crash clone of the filesystem whenever the
// number of acknowledgements passes one of cloneAt, and once more at the
// end. before[i] holds the acks recorded before clone i began.
func crashWorkload(t *testing.T, s *Store, fs *vfs.MemFS, rng *rand.Rand, cloneAt []int) (clones []*vfs.MemFS, before [][]ack, total int) {
	const workers, each, keys = 8, 60, 48
	total = workers * each
	var log ackLog
	reached := make(chan int, total)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("key-%02d", (w*each+i)%keys)
				val := fmt.Sprintf("w%d-%d", w, i)
				_, _, err := s.Update("ks", []byte(key), blind(fmt.Sprintf("n%d", w), val))
				if err != nil {
					t.Errorf("Update: %v", err)
				} else {
					log.add(ack{key, val})
				}
				reached <- 1
			}
		})
	}
	crash := func() {
		// Every ack recorded now returned before the clone starts.
		before = append(before, log.snapshot())
		clones = append(clones, fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rng}))
	}
	done := 0
	for range total {
		done += <-reached
		for len(clones) < len(cloneAt) && done >= cloneAt[len(clones)] {
			crash()
		}
	}
	wg.Wait()
	crash()
	return clones, before, total
}

// TestCrashKeepsAcknowledgedWrites is P8 of TESTING.md: after a crash
// (a clone of the filesystem keeping every synced byte and a random half
// of the unsynced ones) every write Update acknowledged is there.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 0x6d6572696469616e))
	fs := vfs.NewCrashableMem()
	s, err := Open("db", &Options{FS: fs, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	clones, before, total := crashWorkload(t, s, fs, rng, []int{1, 120, 240, 360})
	for i, c := range clones {
		missing, present := checkClone(t, c, before[i])
		t.Logf("crash %d: %d writes acknowledged before it, %d of %d writes present after it", i, len(before[i]), present, total)
		if len(missing) > 0 {
			t.Errorf("crash %d lost %d acknowledged writes, e.g. %v", i, len(missing), missing[:min(5, len(missing))])
		}
		// Not vacuous: the mid-workload crashes really happened mid-workload.
		if i < len(clones)-1 && present == total {
			t.Errorf("crash %d holds all %d writes: it was not taken while writing", i, total)
		}
	}
	if n := len(before[len(before)-1]); n != total {
		t.Errorf("%d of %d writes were acknowledged", n, total)
	}
}

// storedValues returns every value the live store holds, as acks.
func storedValues(t *testing.T, s *Store) []ack {
	t.Helper()
	var out []ack
	err := s.Scan("ks", 0, 0, func(_ uint64, key []byte, obj *version.Object) error {
		for _, v := range obj.Values() {
			out = append(out, ack{string(key), string(v)})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCrashCheckDetectsUnsyncedStore shows the crash test has teeth: the
// same workload on a store that acknowledges before syncing loses
// acknowledged writes in a crash that keeps no unsynced data.
func TestCrashCheckDetectsUnsyncedStore(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s, err := Open("db", &Options{FS: fs, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.wo = pebble.NoSync
	for i := range 50 {
		if _, _, err := s.Update("ks", fmt.Appendf(nil, "k%d", i), put("n1", "v")); err != nil {
			t.Fatal(err)
		}
	}
	acked := storedValues(t, s)
	missing, _ := checkClone(t, fs.CrashClone(vfs.CrashCloneCfg{}), acked)
	if len(missing) == 0 {
		t.Fatal("an unsynced store lost nothing in a crash: the crash check cannot detect missing fsyncs")
	}
	t.Logf("unsynced store lost %d of %d acknowledged writes", len(missing), len(acked))
}
