package repair

import (
	"bytes"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/meridian-kv/meridian/version"
)

// TestBatchDigestsCoversEveryLeafWithinBudget cuts the key exchange of
// random trees into batches and checks that the batches hold every leaf
// and every digest once, each under its own leaves, within the byte and
// item bounds (a single leaf may exceed them), and that answering batch by
// batch finds the same differences as answering everything at once.
func TestBatchDigestsCoversEveryLeafWithinBudget(t *testing.T) {
	forSeeds(t, 8, func(t *testing.T, rng *rand.Rand) {
		a := newMemSource()
		populate(rng, a, 200+rng.IntN(800))
		b := a.clone()
		for range 100 {
			mutate(rng, b, "b")
			mutate(rng, a, "a")
		}
		r := FullRing
		depth := 4 + rng.IntN(6)
		ta, err := BuildTree(a, "ks", r, depth)
		if err != nil {
			t.Fatal(err)
		}
		tb, err := BuildTree(b, "ks", r, depth)
		if err != nil {
			t.Fatal(err)
		}
		leaves, err := Diff(ta, tb)
		if err != nil {
			t.Fatal(err)
		}
		if len(leaves) == 0 {
			t.Fatal("the trees do not differ; the test needs differences")
		}
		budget, maxItems := 64+rng.IntN(2048), 2+rng.IntN(40)
		batches, err := BatchDigests(a, "ks", r, depth, leaves, budget, maxItems)
		if err != nil {
			t.Fatal(err)
		}
		want, err := KeysInLeaves(a, "ks", r, depth, leaves)
		if err != nil {
			t.Fatal(err)
		}
		var gotLeaves []int
		var gotDigests []KeyDigest
		sendAll, wantAll := CompareDigests(mustKeys(t, b, r, depth, leaves), Digests(want))
		sendBatched := map[string]*version.Object{}
		var wantBatched [][]byte
		for i, bt := range batches {
			size := 0
			for _, l := range bt.Leaves {
				size += 1 + cborHead(uint64(l))
			}
			for _, d := range bt.Digests {
				size += DigestSize(d)
				if l := ta.LeafOf(tokenOf(string(d.Key))); !slices.Contains(bt.Leaves, l) {
					t.Fatalf("batch %d: digest of %q (leaf %d) outside its leaves %v", i, d.Key, l, bt.Leaves)
				}
			}
			if len(bt.Leaves) > 1 && (size > budget || len(bt.Leaves) > maxItems || len(bt.Digests) > maxItems) {
				t.Fatalf("batch %d: %d leaves, %d digests, %d bytes; bounds %d items, %d bytes", i, len(bt.Leaves), len(bt.Digests), size, maxItems, budget)
			}
			gotLeaves = append(gotLeaves, bt.Leaves...)
			gotDigests = append(gotDigests, bt.Digests...)
			send, wantKeys := CompareDigests(mustKeys(t, b, r, depth, bt.Leaves), bt.Digests)
			maps.Copy(sendBatched, send)
			wantBatched = append(wantBatched, wantKeys...)
		}
		slices.SortFunc(gotDigests, func(x, y KeyDigest) int { return bytes.Compare(x.Key, y.Key) })
		slices.SortFunc(wantBatched, bytes.Compare)
		if !slices.Equal(gotLeaves, leaves) {
			t.Fatalf("batches hold leaves %v, want %v", gotLeaves, leaves)
		}
		if !slices.EqualFunc(gotDigests, Digests(want), func(x, y KeyDigest) bool { return string(x.Key) == string(y.Key) && x.Hash == y.Hash }) {
			t.Fatalf("batches hold %d digests, want %d", len(gotDigests), len(want))
		}
		if len(batches) < 2 && len(gotDigests) > maxItems {
			t.Fatalf("%d digests in %d batch with %d items each", len(gotDigests), len(batches), maxItems)
		}
		if !maps.EqualFunc(sendAll, sendBatched, func(x, y *version.Object) bool { return x == y }) {
			t.Fatalf("batched answers send %d objects, one answer %d", len(sendBatched), len(sendAll))
		}
		if !slices.EqualFunc(wantAll, wantBatched, func(x, y []byte) bool { return string(x) == string(y) }) {
			t.Fatalf("batched answers want %q, one answer %q", wantBatched, wantAll)
		}
	})
}

func mustKeys(t *testing.T, src RangeSource, r Range, depth int, leaves []int) map[string]*version.Object {
	t.Helper()
	m, err := KeysInLeaves(src, "ks", r, depth, leaves)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBatchDigestsRefusesZeroBounds(t *testing.T) {
	if _, err := BatchDigests(newMemSource(), "ks", FullRing, 4, []int{1}, 0, 1); err == nil {
		t.Fatal("a zero byte budget was accepted")
	}
}
