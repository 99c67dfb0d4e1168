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
// limit by the dozen in one leaf). It returns the batches in leaf order
// (no leaves, no batches). It keeps digests, not objects, so its memory
// follows the number of keys, not their size: the node reads an object
// again when it has to send it.
func BatchDigests(src RangeSource, ks string, r Range, depth int, leaves []int, budget, maxItems int) ([]DigestBatch, error) {
	if depth == 0 {
		depth = DefaultDepth
	}
	if budget <= 0 || maxItems <= 0 {
		return nil, fmt.Errorf("repair: batch bounds %d bytes, %d items: both must be positive", budget, maxItems)
	}
	byLeaf := map[int][]KeyDigest{}
	err := scanLeaves(src, ks, r, depth, leaves, func(tok uint64, key []byte, obj *version.Object) {
		l := leafOf(r, depth, tok)
		byLeaf[l] = append(byLeaf[l], KeyDigest{Key: bytes.Clone(key), Hash: KeyHash(key, obj)})
	})
	if err != nil {
		return nil, err
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
	return out, nil
}

// LeafRuns returns the token ranges that the given leaves of a tree of
// depth depth over r cover, adjacent leaves joined into one range and
// leaves narrower than a token left out, in token order: what a replica
// scans to read its keys under those leaves.
func LeafRuns(r Range, depth int, leaves []int) ([]Range, error) {
	if depth == 0 {
		depth = DefaultDepth
	}
	if depth < 0 || depth > MaxDepth {
		return nil, fmt.Errorf("%w: %d", ErrBadDepth, depth)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	sorted := slices.Clone(leaves)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	if len(sorted) > 0 && (sorted[0] < 0 || sorted[len(sorted)-1] >= 1<<depth) {
		return nil, fmt.Errorf("repair: leaf index outside a tree of depth %d", depth)
	}
	var out []Range
	for i := 0; i < len(sorted); {
		first := sorted[i]
		j := i + 1
		for j < len(sorted) && sorted[j] == sorted[j-1]+1 {
			j++
		}
		last := sorted[j-1]
		i = j
		if leavesEmpty(r, depth, first, last+1) {
			continue // leaves narrower than one token
		}
		out = append(out, Range{From: leafStart(r, depth, first), To: leafStart(r, depth, last+1)})
	}
	return out, nil
}
