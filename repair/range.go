package repair

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// Range is the token range [From, To) of the 64-bit ring, with the store's
// convention (store.Scan) that To == 0 means "to the end of the ring", so
// Range{0, 0} is the whole ring. A Range never wraps: From < To, or To == 0.
// A wrapping vnode range is two Ranges, [from, 0) and [0, to).
type Range struct {
	_    struct{} `cbor:",toarray"`
	From uint64
	To   uint64
}

// FullRing is the range of every token.
var FullRing = Range{}

// NewRange returns [from, to) (to == 0: to the end of the ring).
func NewRange(from, to uint64) Range { return Range{From: from, To: to} }

// Validate reports a wrapping or empty range.
func (r Range) Validate() error {
	if r.To != 0 && r.From >= r.To {
		return fmt.Errorf("%w: [%d, %d) is empty or wraps around the ring", ErrBadRange, r.From, r.To)
	}
	return nil
}

// Contains reports whether token t lies in r.
func (r Range) Contains(t uint64) bool {
	return t >= r.From && (r.To == 0 || t < r.To)
}

// last is the largest token of a valid r.
func (r Range) last() uint64 { return r.To - 1 } // To == 0 wraps to MaxUint64

// width returns the number of tokens of a valid r, minus one (so the whole
// ring, 2^64 tokens, fits).
func (r Range) widthMinus1() uint64 { return r.last() - r.From }

// Fraction returns the share of the ring r covers, in [0, 1].
func (r Range) Fraction() float64 {
	return (float64(r.widthMinus1()) + 1) / (math.MaxUint64 + 1.0)
}

func (r Range) String() string {
	if r.To == 0 {
		return fmt.Sprintf("[%#016x, end)", r.From)
	}
	return fmt.Sprintf("[%#016x, %#016x)", r.From, r.To)
}

// Segments splits the whole ring into n equal ranges (the last one ends at
// the end of the ring). n <= 0 means DefaultSegments.
func Segments(n int) []Range {
	n = segmentsOrDefault(n)
	out := make([]Range, n)
	for i := range out {
		out[i] = Range{From: segmentStart(i, n), To: segmentStart(i+1, n)}
	}
	return out
}

// DefaultSegments is the number of equal ring segments a repair pass and
// the dirty-range set work in: small enough that a segment is repaired in
// seconds and a window that closes loses little work, large enough that
// the checkpoint stays a few hundred bytes. (Cassandra Reaper's default is
// in the same spirit: a few hundred segments per cluster.)
const DefaultSegments = 256

// MaxSegments bounds the segment count of a pass.
const MaxSegments = 1 << 16

func segmentsOrDefault(n int) int {
	if n <= 0 {
		return DefaultSegments
	}
	return min(n, MaxSegments)
}

// segmentStart returns the first token of segment i of n, ceil(i·2^64/n);
// segmentStart(n, n) is 0 (the end of the ring).
func segmentStart(i, n int) uint64 {
	if i >= n {
		return 0
	}
	q, rem := bits.Div64(uint64(i), 0, uint64(n))
	if rem != 0 {
		q++
	}
	return q
}

// SegmentOf returns the index of the segment of Segments(n) that holds
// token t: floor(t·n/2^64). n must be positive.
func SegmentOf(t uint64, n int) int {
	hi, _ := bits.Mul64(t, uint64(n))
	return int(hi)
}

// rangeSet is a set of tokens kept as sorted, disjoint, non-adjacent
// inclusive intervals [lo, hi], so the whole ring (2^64 tokens) needs no
// 65th bit.
type rangeSet []span

type span struct{ lo, hi uint64 }

func spanOf(r Range) span { return span{r.From, r.last()} }

func (s span) Range() Range { return Range{From: s.lo, To: s.hi + 1} }

// add returns the set with r's tokens added.
func (rs rangeSet) add(r Range) rangeSet {
	n := spanOf(r)
	out := make(rangeSet, 0, len(rs)+1)
	i := 0
	for ; i < len(rs) && rs[i].hi < n.lo && rs[i].hi+1 != n.lo; i++ {
		out = append(out, rs[i])
	}
	for ; i < len(rs) && (rs[i].lo <= n.hi || (n.hi != math.MaxUint64 && rs[i].lo == n.hi+1)); i++ {
		n.lo = min(n.lo, rs[i].lo)
		n.hi = max(n.hi, rs[i].hi)
	}
	out = append(out, n)
	return append(out, rs[i:]...)
}

// full reports whether the set holds every token.
func (rs rangeSet) full() bool {
	return len(rs) == 1 && rs[0].lo == 0 && rs[0].hi == math.MaxUint64
}

// covers reports whether every token of r is in the set.
func (rs rangeSet) covers(r Range) bool {
	n := spanOf(r)
	for _, s := range rs {
		if s.lo <= n.lo && n.hi <= s.hi {
			return true
		}
	}
	return false
}

// firstGap returns the first part of r (in token order) not in the set.
func (rs rangeSet) firstGap(r Range) (Range, bool) {
	n := spanOf(r)
	lo := n.lo
	for _, s := range rs {
		if s.hi < lo {
			continue
		}
		if s.lo > lo {
			return span{lo, min(s.lo-1, n.hi)}.Range(), true
		}
		if s.hi >= n.hi {
			return Range{}, false
		}
		lo = s.hi + 1
	}
	return span{lo, n.hi}.Range(), true
}

// tokens returns the number of tokens in the set as a fraction of the ring.
func (rs rangeSet) fraction() float64 {
	var f float64
	for _, s := range rs {
		f += s.Range().Fraction()
	}
	return f
}

func (rs rangeSet) ranges() []Range {
	out := make([]Range, len(rs))
	for i, s := range rs {
		out[i] = s.Range()
	}
	return out
}

// rangeSetOf builds a set from ranges that were valid when stored; it
// reports an invalid one.
func rangeSetOf(rs []Range) (rangeSet, error) {
	var out rangeSet
	for _, r := range rs {
		if err := r.Validate(); err != nil {
			return nil, err
		}
		out = out.add(r)
	}
	return out, nil
}

// clone returns an independent copy.
func (rs rangeSet) clone() rangeSet { return slices.Clone(rs) }
