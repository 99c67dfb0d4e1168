package store

import (
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/meridian-kv/meridian/internal/walsync"
	"github.com/meridian-kv/meridian/version"
)

// A store closed cleanly keeps its actor; one that stopped without Close
// (a crash) comes back as the next era's actor, and keeps that one.
func TestEraAfterUncleanStop(t *testing.T) {
	fs := vfs.NewCrashableMem()
	open := func(fs vfs.FS) *Store {
		t.Helper()
		s, err := Open("data", &Options{FS: fs, NodeID: "east-1", Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open(fs)
	base := s.Identity().Actor()
	if s.Era() != 0 || s.Actor() != base {
		t.Fatalf("a new store: era %d, actor %q; want 0 and %q", s.Era(), s.Actor(), base)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(fs)
	if s.Era() != 0 || s.Actor() != base {
		t.Fatalf("after a clean close: era %d, actor %q; want 0 and %q", s.Era(), s.Actor(), base)
	}

	// A crash: what was synced, and no Close.
	crashed := fs.CrashClone(vfs.CrashCloneCfg{})
	s.Close()
	s = open(crashed)
	if s.Era() != 1 || s.Actor() != base+".1" {
		t.Fatalf("after a crash: era %d, actor %q; want 1 and %q", s.Era(), s.Actor(), base+".1")
	}
	again := crashed.CrashClone(vfs.CrashCloneCfg{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(crashed)
	if s.Era() != 1 {
		t.Fatalf("a clean close after the crash: era %d, want 1 kept", s.Era())
	}
	s.Close()
	s = open(again)
	defer s.Close()
	if s.Era() != 2 || !strings.HasSuffix(s.Actor(), ".2") {
		t.Fatalf("a second crash: era %d, actor %q; want 2", s.Era(), s.Actor())
	}
}

// Queue.Applied runs while the write's log sync is still out, and
// UpdateQueued returns only once it is done. A crash in between loses the
// write here while the caller may have sent it on: the store then comes
// back as another actor, so a write minted from the same clock gets
// another dot, not the lost one's.
func TestAppliedBeforeSyncAndCrash(t *testing.T) {
	mem := vfs.NewCrashableMem()
	gate := walsync.NewGate()
	s, err := Open("data", &Options{FS: walsync.OnSync(mem, gate.Wait), NodeID: "east-1", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("k")
	if _, _, _, err := s.UpdateQueued("ks", key, put(s.Actor(), "v1"), queued(nil)); err != nil {
		t.Fatal(err)
	}

	gate.Hold()
	var sent *version.Object
	var crashed *vfs.MemFS
	applied := make(chan struct{})
	q := queued(nil)
	q.Applied = func(next *version.Object) {
		sent = next
		crashed = mem.CrashClone(vfs.CrashCloneCfg{}) // the power goes now
		close(applied)
	}
	done := make(chan error, 1)
	go func() {
		_, _, _, err := s.UpdateQueued("ks", key, put(s.Actor(), "v2"), q)
		done <- err
	}()
	release := <-gate.Held() // the write's sync is out
	// Applied does not wait for the sync; the held sync must outlast it,
	// or the clone would take the write as synced.
	<-applied
	select {
	case err := <-done:
		t.Fatalf("UpdateQueued returned (%v) before its sync", err)
	default:
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if sent == nil {
		t.Fatal("Applied was not called")
	}
	s.Close()

	r, err := Open("data", &Options{FS: crashed, NodeID: "east-1", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cur, err := r.Get("ks", key)
	if err != nil {
		t.Fatal(err)
	}
	if got := values(cur); len(got) != 1 || got[0] != "v1" {
		t.Fatalf("after the crash the store holds %q, want only v1 (v2 was not synced)", got)
	}
	lost := sent.Siblings[0].Dot
	if again := put(s.Actor(), "v3"); mint(t, again, cur).Siblings[0].Dot != lost {
		t.Fatal("the old actor would not re-mint the lost dot: the test shows nothing")
	}
	if d := mint(t, put(r.Actor(), "v3"), cur).Siblings[0].Dot; d == lost {
		t.Fatalf("after the crash the store minted %v again, the dot of the write it lost", d)
	}
}

func mint(t *testing.T, fn func(*version.Object) (*version.Object, error), cur *version.Object) *version.Object {
	t.Helper()
	next, err := fn(cur)
	if err != nil {
		t.Fatal(err)
	}
	return next
}
