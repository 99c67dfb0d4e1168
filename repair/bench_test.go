package repair

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/meridian-kv/meridian/codec"
	"github.com/meridian-kv/meridian/version"
)

const benchKeys = 100_000

var benchSource = sync.OnceValue(func() *memSource {
	rng := newRand(1)
	src := newMemSource()
	for i := range benchKeys {
		o := version.New().Update(nil, "n1", version.Write{Value: randValue(rng, 64+rng.IntN(128)), WrittenAt: int64(i)})
		src.set(fmt.Sprintf("user:%08d", i), o)
	}
	src.entries()
	return src
})

// BenchmarkBuildTree100k: one range scan of 100k keys (values of 64–191
// bytes) into a tree, at the default depth and at DepthFor(100k).
func BenchmarkBuildTree100k(b *testing.B) {
	src := benchSource()
	for _, depth := range []int{DefaultDepth, DepthFor(benchKeys)} {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			for b.Loop() {
				t, err := BuildTree(src, "ks", FullRing, depth)
				if err != nil {
					b.Fatal(err)
				}
				t.Root()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchKeys, "ns/key")
		})
	}
}

// BenchmarkTreeReplace100k: keeping a 100k-key tree current, per write
// (Replace of the old object by the new), with the root read never, or
// after every write.
func BenchmarkTreeReplace100k(b *testing.B) {
	src := benchSource()
	depth := DepthFor(benchKeys)
	rng := newRand(2)
	type upd struct {
		tok      uint64
		key      []byte
		old, new *version.Object
	}
	es := src.entries()
	upds := make([]upd, 4096)
	for i := range upds {
		e := es[rng.IntN(len(es))]
		upds[i] = upd{e.tok, e.key, e.obj, e.obj.Update(e.obj.Context(), "n1", version.Write{Value: randValue(rng, 128)})}
	}
	for _, readRoot := range []bool{false, true} {
		b.Run(fmt.Sprintf("root-every-write=%v", readRoot), func(b *testing.B) {
			t, err := BuildTree(src, "ks", FullRing, depth)
			if err != nil {
				b.Fatal(err)
			}
			t.Root()
			i := 0
			for b.Loop() {
				u := upds[i%len(upds)]
				// Alternate forward and back so the tree stays in step.
				old, new := u.old, u.new
				if (i/len(upds))%2 == 1 {
					old, new = new, old
				}
				if err := t.Replace(u.tok, u.key, old, new); err != nil {
					b.Fatal(err)
				}
				if readRoot {
					t.Root()
				}
				i++
			}
		})
	}
}

// BenchmarkIncrementalBuild100k: the same tree as BuildTree, made by 100k
// Adds (what a node keeping trees current pays to populate one).
func BenchmarkIncrementalBuild100k(b *testing.B) {
	src := benchSource()
	es := src.entries()
	depth := DepthFor(benchKeys)
	for b.Loop() {
		t, _ := NewTree("ks", FullRing, depth)
		for _, e := range es {
			if err := t.Add(e.tok, e.key, e.obj); err != nil {
				b.Fatal(err)
			}
		}
		t.Root()
	}
}

type wireEntry struct {
	_   struct{} `cbor:",toarray"`
	Key []byte
	Obj *version.Object
}

// wireSize is the CBOR size of objects sent as a [key, object] list.
func wireSize(objs map[string]*version.Object) int {
	var list []wireEntry
	for _, k := range sortedKeys(objs) {
		list = append(list, wireEntry{Key: []byte(k), Obj: objs[k]})
	}
	return cborSize(list)
}

func cborSize(v any) int {
	b, err := codec.Marshal(v)
	if err != nil {
		panic(err)
	}
	return len(b)
}

// BenchmarkDiff: one repair session between two replicas of 100k keys,
// trees already built: tree comparison, then the key exchange under the
// differing leaves. "diverge" keys were changed, half on each side (new
// writes, updates, concurrent siblings, deletes, lost keys).
//
// Metrics: hashes and tree-B are the tree comparison's hashes and bytes;
// diff-B is what must cross at least (every object one side lacks, whole,
// as Reconcile on the full data decides); bytes-sent/bytes-diff is the key
// exchange of the digest protocol (initiator's digests, responder's
// differing objects and wants, initiator's objects back) over diff-B;
// naive-sent/bytes-diff the same for sending every object under the
// differing leaves (KeysInLeaves) and getting back what Reconcile says
// is missing.
func BenchmarkDiff(b *testing.B) {
	for _, diverge := range []int{0, benchKeys / 1000} {
		a := benchSource()
		bb := a.clone()
		ac := a.clone()
		rng := newRand(3)
		for changed := 0; changed < diverge; {
			side, actor := ac, "a"
			if changed%2 == 1 {
				side, actor = bb, "b"
			}
			// Writes like the data set's: values of 64–191 bytes.
			if mutateWith(rng, side, actor, func(rng *rand.Rand) version.Write { return writeSized(rng, 64, 192) }) {
				changed++
			}
		}
		ac.entries()
		bb.entries()
		oracleToB, oracleToA := Reconcile(ac.objs, bb.objs)
		diffBytes := 0
		if len(oracleToA)+len(oracleToB) > 0 {
			diffBytes = wireSize(oracleToB) + wireSize(oracleToA)
		}
		for _, depth := range []int{10, 14, DepthFor(benchKeys), 17} {
			b.Run(fmt.Sprintf("diverge=%d/depth=%d", diverge, depth), func(b *testing.B) {
				ta, err := BuildTree(ac, "ks", FullRing, depth)
				if err != nil {
					b.Fatal(err)
				}
				tb, err := BuildTree(bb, "ks", FullRing, depth)
				if err != nil {
					b.Fatal(err)
				}
				ta.Root()
				tb.Root()
				var stats DiffStats
				var sent, naive, leaves int
				for b.Loop() {
					var l []int
					l, stats, err = DiffWithPeer(context.Background(), ta, tb)
					if err != nil {
						b.Fatal(err)
					}
					leaves = len(l)
					mine, err := KeysInLeaves(ac, "ks", FullRing, depth, l)
					if err != nil {
						b.Fatal(err)
					}
					theirs, err := KeysInLeaves(bb, "ks", FullRing, depth, l)
					if err != nil {
						b.Fatal(err)
					}
					digests := Digests(mine)
					send, want := CompareDigests(theirs, digests)
					local := map[string]*version.Object{}
					for k := range send {
						if o, ok := mine[k]; ok {
							local[k] = o
						}
					}
					for _, k := range want {
						local[string(k)] = mine[string(k)]
					}
					toB, toA := Reconcile(local, send)
					if len(toA) != len(oracleToA) || len(toB) != len(oracleToB) {
						b.Fatalf("session fixes %d+%d keys, the oracle %d+%d", len(toA), len(toB), len(oracleToA), len(oracleToB))
					}
					sent = cborSize(digests) + wireSize(send) + cborSize(want) + wireSize(toB)
					_, back := Reconcile(theirs, mine)
					naive = wireSize(mine) + wireSize(back)
				}
				b.ReportMetric(float64(stats.HashesReceived), "hashes")
				b.ReportMetric(float64(stats.Rounds), "rounds")
				b.ReportMetric(float64(stats.Bytes), "tree-B")
				b.ReportMetric(float64(leaves), "leaves")
				b.ReportMetric(float64(sent), "sent-B")
				if diffBytes > 0 {
					b.ReportMetric(float64(diffBytes), "diff-B")
					b.ReportMetric(float64(sent)/float64(diffBytes), "bytes-sent/bytes-diff")
					b.ReportMetric(float64(sent+stats.Bytes)/float64(diffBytes), "with-tree/bytes-diff")
					b.ReportMetric(float64(naive)/float64(diffBytes), "naive-sent/bytes-diff")
				}
			})
		}
	}
}

// BenchmarkDiffStride: the tree comparison alone at DepthFor(100k) with 0.1%
// of keys diverged, descending 1, 2 or 4 levels per round trip: fewer
// round trips for more hashes.
func BenchmarkDiffStride(b *testing.B) {
	a := benchSource()
	bb := a.clone()
	rng := newRand(3)
	for changed := 0; changed < benchKeys/1000; {
		if mutateWith(rng, bb, "b", func(rng *rand.Rand) version.Write { return writeSized(rng, 64, 192) }) {
			changed++
		}
	}
	depth := DepthFor(benchKeys)
	ta, _ := BuildTree(a, "ks", FullRing, depth)
	tb, _ := BuildTree(bb, "ks", FullRing, depth)
	ta.Root()
	tb.Root()
	for _, stride := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("stride=%d", stride), func(b *testing.B) {
			var stats DiffStats
			for b.Loop() {
				var err error
				if _, stats, err = DiffWithPeerStride(context.Background(), ta, tb, stride); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(stats.HashesReceived), "hashes")
			b.ReportMetric(float64(stats.Rounds), "rounds")
			b.ReportMetric(float64(stats.Bytes), "tree-B")
		})
	}
}
