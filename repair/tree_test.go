package repair

import (
	"context"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/version"
)

// The naive reference: a leaf is the set of keys whose token t satisfies
// lo(i) <= t < lo(i+1), lo(i) = From + ceil(i·width/2^depth), computed with
// math/big; two leaves are equal when they hold the same keys with
// version.Equal objects. It shares no code with Tree.

func refLeafStart(r Range, depth, i int) *big.Int {
	from := new(big.Int).SetUint64(r.From)
	to := new(big.Int).SetUint64(r.To)
	if r.To == 0 {
		to.Lsh(big.NewInt(1), 64)
	}
	width := new(big.Int).Sub(to, from)
	n := new(big.Int).Mul(width, big.NewInt(int64(i)))
	l := new(big.Int).Lsh(big.NewInt(1), uint(depth))
	q, m := new(big.Int).QuoRem(n, l, new(big.Int))
	if m.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	return q.Add(q, from)
}

func refLeaf(r Range, depth int, tok uint64) int {
	t := new(big.Int).SetUint64(tok)
	for i := range 1 << depth {
		if t.Cmp(refLeafStart(r, depth, i+1)) < 0 {
			return i
		}
	}
	return -1
}

// refLeaves maps each leaf to its keys' objects, for the keys of src in r.
func refLeaves(src *memSource, r Range, depth int) map[int]map[string]*version.Object {
	out := map[int]map[string]*version.Object{}
	for k, o := range src.objs {
		tok := placement.KeyToken([]byte(k))
		if o.IsEmpty() || !r.Contains(tok) {
			continue
		}
		i := refLeaf(r, depth, tok)
		if out[i] == nil {
			out[i] = map[string]*version.Object{}
		}
		out[i][k] = o
	}
	return out
}

func sameContents(a, b map[string]*version.Object) bool {
	if len(a) != len(b) {
		return false
	}
	for k, o := range a {
		if p, ok := b[k]; !ok || !version.Equal(o, p) {
			return false
		}
	}
	return true
}

func refDiffLeaves(a, b map[int]map[string]*version.Object) []int {
	var out []int
	seen := map[int]bool{}
	for _, m := range []map[int]map[string]*version.Object{a, b} {
		for i := range m {
			if !seen[i] && !sameContents(a[i], b[i]) {
				out = append(out, i)
			}
			seen[i] = true
		}
	}
	slices.Sort(out)
	return out
}

// randRange picks the whole ring, a range ending at the end of the ring, a
// random inner range, or a range narrower than its leaf count.
func randRange(rng *rand.Rand) Range {
	switch rng.IntN(4) {
	case 0:
		return FullRing
	case 1:
		return Range{From: rng.Uint64()}
	case 2:
		a, b := rng.Uint64(), rng.Uint64()
		if a > b {
			a, b = b, a
		}
		if a == b {
			b++
		}
		return Range{From: a, To: b}
	}
	a := rng.Uint64N(math.MaxUint64 - 100)
	return Range{From: a, To: a + 1 + rng.Uint64N(40)}
}

// TestTreeAgainstReference: for random replicas derived from one base by
// random mutations, roots are equal exactly when the replicas' contents in
// the range are, Diff returns exactly the leaves whose naive key sets
// differ, and KeysInLeaves returns exactly the keys under those leaves.
func TestTreeAgainstReference(t *testing.T) {
	var equalRoots, differing, narrow int
	forSeeds(t, 40, func(t *testing.T, rng *rand.Rand) {
		base := newMemSource()
		populate(rng, base, rng.IntN(400))
		a, b := base.clone(), base.clone()
		for range rng.IntN(12) {
			mutate(rng, a, "a")
		}
		for range rng.IntN(4) {
			mutate(rng, b, "b")
		}
		r := randRange(rng)
		if r.To != 0 && r.To-r.From < 100 && len(a.objs) > 0 {
			// A narrow range of random tokens holds no key: centre it on a
			// key of a instead, so narrower-than-leaves ranges get data.
			keys := sortedKeys(a.objs)
			tok := placement.KeyToken([]byte(keys[rng.IntN(len(keys))]))
			from := tok - min(tok, rng.Uint64N(20))
			to := tok + 1 + rng.Uint64N(20)
			if to < tok {
				to = 0
			}
			r = Range{From: from, To: to}
		}
		depth := 1 + rng.IntN(9)
		ta, err := BuildTree(a, "ks", r, depth)
		if err != nil {
			t.Fatal(err)
		}
		tb, err := BuildTree(b, "ks", r, depth)
		if err != nil {
			t.Fatal(err)
		}
		ra, rb := refLeaves(a, r, depth), refLeaves(b, r, depth)
		want := refDiffLeaves(ra, rb)
		if got := ta.Root() == tb.Root(); got != (len(want) == 0) {
			t.Fatalf("range %s depth %d: roots equal = %v, but %d leaves differ", r, depth, got, len(want))
		}
		got, err := Diff(ta, tb)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("range %s depth %d: Diff = %v, reference %v", r, depth, got, want)
		}
		if len(want) == 0 {
			equalRoots++
		} else {
			differing++
		}
		if r.To != 0 && r.To-r.From < 1<<depth && ta.Count() > 0 {
			narrow++
		}
		// Leaf counts and key counts agree with the reference.
		total := 0
		for i := range ta.Leaves() {
			if ta.LeafCount(i) != len(ra[i]) {
				t.Fatalf("leaf %d holds %d keys, reference %d", i, ta.LeafCount(i), len(ra[i]))
			}
			total += len(ra[i])
		}
		if ta.Count() != total {
			t.Fatalf("Count = %d, reference %d", ta.Count(), total)
		}
		// KeysInLeaves returns the reference's keys of the differing leaves.
		keys, err := KeysInLeaves(a, "ks", r, depth, got)
		if err != nil {
			t.Fatal(err)
		}
		wantKeys := map[string]*version.Object{}
		for _, i := range got {
			for k, o := range ra[i] {
				wantKeys[k] = o
			}
		}
		if !sameContents(keys, wantKeys) {
			t.Fatalf("KeysInLeaves gave %d keys, reference %d", len(keys), len(wantKeys))
		}
	})
	t.Logf("%d runs with equal roots, %d with differences, %d over ranges narrower than their leaves", equalRoots, differing, narrow)
	if len(testSeeds(t, 40)) >= 20 && (equalRoots == 0 || differing == 0 || narrow == 0) {
		t.Error("the random cases did not cover equal trees, differing trees and narrow ranges: adjust the generator")
	}
}

// TestLeafBoundaries: LeafOf, LeafRange and the reference agree, and the
// leaves tile the range.
func TestLeafBoundaries(t *testing.T) {
	forSeeds(t, 30, func(t *testing.T, rng *rand.Rand) {
		r := randRange(rng)
		depth := 1 + rng.IntN(MaxDepth)
		tr, err := NewTree("ks", r, depth)
		if err != nil {
			t.Fatal(err)
		}
		for range 200 {
			i := rng.IntN(tr.Leaves())
			lr, ok := tr.LeafRange(i)
			lo, hi := refLeafStart(r, depth, i), refLeafStart(r, depth, i+1)
			if ok != (lo.Cmp(hi) < 0) {
				t.Fatalf("leaf %d of %s depth %d: non-empty = %v, reference [%v, %v)", i, r, depth, ok, lo, hi)
			}
			if !ok {
				continue
			}
			if lo.Cmp(new(big.Int).SetUint64(lr.From)) != 0 {
				t.Fatalf("leaf %d of %s depth %d starts at %#x, reference %v", i, r, depth, lr.From, lo)
			}
			if next, ok := tr.LeafRange(i + 1); ok && next.From != lr.To {
				t.Fatalf("leaves %d and %d do not tile", i, i+1)
			}
			if tr.LeafOf(lr.From) != i || tr.LeafOf(lr.last()) != i {
				t.Fatalf("leaf %d %s: LeafOf(first) = %d, LeafOf(last) = %d", i, lr, tr.LeafOf(lr.From), tr.LeafOf(lr.last()))
			}
		}
		var first, last Range
		for i := tr.Leaves() - 1; i >= 0; i-- {
			if lr, ok := tr.LeafRange(i); ok {
				last = lr
				break
			}
		}
		for i := range tr.Leaves() {
			if lr, ok := tr.LeafRange(i); ok {
				first = lr
				break
			}
		}
		if first.From != r.From || last.To != r.To {
			t.Fatalf("leaves of %s span %s..%s", r, first, last)
		}
	})
}

// TestIncrementalEqualsRebuild: a tree kept current with Add, Remove and
// Replace through random writes equals, node for node, the tree a scan
// builds of the final state, whatever the order of the writes and of the
// reads that refresh its digests in between.
func TestIncrementalEqualsRebuild(t *testing.T) {
	forSeeds(t, 30, func(t *testing.T, rng *rand.Rand) {
		src := newMemSource()
		r := randRange(rng)
		if r.To != 0 && r.To-r.From < 1000 {
			r = FullRing
		}
		depth := 1 + rng.IntN(10)
		inc, err := NewTree("ks", r, depth)
		if err != nil {
			t.Fatal(err)
		}
		// Keep src to keys in r so every write touches the tree.
		write1 := func(k string, o *version.Object) {
			tok := placement.KeyToken([]byte(k))
			if !r.Contains(tok) {
				return
			}
			if err := inc.Replace(tok, []byte(k), src.objs[k], o); err != nil {
				t.Fatal(err)
			}
			src.set(k, o)
		}
		for range 200 + rng.IntN(300) {
			k := string(randValue(rng, 3)) // few distinct keys: many rewrites
			cur := src.objs[k]
			switch rng.IntN(5) {
			case 0:
				write1(k, nil)
			case 1:
				write1(k, cur.Update(cur.Context(), "n1", version.Write{Deleted: true}))
			default:
				write1(k, cur.Update(cur.Context(), "n1", write(rng)))
			}
			if rng.IntN(20) == 0 {
				inc.Root() // refresh part way
			}
			if rng.IntN(30) == 0 {
				inc.Hash(rng.IntN(depth+1), 0)
			}
		}
		built, err := BuildTree(src, "ks", r, depth)
		if err != nil {
			t.Fatal(err)
		}
		if inc.Count() != built.Count() {
			t.Fatalf("incremental tree counts %d keys, rebuilt %d", inc.Count(), built.Count())
		}
		for level := 0; level <= depth; level++ {
			for i := range 1 << level {
				if inc.Hash(level, i) != built.Hash(level, i) {
					t.Fatalf("node (%d, %d) differs between incremental and rebuilt trees", level, i)
				}
			}
		}
	})
}

// TestKeyHashFollowsEqual: two objects hash equally exactly when
// version.Equal says they are equal; trace, write time and zero clock
// entries do not count; the key does.
func TestKeyHashFollowsEqual(t *testing.T) {
	forSeeds(t, 20, func(t *testing.T, rng *rand.Rand) {
		src := newMemSource()
		populate(rng, src, 30)
		for range 60 {
			mutate(rng, src, "x")
		}
		var objs []*version.Object
		for _, k := range sortedKeys(src.objs) {
			objs = append(objs, src.objs[k])
		}
		objs = append(objs, nil, version.New())
		for _, x := range objs {
			for _, y := range objs {
				if eq, heq := version.Equal(x, y), KeyHash([]byte("k"), x) == KeyHash([]byte("k"), y); eq != heq {
					t.Fatalf("Equal = %v but hashes equal = %v for %+v and %+v", eq, heq, x, y)
				}
			}
		}
		o := objs[0]
		if KeyHash([]byte("k1"), o) == KeyHash([]byte("k2"), o) {
			t.Fatal("the key is not part of the hash")
		}
	})
}

func sortedKeys(m map[string]*version.Object) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

type failingSource struct{ err error }

func (f failingSource) Scan(string, uint64, uint64, func(uint64, []byte, *version.Object) error) error {
	return f.err
}

type strayTokenSource struct{}

func (strayTokenSource) Scan(_ string, _, _ uint64, fn func(uint64, []byte, *version.Object) error) error {
	return fn(5, []byte("k"), version.New().Update(nil, "n", version.Write{Value: []byte("v")}))
}

func TestBuildTreeErrors(t *testing.T) {
	if _, err := BuildTree(newMemSource(), "ks", FullRing, -1); !errors.Is(err, ErrBadDepth) {
		t.Errorf("depth -1: %v, want ErrBadDepth", err)
	}
	if _, err := BuildTree(newMemSource(), "ks", FullRing, MaxDepth+1); !errors.Is(err, ErrBadDepth) {
		t.Errorf("depth %d: %v, want ErrBadDepth", MaxDepth+1, err)
	}
	if _, err := BuildTree(newMemSource(), "ks", Range{From: 10, To: 5}, 4); !errors.Is(err, ErrBadRange) {
		t.Errorf("wrapping range: %v, want ErrBadRange", err)
	}
	if _, err := BuildTree(newMemSource(), "ks", Range{From: 10, To: 10}, 4); !errors.Is(err, ErrBadRange) {
		t.Errorf("empty range: %v, want ErrBadRange", err)
	}
	boom := errors.New("disk on fire")
	if _, err := BuildTree(failingSource{boom}, "ks", FullRing, 4); !errors.Is(err, boom) {
		t.Errorf("failing source: %v, want it wrapped", err)
	}
	if _, err := BuildTree(strayTokenSource{}, "ks", Range{From: 100}, 4); err == nil {
		t.Error("a token outside the range was accepted")
	}
	tr, _ := NewTree("ks", Range{From: 100}, 0)
	if tr.Depth() != DefaultDepth {
		t.Errorf("depth 0 gave %d, want %d", tr.Depth(), DefaultDepth)
	}
	obj := version.New().Update(nil, "n", version.Write{Value: []byte("v")})
	if err := tr.Add(5, []byte("k"), obj); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("Add outside the range: %v", err)
	}
	if err := tr.Remove(500, []byte("k"), obj); err == nil {
		t.Error("Remove from an empty leaf was accepted")
	}
}

func TestLevelRejectsBadRequests(t *testing.T) {
	tr, _ := NewTree("ks", FullRing, 4)
	ctx := context.Background()
	for _, tc := range []struct {
		level   int
		indexes []int
	}{
		{-1, []int{0}},
		{5, []int{0}},
		{2, []int{4}},
		{2, []int{-1}},
		{1, []int{0, 1, 0}},
	} {
		if _, err := tr.Level(ctx, tc.level, tc.indexes); !errors.Is(err, ErrPeerProtocol) {
			t.Errorf("Level(%d, %v) = %v, want ErrPeerProtocol", tc.level, tc.indexes, err)
		}
	}
	hs, err := tr.Level(ctx, 4, []int{15, 0})
	if err != nil || len(hs) != 2 || len(hs[0]) != HashSize {
		t.Fatalf("Level(4, [15 0]) = %d hashes, %v", len(hs), err)
	}
	if h := tr.Hash(4, 15); string(hs[0]) != string(h[:]) {
		t.Error("Level answers a different digest than Hash")
	}
}

func TestDepthFor(t *testing.T) {
	for _, tc := range []struct{ keys, want int }{
		{0, MinAutoDepth}, {10, MinAutoDepth}, {32, MinAutoDepth}, {33, 5},
		{2048, 10}, {2049, 11}, {100_000, 16}, {1 << 30, MaxAutoDepth},
	} {
		if got := DepthFor(tc.keys); got != tc.want {
			t.Errorf("DepthFor(%d) = %d, want %d", tc.keys, got, tc.want)
		}
	}
}

// tokSource is a RangeSource of keys at chosen tokens, to reach the ends
// of the ring.
type tokSource []memEntry // sorted by token

func (s tokSource) Scan(_ string, from, to uint64, fn func(uint64, []byte, *version.Object) error) error {
	for _, e := range s {
		if e.tok >= from && (to == 0 || e.tok < to) {
			if err := fn(e.tok, e.key, e.obj); err != nil {
				return err
			}
		}
	}
	return nil
}

// TestNarrowRangeAtRingEnd: a range of six tokens ending at the end of the
// ring, in a tree of 16 leaves (most of them empty), holds exactly its
// keys, and reading its leaves never turns into a scan of the whole ring.
func TestNarrowRangeAtRingEnd(t *testing.T) {
	obj := version.New().Update(nil, "n", version.Write{Value: []byte("v")})
	src := tokSource{
		{5, []byte("low"), obj},
		{math.MaxUint64 - 6, []byte("before"), obj},
		{math.MaxUint64 - 3, []byte("in1"), obj},
		{math.MaxUint64, []byte("in2"), obj},
	}
	r := Range{From: math.MaxUint64 - 5}
	tr, err := BuildTree(src, "ks", r, 4)
	if err != nil || tr.Count() != 2 {
		t.Fatalf("BuildTree: %v", err)
	}
	empty := 0
	for i := range tr.Leaves() {
		if _, ok := tr.LeafRange(i); !ok {
			empty++
		}
	}
	if empty != 10 {
		t.Fatalf("%d empty leaves of 16 over 6 tokens, want 10", empty)
	}
	all := make([]int, tr.Leaves())
	for i := range all {
		all[i] = i
	}
	for _, leaves := range [][]int{all, all[10:], all[15:], {0, 15}} {
		got, err := KeysInLeaves(src, "ks", r, 4, leaves)
		if err != nil {
			t.Fatal(err)
		}
		for k := range got {
			if k != "in1" && k != "in2" {
				t.Fatalf("leaves %v: key %q is outside %s", leaves, k, r)
			}
		}
	}
	got, _ := KeysInLeaves(src, "ks", r, 4, all)
	if len(got) != 2 {
		t.Fatalf("all leaves gave %d keys, want 2", len(got))
	}
}
