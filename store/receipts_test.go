package store

import (
	"bytes"
	"context"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/version"
)

// TestClearHintsChecksTheBytesOfItsOwnHint: ClearHints removes a write's
// own hint by its receipt, but only while the stored bytes are those it
// wrote: a hint rewritten since (here to hold a newer write, behind the
// receipt's back) stays, and one re-encrypted since is still recognised
// as covered by decoding it.
func TestClearHintsChecksTheBytesOfItsOwnHint(t *testing.T) {
	fs := vfs.NewMem()
	keys := randomKeys("k1", "k2")
	s := openSealed(t, fs, testKeyring(t, keys, "k1"))
	defer s.Close()
	key := []byte("k")
	hk := hintKey("west-1", "ks", placement.KeyToken(key), key)

	obj1, _, _, err := s.UpdateQueued("ks", key, put("c", "v1"), queued(nil))
	if err != nil {
		t.Fatal(err)
	}
	// Rewrite west-1's hint to hold a newer object, as only a path that
	// forgot the receipt could.
	newer := obj1.Update(obj1.Context(), "c", version.Write{Value: []byte("v2")})
	plain, err := encodeHint(&hintRecord{Created: hintT0.UnixNano(), Object: newer})
	if err != nil {
		t.Fatal(err)
	}
	setRawHint(t, s, hk, plain)
	if n, err := s.ClearHints("ks", key, obj1, []string{"west-1"}); err != nil || n != 0 {
		t.Fatalf("ClearHints removed %d hints (%v): a hint holding a newer write went with its receipt", n, err)
	}
	if hs := hintsOf(t, s, "west-1"); len(hs) != 1 || !version.Equal(hs[0].Object, newer) {
		t.Fatalf("west-1's hints: %+v", hs)
	}

	// Re-encrypted under another key: new bytes, same object.
	obj2, _, _, err := s.UpdateQueued("ks", []byte("k2"), put("c", "v"), queued(nil))
	if err != nil {
		t.Fatal(err)
	}
	s.SetKeyring(testKeyring(t, keys, "k2"))
	if st, err := s.Reencrypt(context.Background()); err != nil || st.Rewritten == 0 {
		t.Fatalf("Reencrypt: %+v, %v", st, err)
	}
	if n, err := s.ClearHints("ks", []byte("k2"), obj2, queueTargets); err != nil || n != len(queueTargets) {
		t.Fatalf("ClearHints after re-encryption removed %d hints (%v), want %d", n, err, len(queueTargets))
	}
}

// BenchmarkQueuedWriteCPU is the CPU of a write-ahead write's whole life
// (UpdateQueued of a 1000-byte value with hints for two replicas, sealed,
// then ClearHints once both acked) on an in-memory filesystem, where
// fsyncs cost nothing.
func BenchmarkQueuedWriteCPU(b *testing.B) {
	s := openSealed(b, vfs.NewMem(), testKeyring(b, randomKeys("k1"), "k1"))
	defer s.Close()
	fn := benchWrite(bytes.Repeat([]byte("v"), 1000))
	targets := []string{"east-2", "east-3"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		key := benchKey(i % 1000)
		obj, _, _, err := s.UpdateQueued("ks", key, fn, Queue{Targets: targets, Now: hintT0})
		if err == nil {
			_, err = s.ClearHints("ks", key, obj, targets)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// setRawHint stores plain, sealed, as the hint under hk, behind the
// store's back (no receipt, no stats).
func setRawHint(t *testing.T, s *Store, hk, plain []byte) {
	t.Helper()
	sealed, err := s.seal(hk, plain)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Set(hk, sealed, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}
