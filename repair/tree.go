package repair

import (
	"context"
	"errors"
	"fmt"
	"math/bits"

	"github.com/meridian-kv/meridian/version"
)

// RangeSource is the store as tree building sees it: store.Store satisfies
// it. Scan calls fn for every key of keyspace ks whose token t satisfies
// from <= t < to (to == 0: to the end of the ring), in token order, and
// returns fn's first error. fn may keep key and obj. Scan blocks for the
// duration of the scan; this package never calls it from more than one
// goroutine at a time.
type RangeSource interface {
	Scan(ks string, from, to uint64, fn func(token uint64, key []byte, obj *version.Object) error) error
}

// Tree depths.
const (
	// DefaultDepth is the depth a 0 passed to NewTree or BuildTree stands
	// for: 1024 leaves. Sessions should pick the depth from the range's
	// key count with DepthFor instead.
	DefaultDepth = 10
	// MaxDepth bounds a tree: 2^20 leaves take about 56 MiB.
	MaxDepth = 20
)

// Tree is a Merkle tree over the keys of one keyspace in one token range
// (Dynamo §4.7). The range is cut into 2^depth leaves of equal token width;
// a leaf's digest covers the XOR of the KeyHash of every key in it and
// their count, so keys can be added and removed in any order (Riak's
// Tictac AAE); an inner node hashes its two children.
//
// Node (level, index) covers the leaves [index·2^(depth-level),
// (index+1)·2^(depth-level)); level 0 is the root, level depth the leaves.
//
// Inner digests are computed lazily: Add and Remove touch one leaf
// accumulator and mark the path to the root stale; Root, Hash and Level
// recompute what is stale. A Tree is not safe for concurrent use — not even
// of its read methods, which refresh those caches; guard it with a mutex.
type Tree struct {
	ks    string
	r     Range
	depth int
	keys  int

	acc   []Hash   // per leaf: XOR of its key hashes
	count []uint64 // per leaf: number of keys
	nodes []Hash   // heap order: nodes[1] is the root, level l is [1<<l, 2<<l)
	stale []uint64 // bitset over heap indexes; a stale node's ancestors are stale
}

// NewTree returns the tree of an empty range. depth 0 means DefaultDepth.
func NewTree(ks string, r Range, depth int) (*Tree, error) {
	if depth == 0 {
		depth = DefaultDepth
	}
	if depth < 0 || depth > MaxDepth {
		return nil, fmt.Errorf("%w: %d (want 1..%d, or 0 for %d)", ErrBadDepth, depth, MaxDepth, DefaultDepth)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	leaves := 1 << depth
	t := &Tree{
		ks: ks, r: r, depth: depth,
		acc:   make([]Hash, leaves),
		count: make([]uint64, leaves),
		nodes: make([]Hash, 2*leaves),
		stale: make([]uint64, (2*leaves+63)/64),
	}
	for i := range t.stale {
		t.stale[i] = ^uint64(0)
	}
	return t, nil
}

// BuildTree builds the tree of keyspace ks over r with one scan of src.
// depth 0 means DefaultDepth. It fails if src fails, or returns a token
// outside r.
func BuildTree(src RangeSource, ks string, r Range, depth int) (*Tree, error) {
	t, err := NewTree(ks, r, depth)
	if err != nil {
		return nil, err
	}
	err = src.Scan(ks, r.From, r.To, func(tok uint64, key []byte, obj *version.Object) error {
		if !r.Contains(tok) {
			return fmt.Errorf("repair: scan of %s in keyspace %q returned token %#016x outside it", r, ks, tok)
		}
		t.apply(tok, key, obj, true)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("repair: build tree of %q %s: %w", ks, r, err)
	}
	return t, nil
}

// DepthFor returns the depth a session should use for a range holding
// about keys keys: about two keys per leaf (see the package documentation
// for the measurement behind it), between MinAutoDepth and MaxAutoDepth.
func DepthFor(keys int) int {
	d := 1
	for d < MaxAutoDepth && keys > 2<<d {
		d++
	}
	return max(d, MinAutoDepth)
}

// Bounds of DepthFor.
const (
	MinAutoDepth = 4
	// MaxAutoDepth keeps one tree near 7 MiB of memory (2^17 leaves).
	MaxAutoDepth = 17
)

// Keyspace, Range and Depth return the tree's parameters.
func (t *Tree) Keyspace() string { return t.ks }
func (t *Tree) Range() Range     { return t.r }
func (t *Tree) Depth() int       { return t.depth }

// Leaves returns the number of leaves, 2^Depth.
func (t *Tree) Leaves() int { return len(t.acc) }

// Count returns the number of keys in the tree.
func (t *Tree) Count() int { return t.keys }

// LeafCount returns the number of keys in leaf i.
func (t *Tree) LeafCount(i int) int { return int(t.count[i]) }

// LeafOf returns the leaf that holds token tok, which must lie in the
// tree's range.
func (t *Tree) LeafOf(tok uint64) int { return leafOf(t.r, t.depth, tok) }

// LeafRange returns the token range leaf i covers, or ok == false if the
// leaf covers no token (a range narrower than 2^depth tokens has such
// leaves).
func (t *Tree) LeafRange(i int) (r Range, ok bool) {
	if leavesEmpty(t.r, t.depth, i, i+1) {
		return Range{}, false
	}
	return Range{From: leafStart(t.r, t.depth, i), To: leafStart(t.r, t.depth, i+1)}, true
}

// leavesEmpty reports whether leaves [i, j) of r cover no token, which
// only happens in a range narrower than 2^depth tokens.
func leavesEmpty(r Range, depth, i, j int) bool {
	if r.widthMinus1() == ^uint64(0) {
		return false
	}
	return leafOffset(r, depth, i) == leafOffset(r, depth, j)
}

func leafOf(r Range, depth int, tok uint64) int {
	off := tok - r.From
	wm1 := r.widthMinus1()
	if wm1 == ^uint64(0) { // the whole ring: 2^64 tokens
		return int(off >> (64 - depth) & (1<<depth - 1))
	}
	hi, lo := bits.Mul64(off, 1<<depth)
	q, _ := bits.Div64(hi, lo, wm1+1)
	return int(q)
}

// leafStart returns the first token of leaf i, ceil(i·width/2^depth) past
// From; leafStart of the one-past-last leaf is r.To.
func leafStart(r Range, depth, i int) uint64 {
	if i >= 1<<depth {
		return r.To
	}
	if r.widthMinus1() == ^uint64(0) {
		return r.From + uint64(i)<<(64-depth)
	}
	return r.From + leafOffset(r, depth, i)
}

// leafOffset returns ceil(i·width/2^depth) for a range narrower than the
// whole ring (whose width fits in 64 bits).
func leafOffset(r Range, depth, i int) uint64 {
	width := r.widthMinus1() + 1
	if i >= 1<<depth {
		return width
	}
	hi, lo := bits.Mul64(uint64(i), width)
	q, rem := bits.Div64(hi, lo, 1<<depth)
	if rem != 0 {
		q++
	}
	return q
}

// ErrOutOfRange is returned by Add and Remove for a token outside the
// tree's range.
var ErrOutOfRange = errors.New("repair: token outside the tree's range")

// Add adds key, stored as obj at ring token tok, to the tree. An empty obj
// (version.Object.IsEmpty) is a key that does not exist and adds nothing.
// Add does not check that the key is not already in the tree: a write must
// Remove the old object first (or call Replace).
func (t *Tree) Add(tok uint64, key []byte, obj *version.Object) error {
	if !t.r.Contains(tok) {
		return fmt.Errorf("%w: %#016x not in %s", ErrOutOfRange, tok, t.r)
	}
	t.apply(tok, key, obj, true)
	return nil
}

// Remove takes key, as it was stored (obj), out of the tree. obj must be
// exactly what was added, or the leaf ends up wrong; removing from a leaf
// that holds no key is reported.
func (t *Tree) Remove(tok uint64, key []byte, obj *version.Object) error {
	if !t.r.Contains(tok) {
		return fmt.Errorf("%w: %#016x not in %s", ErrOutOfRange, tok, t.r)
	}
	if !obj.IsEmpty() && t.count[t.LeafOf(tok)] == 0 {
		return fmt.Errorf("repair: remove of a key from empty leaf %d: the tree is out of step with the store (rebuild it)", t.LeafOf(tok))
	}
	t.apply(tok, key, obj, false)
	return nil
}

// Replace records that key changed from old to new (either may be empty),
// which is what a store write does.
func (t *Tree) Replace(tok uint64, key []byte, old, new *version.Object) error {
	if err := t.Remove(tok, key, old); err != nil {
		return err
	}
	return t.Add(tok, key, new)
}

func (t *Tree) apply(tok uint64, key []byte, obj *version.Object, add bool) {
	if obj.IsEmpty() {
		return
	}
	i := leafOf(t.r, t.depth, tok)
	t.acc[i].xor(KeyHash(key, obj))
	if add {
		t.count[i]++
		t.keys++
	} else {
		t.count[i]--
		t.keys--
	}
	for n := len(t.acc) + i; n >= 1 && !t.isStale(n); n >>= 1 {
		t.stale[n/64] |= 1 << (n % 64)
	}
}

func (t *Tree) isStale(n int) bool { return t.stale[n/64]&(1<<(n%64)) != 0 }

// node returns the digest of heap node n, refreshing it if stale.
func (t *Tree) node(n int) Hash {
	if !t.isStale(n) {
		return t.nodes[n]
	}
	if leaves := len(t.acc); n >= leaves {
		t.nodes[n] = leafDigest(t.acc[n-leaves], t.count[n-leaves])
	} else {
		t.nodes[n] = innerDigest(t.node(2*n), t.node(2*n+1))
	}
	t.stale[n/64] &^= 1 << (n % 64)
	return t.nodes[n]
}

// Root returns the root digest. Two trees of the same keyspace, range and
// depth have equal roots exactly when their keys and objects are equal
// (version.Equal), but for a 2^-128 accident.
func (t *Tree) Root() Hash { return t.node(1) }

// Hash returns the digest of node index of level (0 = root).
func (t *Tree) Hash(level, index int) Hash { return t.node(1<<level + index) }

// Level answers a peer's request for the digests of nodes of one level of
// the tree, in the order of indexes; it is the responder's side of
// DiffWithPeer, so Tree is itself a Peer. It refuses a level outside
// [0, Depth], an index outside the level, and more indexes than the level
// has, with an error wrapping ErrPeerProtocol. ctx is ignored.
func (t *Tree) Level(_ context.Context, level int, indexes []int) ([][]byte, error) {
	if level < 0 || level > t.depth {
		return nil, fmt.Errorf("%w: level %d of a tree of depth %d", ErrPeerProtocol, level, t.depth)
	}
	if len(indexes) > 1<<level {
		return nil, fmt.Errorf("%w: %d indexes asked of level %d", ErrPeerProtocol, len(indexes), level)
	}
	out := make([][]byte, len(indexes))
	buf := make([]byte, len(indexes)*HashSize)
	for k, i := range indexes {
		if i < 0 || i >= 1<<level {
			return nil, fmt.Errorf("%w: index %d of level %d", ErrPeerProtocol, i, level)
		}
		h := t.Hash(level, i)
		out[k] = buf[k*HashSize : (k+1)*HashSize : (k+1)*HashSize]
		copy(out[k], h[:])
	}
	return out, nil
}
