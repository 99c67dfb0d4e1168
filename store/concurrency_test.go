package store

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/meridian-kv/meridian/version"
)

// TestConcurrentUpdatesSameKey: read-modify-write Updates of one key from
// many goroutines are serialised, so none is lost (the lost-update anomaly
// Jepsen found in Cassandra): every Update mints the next dot of actor "a"
// and supersedes the previous value.
func TestConcurrentUpdatesSameKey(t *testing.T) {
	s := openMem(t)
	const workers, each = 8, 40
	key := []byte("hot")
	counters := make(chan uint64, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				val := fmt.Sprintf("w%d-%d", w, i)
				obj, changed, err := s.Update("ks", key, put("a", val))
				if err != nil || !changed {
					t.Errorf("Update: changed=%v err=%v", changed, err)
					return
				}
				if got := values(obj); !slices.Equal(got, []string{val}) {
					t.Errorf("Update returned values %q, want [%q]", got, val)
				}
				counters <- obj.Clock["a"]
			}
		})
	}
	// Readers in parallel see one value at a time, never a torn object.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				obj, err := s.Get("ks", key)
				if err != nil {
					t.Error(err)
					return
				}
				if n := len(obj.Siblings); n > 1 {
					t.Errorf("reader saw %d siblings", n)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(counters)

	var got []uint64
	for c := range counters {
		got = append(got, c)
	}
	slices.Sort(got)
	for i, c := range got {
		if c != uint64(i+1) {
			t.Fatalf("counters returned by Update are %v..., want each of 1..%d exactly once", got[:min(len(got), i+3)], workers*each)
		}
	}
	obj, err := s.Get("ks", key)
	if err != nil {
		t.Fatal(err)
	}
	if obj.Clock["a"] != workers*each || len(obj.Siblings) != 1 {
		t.Errorf("final object: clock %v with %d siblings, want a:%d with 1", obj.Clock, len(obj.Siblings), workers*each)
	}
}

// TestConcurrentUpdatesManyKeys: Updates of different keys proceed in
// parallel and each key ends with its own last value.
func TestConcurrentUpdatesManyKeys(t *testing.T) {
	s := openMem(t)
	const workers, keys, rounds = 8, 16, 5
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				for k := range keys {
					key := fmt.Appendf(nil, "w%d-k%d", w, k)
					if _, _, err := s.Update("ks", key, put("n1", fmt.Sprint(r))); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	n := 0
	err := s.Scan("ks", 0, 0, func(_ uint64, key []byte, obj *version.Object) error {
		n++
		if got := values(obj); !slices.Equal(got, []string{fmt.Sprint(rounds - 1)}) {
			t.Errorf("key %q holds %q", key, got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != workers*keys {
		t.Errorf("scan found %d keys, want %d", n, workers*keys)
	}
}

// TestCloseWaitsForCalls: Close waits for a call in flight; calls that
// start meanwhile (even from inside that call) fail with ErrClosed rather
// than deadlock or touch a closed DB.
func TestCloseWaitsForCalls(t *testing.T) {
	s, err := Open("db", &Options{FS: vfs.NewMem(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Update("ks", []byte("k"), put("n1", "v")); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	err = s.Scan("ks", 0, 0, func(uint64, []byte, *version.Object) error {
		go func() { closed <- s.Close() }()
		deadline := time.Now().Add(10 * time.Second)
		for s.calls.state.Load()&closedBit == 0 {
			if time.Now().After(deadline) {
				t.Fatal("Close did not start")
			}
			runtime.Gosched()
		}
		select {
		case err := <-closed:
			t.Fatalf("Close returned (%v) while a Scan was running", err)
		default:
		}
		if _, err := s.Get("ks", []byte("k")); !errors.Is(err, ErrClosed) {
			t.Errorf("Get while closing: %v, want ErrClosed", err)
		}
		if _, _, err := s.Update("ks", []byte("k2"), put("n1", "v")); !errors.Is(err, ErrClosed) {
			t.Errorf("Update while closing: %v, want ErrClosed", err)
		}
		return nil
	})
	if err != nil {
		t.Errorf("Scan that began before Close: %v", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestCloseDuringWrites: concurrent writers see either success or
// ErrClosed, never a panic from a closed DB, and every success survives.
func TestCloseDuringWrites(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open("db", &Options{FS: fs, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		acked []string
	)
	started := make(chan struct{}, 4)
	for w := range 4 {
		wg.Go(func() {
			signalled := false
			defer func() {
				if !signalled { // failed early: do not leave the test waiting
					started <- struct{}{}
				}
			}()
			for i := 0; ; i++ {
				key := fmt.Sprintf("w%d-%d", w, i)
				_, _, err := s.Update("ks", []byte(key), put("n1", "v"))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked = append(acked, key)
				mu.Unlock()
				if i == 10 {
					signalled = true
					started <- struct{}{}
				}
			}
		})
	}
	for range 4 {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s, err = Open("db", &Options{FS: fs, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, key := range acked {
		obj, err := s.Get("ks", []byte(key))
		if err != nil || obj.IsEmpty() {
			t.Fatalf("acknowledged %q: %+v, %v", key, obj, err)
		}
	}
}
