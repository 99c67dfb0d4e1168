package store

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/meridian-kv/meridian/version"
)

func openRows(t *testing.T, size int64) *Store {
	t.Helper()
	s, err := Open("db", &Options{FS: vfs.NewMem(), Logger: quiet, RowCacheSize: size})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestRowCacheAnswersRepeatReads: a written object is read back from the
// row cache, not from Pebble, and each reader gets an object of its own.
func TestRowCacheAnswersRepeatReads(t *testing.T) {
	s := openRows(t, 0)
	if _, _, err := s.Update("ks", []byte("k"), put("n1", "v1")); err != nil {
		t.Fatal(err)
	}
	before := s.RowCacheStats()
	a, err := s.Get("ks", []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	a.Siblings[0].Value[0] = 'X' // a caller changing its copy
	b, err := s.Get("ks", []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	if got := values(b); !slices.Equal(got, []string{"v1"}) {
		t.Errorf("second read gave %q, want [v1]: a reader's change reached the cache", got)
	}
	after := s.RowCacheStats()
	if hits := after.Hits - before.Hits; hits != 2 || after.Misses != before.Misses {
		t.Errorf("two reads of a written key: %d hits and %d misses, want 2 and 0", hits, after.Misses-before.Misses)
	}
	if after.Bytes <= 0 {
		t.Errorf("cache holds %d bytes after a write", after.Bytes)
	}
}

// TestRowCacheStaysWithinBudget: many objects fill the cache only up to
// its budget, and the evicted ones still read correctly from Pebble.
func TestRowCacheStaysWithinBudget(t *testing.T) {
	const budget = 64 << 10
	s := openRows(t, budget)
	const n = 500
	val := string(make([]byte, 1000))
	for i := range n {
		if _, _, err := s.Update("ks", fmt.Appendf(nil, "k%d", i), put("n1", val+fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.RowCacheStats(); st.Bytes > budget || st.Bytes < budget/2 {
		t.Errorf("cache holds %d bytes, want at most the budget %d and not far below", st.Bytes, budget)
	}
	for i := range n {
		obj, err := s.Get("ks", fmt.Appendf(nil, "k%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if got := values(obj); !slices.Equal(got, []string{val + fmt.Sprint(i)}) {
			t.Fatalf("k%d holds %d values, want its own", i, len(got))
		}
	}
	st := s.RowCacheStats()
	if st.Misses == 0 || st.Bytes > budget {
		t.Errorf("after reading every key: %+v, want misses (evicted keys) and at most %d bytes", st, budget)
	}
}

// TestRowCacheOff: a negative size turns the cache off.
func TestRowCacheOff(t *testing.T) {
	s := openRows(t, -1)
	if _, _, err := s.Update("ks", []byte("k"), put("n1", "v1")); err != nil {
		t.Fatal(err)
	}
	obj, err := s.Get("ks", []byte("k"))
	if err != nil || !slices.Equal(values(obj), []string{"v1"}) {
		t.Fatalf("Get = %v, %v", obj, err)
	}
	if st := s.RowCacheStats(); st != (RowCacheStats{}) {
		t.Errorf("stats with the cache off: %+v", st)
	}
}

// TestRowCacheFollowsEveryWrite: reads after each kind of write (Update,
// an Update whose fn fails, MergeMany, a collected tombstone, a keyring
// removed) see what is on disk, though the key was cached before.
func TestRowCacheFollowsEveryWrite(t *testing.T) {
	now := time.Unix(1000, 0)
	kr := testKeyring(t, randomKeys("k1"), "k1")
	s, err := Open("db", &Options{FS: vfs.NewMem(), Logger: quiet, Keyring: kr, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	key := []byte("k")
	read := func() *version.Object {
		t.Helper()
		obj, err := s.Get("ks", key)
		if err != nil {
			t.Fatal(err)
		}
		return obj
	}
	if _, _, err := s.Update("ks", key, put("n1", "v1")); err != nil {
		t.Fatal(err)
	}
	read()
	if _, _, err := s.Update("ks", key, put("n1", "v2")); err != nil {
		t.Fatal(err)
	}
	if got := values(read()); !slices.Equal(got, []string{"v2"}) {
		t.Fatalf("after Update: %q", got)
	}
	boom := errors.New("boom")
	if _, _, err := s.Update("ks", key, func(*version.Object) (*version.Object, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("failing fn: %v", err)
	}
	if got := values(read()); !slices.Equal(got, []string{"v2"}) {
		t.Fatalf("after a failed Update: %q", got)
	}
	other := version.New().Update(nil, "n2", version.Write{Value: []byte("w")})
	if _, err := s.MergeMany("ks", []KeyObject{{Key: key, Object: other}}); err != nil {
		t.Fatal(err)
	}
	if got := values(read()); !slices.Equal(got, []string{"v2", "w"}) && !slices.Equal(got, []string{"w", "v2"}) {
		t.Fatalf("after MergeMany: %q, want v2 and w as siblings", got)
	}
	if _, _, err := s.Update("ks", key, del("n1")); err != nil {
		t.Fatal(err)
	}
	if !IsTombstone(read()) {
		t.Fatal("a deleted key does not read as a tombstone")
	}
	collected, err := s.CollectTombstone("ks", key, now)
	if err != nil || !collected {
		t.Fatalf("CollectTombstone = %v, %v", collected, err)
	}
	if obj := read(); len(obj.Siblings) != 0 || len(obj.Clock) != 0 {
		t.Fatalf("a collected tombstone still reads as %+v", obj)
	}
	if _, _, err := s.Update("ks", key, put("n1", "v3")); err != nil {
		t.Fatal(err)
	}
	read()
	s.SetKeyring(nil)
	if _, err := s.Get("ks", key); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("a sealed value read after its keyring was removed: err %v, want ErrUnknownKey", err)
	}
}

// TestRowCacheNeverServesOlderObjects: while writers advance a few keys,
// a read never returns an object older than a write acknowledged before
// the read began (a cache filled by a read racing a write would).
func TestRowCacheNeverServesOlderObjects(t *testing.T) {
	s := openRows(t, 0)
	const keys, writes = 4, 150
	var acked [keys]atomic.Uint64
	var wg sync.WaitGroup
	for k := range keys {
		wg.Go(func() {
			key := fmt.Appendf(nil, "k%d", k)
			for i := range writes {
				obj, _, err := s.Update("ks", key, put("a", fmt.Sprint(i)))
				if err != nil {
					t.Error(err)
					return
				}
				acked[k].Store(obj.Clock["a"])
			}
		})
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for r := range 3 {
		readers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := (i + r) % keys
				floor := acked[k].Load()
				obj, err := s.Get("ks", fmt.Appendf(nil, "k%d", k))
				if err != nil {
					t.Error(err)
					return
				}
				if c := obj.Clock["a"]; c < floor {
					t.Errorf("read of k%d returned counter %d after %d was acknowledged", k, c, floor)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	if st := s.RowCacheStats(); st.Hits == 0 {
		t.Errorf("no read was answered by the cache: %+v", st)
	}
}
