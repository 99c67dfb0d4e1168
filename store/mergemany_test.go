package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/meridian-kv/meridian/version"
)

// TestMergeManyIsMergeInOneBatch merges random objects into two stores,
// one key at a time with Merge and in batches with MergeMany, and checks
// both end up holding the same objects and the same tombstone index.
func TestMergeManyIsMergeInOneBatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	one, many := openMem(t), openMem(t)
	objects := func() []KeyObject {
		var out []KeyObject
		for range rng.IntN(40) {
			key := fmt.Appendf(nil, "k%d", rng.IntN(30))
			o := version.New()
			for range 1 + rng.IntN(3) {
				actor := fmt.Sprintf("n%d", rng.IntN(3))
				var ctx version.Vector
				if rng.IntN(2) == 0 {
					ctx = o.Context()
				}
				o = o.Update(ctx, actor, version.Write{Value: fmt.Appendf(nil, "v%d", rng.IntN(5)), Deleted: rng.IntN(4) == 0})
			}
			out = append(out, KeyObject{Key: key, Object: o})
		}
		return out
	}
	for range 50 {
		batch := objects()
		for _, it := range batch {
			if _, _, err := one.Merge("ks", it.Key, it.Object); err != nil {
				t.Fatal(err)
			}
		}
		got, err := many.MergeMany("ks", batch)
		if err != nil {
			t.Fatal(err)
		}
		if got > len(batch) {
			t.Fatalf("MergeMany reported %d changes for %d items", got, len(batch))
		}
	}
	for i := range 30 {
		key := fmt.Appendf(nil, "k%d", i)
		a, _ := one.Get("ks", key)
		b, _ := many.Get("ks", key)
		if !version.Equal(a, b) {
			t.Fatalf("%s: Merge gave %+v, MergeMany %+v", key, a, b)
		}
	}
	ta, tb := tombstones(t, one, "ks"), tombstones(t, many, "ks")
	if len(ta) != len(tb) {
		t.Fatalf("tombstone index: %d entries by Merge, %d by MergeMany", len(ta), len(tb))
	}
	for i := range ta {
		if ta[i].key != tb[i].key {
			t.Fatalf("tombstone index differs at %d: %s vs %s", i, ta[i].key, tb[i].key)
		}
	}
	// A batch that changes nothing writes nothing.
	if n, err := many.MergeMany("ks", []KeyObject{{Key: []byte("k1"), Object: version.New()}}); err != nil || n != 0 {
		t.Fatalf("empty merge: %d, %v", n, err)
	}
}

func TestMergeManyRefusesBadInput(t *testing.T) {
	s := openMem(t)
	obj := version.New().Update(nil, "n1", version.Write{Value: []byte("v")})
	if _, err := s.MergeMany("", []KeyObject{{Key: []byte("k"), Object: obj}}); err == nil {
		t.Fatal("empty keyspace accepted")
	}
	if _, err := s.MergeMany("ks", []KeyObject{{Key: []byte("k1"), Object: obj}, {Key: make([]byte, MaxKeyLen+1), Object: obj}}); !errors.Is(err, ErrKeyTooLarge) {
		t.Fatalf("oversized key: %v", err)
	}
	big := make([]KeyObject, MaxMergeBatch+1)
	for i := range big {
		big[i] = KeyObject{Key: fmt.Appendf(nil, "k%d", i), Object: obj}
	}
	if _, err := s.MergeMany("ks", big); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("oversized batch: %v", err)
	}
	if o, _ := s.Get("ks", []byte("k1")); !o.IsEmpty() {
		t.Fatal("a refused batch wrote")
	}
}
