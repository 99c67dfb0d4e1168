package store

import (
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/meridian-kv/meridian/version"
)

func del(actor string) func(*version.Object) (*version.Object, error) {
	return func(cur *version.Object) (*version.Object, error) {
		return cur.Update(cur.Context(), actor, version.Write{Deleted: true}), nil
	}
}

type tomb struct {
	key string
	at  time.Time
}

func tombstones(t *testing.T, s *Store, ks string) []tomb {
	t.Helper()
	var out []tomb
	if err := s.Tombstones(ks, func(_ uint64, key []byte, at time.Time) error {
		out = append(out, tomb{string(key), at})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTombstoneIndexFollowsWrites(t *testing.T) {
	fs := vfs.NewMem()
	now := time.Unix(1000, 0)
	s, err := Open("db", &Options{FS: fs, Logger: quiet, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	mustUpdate := func(key string, fn func(*version.Object) (*version.Object, error)) {
		t.Helper()
		if _, _, err := s.Update("ks", []byte(key), fn); err != nil {
			t.Fatal(err)
		}
	}
	mustUpdate("a", put("n1", "1"))
	mustUpdate("b", put("n1", "1"))
	if got := tombstones(t, s, "ks"); len(got) != 0 {
		t.Fatalf("values indexed as tombstones: %v", got)
	}
	mustUpdate("a", del("n1"))
	if got := tombstones(t, s, "ks"); len(got) != 1 || got[0].key != "a" || !got[0].at.Equal(now) {
		t.Fatalf("after deleting a: %v", got)
	}
	// A concurrent delete changes the tombstone: it arrives anew.
	now = now.Add(time.Minute)
	mustUpdate("a", func(cur *version.Object) (*version.Object, error) {
		return cur.Update(nil, "n2", version.Write{Deleted: true}), nil
	})
	if got := tombstones(t, s, "ks"); len(got) != 1 || !got[0].at.Equal(now) {
		t.Fatalf("after a second delete: %v", got)
	}
	// A blind write next to a tombstone makes the key live again.
	mustUpdate("a", blind("n3", "back"))
	if got := tombstones(t, s, "ks"); len(got) != 0 {
		t.Fatalf("a live key stayed indexed: %v", got)
	}
	mustUpdate("b", del("n1"))
	// The index survives a restart.
	s.Close()
	if s, err = Open("db", &Options{FS: fs, Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	if got := tombstones(t, s, "ks"); len(got) != 1 || got[0].key != "b" {
		t.Fatalf("after restart: %v", got)
	}
	if got := tombstones(t, s, "other"); len(got) != 0 {
		t.Fatalf("another keyspace's tombstones: %v", got)
	}
}

func TestCollectTombstone(t *testing.T) {
	fs := vfs.NewMem()
	now := time.Unix(1000, 0)
	s, err := Open("db", &Options{FS: fs, Logger: quiet, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	for range 7 {
		if _, _, err := s.Update("ks", []byte("k"), put("n1", "v")); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Update("ks", []byte("k"), del("n2")); err != nil {
		t.Fatal(err)
	}
	arrived := tombstones(t, s, "ks")[0].at

	// A stale arrival time (the tombstone changed since it was listed)
	// collects nothing.
	if ok, err := s.CollectTombstone("ks", []byte("k"), arrived.Add(-time.Second)); err != nil || ok {
		t.Fatalf("stale collect = %v, %v", ok, err)
	}
	// Nor does a key that is not a tombstone.
	if _, _, err := s.Update("ks", []byte("live"), put("n1", "v")); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.CollectTombstone("ks", []byte("live"), arrived); err != nil || ok {
		t.Fatalf("collect of a live key = %v, %v", ok, err)
	}
	if s.DotFloor() != 0 {
		t.Fatalf("dot floor %d before any collection", s.DotFloor())
	}
	if ok, err := s.CollectTombstone("ks", []byte("k"), arrived); err != nil || !ok {
		t.Fatalf("collect = %v, %v", ok, err)
	}
	if o, err := s.Get("ks", []byte("k")); err != nil || !o.IsEmpty() {
		t.Fatalf("after collection: %+v, %v", o, err)
	}
	if got := tombstones(t, s, "ks"); len(got) != 0 {
		t.Fatalf("index kept %v", got)
	}
	// n1 wrote 7 times, n2 once: the floor is the clock's largest counter,
	// and it survives a restart.
	if s.DotFloor() != 7 {
		t.Fatalf("dot floor %d, want 7", s.DotFloor())
	}
	s.Close()
	if s, err = Open("db", &Options{FS: fs, Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	if s.DotFloor() != 7 {
		t.Fatalf("dot floor after restart %d, want 7", s.DotFloor())
	}
	if v, _ := s.Get("ks", []byte("live")); len(v.Values()) != 1 {
		t.Fatalf("collection touched another key: %+v", v)
	}
}
