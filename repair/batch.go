package repair

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/meridian-kv/meridian/version"
)

// DigestBatch is one message of a key exchange (step 2 of a session): a
// run of differing leaves and the initiator's digests of its keys under
// them. The responder answers each batch on its own, reading only its keys
// under Leaves, so a session whose differences exceed one frame is sent as
// several batches.
type DigestBatch struct {
	Leaves  []int
	Digests []KeyDigest
}

// DigestSize is about how many bytes d takes in a message (CBOR: array
// head, key, hash).
func DigestSize(d KeyDigest) int {
	return 1 + cborHead(uint64(len(d.Key))) + len(d.Key) + 1 + HashSize
}

// BatchDigests reads the keys of ks under the given leaves of a tree of
// depth depth over r (as KeysInLeaves does) and cuts the leaves into
// batches whose digests take at most budget bytes and whose leaves and
// digests number at most maxItems each. Leaves are never split: a leaf
// whose digests alone exceed a bound is a batch of its own (with keys
// spread over ~2 per leaf by DepthFor, that takes keys near the 64 KiB
// limit by the dozen in one leaf). It returns the objects read, keyed by
// string(key), and the batches in leaf order; no leaves, no batches.
func BatchDigests(src RangeSource, ks string, r Range, depth int, leaves []int, budget, maxItems int) (map[string]*version.Object, []DigestBatch, error) {
	if depth == 0 {
		depth = DefaultDepth
	}
	if budget <= 0 || maxItems <= 0 {
		return nil, nil, fmt.Errorf("repair: batch bounds %d bytes, %d items: both must be positive", budget, maxItems)
	}
	byLeaf := map[int][]KeyDigest{}
	objs := make(map[string]*version.Object)
	err := scanLeaves(src, ks, r, depth, leaves, func(tok uint64, key []byte, obj *version.Object) {
		objs[string(key)] = obj
		l := leafOf(r, depth, tok)
		byLeaf[l] = append(byLeaf[l], KeyDigest{Key: bytes.Clone(key), Hash: KeyHash(key, obj)})
	})
	if err != nil {
		return nil, nil, err
	}
	sorted := slices.Clone(leaves)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	var (
		out  []DigestBatch
		cur  DigestBatch
		size int
	)
	for _, l := range sorted {
		ds := byLeaf[l]
		slices.SortFunc(ds, func(a, b KeyDigest) int { return bytes.Compare(a.Key, b.Key) })
		s := 1 + cborHead(uint64(l)) // the leaf index itself
		for _, d := range ds {
			s += DigestSize(d)
		}
		if len(cur.Leaves) > 0 && (size+s > budget || len(cur.Leaves)+1 > maxItems || len(cur.Digests)+len(ds) > maxItems) {
			out = append(out, cur)
			cur, size = DigestBatch{}, 0
		}
		cur.Leaves = append(cur.Leaves, l)
		cur.Digests = append(cur.Digests, ds...)
		size += s
	}
	if len(cur.Leaves) > 0 {
		out = append(out, cur)
	}
	return objs, out, nil
}
