package store

import (
	"bytes"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/meridian-kv/meridian/codec"
	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/version"
)

// storedHint returns the unsealed stored record of target's hint of key.
func storedHint(t *testing.T, s *Store, target, key string) []byte {
	t.Helper()
	hk := hintKey(target, "ks", placement.KeyToken([]byte(key)), []byte(key))
	v, closer, err := s.getHint(hk)
	if err != nil || v == nil {
		t.Fatalf("hint of %s for %s: %v (found %v)", key, target, err, v != nil)
	}
	defer closer.Close()
	p, err := s.open(hk, v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(p)
}

// TestWriteAheadHintsNameTheObject: a write's hints name the object its
// batch stores instead of holding copies of it, so a large value costs its
// targets a record of a few dozen bytes each; delivery reads the stored
// object, which is exactly the write.
func TestWriteAheadHintsNameTheObject(t *testing.T) {
	s := openSealed(t, vfs.NewMem(), testKeyring(t, randomKeys("k1"), "k1"))
	defer s.Close()
	big := string(bytes.Repeat([]byte("v"), 100<<10))
	obj, _, _, err := s.UpdateQueued("ks", []byte("k"), put("c", big), queued(nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range queueTargets {
		if st := s.HintStats()[target]; st.Count != 1 || st.Bytes > 256 {
			t.Errorf("%s: %+v, want one hint of a few dozen bytes (the value is %d)", target, st, len(big))
		}
		if p := storedHint(t, s, target, "k"); p[0] != hintFormatRef {
			t.Errorf("%s's hint has format %d, want a reference (%d)", target, p[0], hintFormatRef)
		}
		if hs := hintsOf(t, s, target); len(hs) != 1 || !version.Equal(hs[0].Object, obj) || !hs[0].Created.Equal(hintT0) {
			t.Errorf("%s's hints: %+v", target, hs)
		}
	}
	checkHintStats(t, s)
}

// TestReferenceHintOwesItsWritesOnly: a reference hint is cleared by an
// acknowledgement of everything its writes made, not less (a later write
// of the same coordinator moves it on), and not more (a write that came
// from another coordinator, a replica write here, is that one's to
// deliver). Delivery always carries the whole stored object.
func TestReferenceHintOwesItsWritesOnly(t *testing.T) {
	s := openSealed(t, vfs.NewMem(), testKeyring(t, randomKeys("k1"), "k1"))
	defer s.Close()
	key := []byte("k")
	target := []string{"east-2"}
	q := Queue{Targets: target, Now: hintT0}
	obj1, _, _, err := s.UpdateQueued("ks", key, put("c", "v1"), q)
	if err != nil {
		t.Fatal(err)
	}
	q.Now = hintT0.Add(time.Second)
	obj2, _, _, err := s.UpdateQueued("ks", key, put("c", "v2"), q)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.ClearHints("ks", key, obj1, target); err != nil || n != 0 {
		t.Fatalf("ClearHints of the first write removed %d (%v): the second is still owed", n, err)
	}
	// Another coordinator's write arrives as a replica write.
	other := obj2.Update(obj2.Context(), "d", version.Write{Value: []byte("v3")})
	if _, _, err := s.Merge("ks", key, other); err != nil {
		t.Fatal(err)
	}
	hs := hintsOf(t, s, "east-2")
	if len(hs) != 1 || !version.Equal(hs[0].Object, other) || !hs[0].Created.Equal(hintT0) {
		t.Fatalf("hints: %+v, want the stored object, created at the first write", hs)
	}
	if n, err := s.ClearHints("ks", key, obj2, target); err != nil || n != 1 {
		t.Fatalf("ClearHints of the second write removed %d (%v), want 1", n, err)
	}
	checkHintStats(t, s)
}

// TestReferenceHintRewrittenBehindItsReceipt: the receipt of a write's own
// reference hint clears it only while the stored bytes are those written;
// a reference moved on to newer writes stays.
func TestReferenceHintRewrittenBehindItsReceipt(t *testing.T) {
	s := openSealed(t, vfs.NewMem(), testKeyring(t, randomKeys("k1"), "k1"))
	defer s.Close()
	key := []byte("k")
	hk := hintKey("west-1", "ks", placement.KeyToken(key), key)
	obj1, _, _, err := s.UpdateQueued("ks", key, put("c", "v1"), queued(nil))
	if err != nil {
		t.Fatal(err)
	}
	newer := obj1.Update(obj1.Context(), "c", version.Write{Value: []byte("v2")})
	if _, _, err := s.Merge("ks", key, newer); err != nil {
		t.Fatal(err)
	}
	setRawHint(t, s, hk, encodeHintRef(hintT0.UnixNano(), nil, newer.Clock))
	if n, err := s.ClearHints("ks", key, obj1, []string{"west-1"}); err != nil || n != 0 {
		t.Fatalf("ClearHints removed %d hints (%v): a reference owing a newer write went with its receipt", n, err)
	}
	if n, err := s.ClearHints("ks", key, newer, []string{"west-1"}); err != nil || n != 1 {
		t.Fatalf("ClearHints of the newer write removed %d hints (%v), want 1", n, err)
	}
}

// TestDeliveredReferenceHintStaysForNewerWrites: a delivered reference
// hint is deleted when what was delivered holds what it owes; a write
// queued during the delivery keeps it, for the next round.
func TestDeliveredReferenceHintStaysForNewerWrites(t *testing.T) {
	for _, batch := range []bool{false, true} {
		s := openSealed(t, vfs.NewMem(), testKeyring(t, randomKeys("k1"), "k1"))
		deleteHint := func(h Hint) bool {
			if batch {
				n, err := s.DeleteHints([]Hint{h})
				if err != nil {
					t.Fatal(err)
				}
				return n == 1
			}
			ok, err := s.DeleteHint(h)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		q := Queue{Targets: []string{"east-2"}, Now: hintT0}
		if _, _, _, err := s.UpdateQueued("ks", []byte("k"), put("c", "v1"), q); err != nil {
			t.Fatal(err)
		}
		delivered := hintsOf(t, s, "east-2")[0]
		if _, _, _, err := s.UpdateQueued("ks", []byte("k"), put("c", "v2"), q); err != nil {
			t.Fatal(err)
		}
		if deleteHint(delivered) {
			t.Fatalf("batch=%v: a hint owing a write queued during its delivery was deleted", batch)
		}
		// A replica write moves the object on but owes this hint nothing.
		again := hintsOf(t, s, "east-2")[0]
		if _, _, err := s.Merge("ks", []byte("k"), again.Object.Update(again.Object.Context(), "d", version.Write{Value: []byte("v3")})); err != nil {
			t.Fatal(err)
		}
		if !deleteHint(again) {
			t.Fatalf("batch=%v: a delivered hint stayed", batch)
		}
		if st := s.HintStats()["east-2"]; st.Count != 0 || st.Bytes != 0 {
			t.Fatalf("batch=%v: stats after delivery %+v", batch, st)
		}
		checkHintStats(t, s)
		s.Close()
	}
}

// TestAddHintOntoAReference: a stand-in's hint added for a target that a
// reference hint already owes turns it into a hint holding its object:
// the stored object joined with the new one.
func TestAddHintOntoAReference(t *testing.T) {
	s := openSealed(t, vfs.NewMem(), testKeyring(t, randomKeys("k1"), "k1"))
	defer s.Close()
	stored, _, _, err := s.UpdateQueued("ks", []byte("k"), put("c", "v1"), Queue{Targets: []string{"east-2"}, Now: hintT0})
	if err != nil {
		t.Fatal(err)
	}
	concurrent := written("d", "v2")
	addHint(t, s, "east-2", "ks", "k", concurrent, hintT0.Add(time.Hour))
	if p := storedHint(t, s, "east-2", "k"); p[0] != hintFormatV1 {
		t.Fatalf("hint format %d after AddHint, want %d", p[0], hintFormatV1)
	}
	hs := hintsOf(t, s, "east-2")
	if want := version.Merge(stored, concurrent); len(hs) != 1 || !version.Equal(hs[0].Object, want) || !hs[0].Created.Equal(hintT0) {
		t.Fatalf("hints: %+v, want the join of both, created at the first", hs)
	}
	checkHintStats(t, s)
}

// TestReferenceHintOfACollectedKey: a reference hint whose key's object
// is gone (its tombstone collected, which happens only once every replica
// holds it) owes nothing: delivery skips and deletes it.
func TestReferenceHintOfACollectedKey(t *testing.T) {
	s, err := Open("db", &Options{FS: vfs.NewMem(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, _, err := s.UpdateQueued("ks", []byte("gone"), del("c"), Queue{Targets: []string{"east-2"}, Now: hintT0}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.UpdateQueued("ks", []byte("kept"), put("c", "v"), Queue{Targets: []string{"east-2"}, Now: hintT0}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.CollectTombstone("ks", []byte("gone"), tombstones(t, s, "ks")[0].at); err != nil || !ok {
		t.Fatalf("collect = %v, %v", ok, err)
	}
	if hs := hintsOf(t, s, "east-2"); len(hs) != 1 || string(hs[0].Key) != "kept" {
		t.Fatalf("hints: %+v, want kept's only", hs)
	}
	if st := s.HintStats()["east-2"]; st.Count != 1 {
		t.Fatalf("stats %+v, want the orphan gone", st)
	}
	checkHintStats(t, s)
}

// TestReferenceHintEncodingMatchesCodec: a reference hint is written by
// hand as the format byte and the bytes codec.Marshal writes for hintRef.
func TestReferenceHintEncodingMatchesCodec(t *testing.T) {
	for _, trace := range [][]byte{nil, {}, bytes.Repeat([]byte{7}, traceIDLen)} {
		for _, clock := range []version.Vector{nil, {}, {"east-1@b7c7df83a3ce": 1}, {"a": 1 << 40, "bb": 3, "c": 0}} {
			for _, created := range []int64{1, hintT0.UnixNano(), -5} {
				got := encodeHintRef(created, trace, clock)
				want, err := codec.Marshal(&hintRef{Created: created, Trace: trace, Clock: clock})
				if err != nil {
					t.Fatal(err)
				}
				if got[0] != hintFormatRef || !bytes.Equal(got[1:], want) {
					t.Errorf("created %d, trace %x, clock %v:\nhand  %x\ncodec %x", created, trace, clock, got, want)
				}
			}
		}
	}
}
