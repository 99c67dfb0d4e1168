package repair

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestRangeSetAgainstReference: the interval set agrees with a naive set
// of ranges on membership and first gaps, at tokens near every boundary
// (ranges are built from a few boundary tokens, including both ends of the
// ring).
func TestRangeSetAgainstReference(t *testing.T) {
	forSeeds(t, 100, func(t *testing.T, rng *rand.Rand) {
		points := []uint64{0, 1, 2, 3, 100, 101, 1 << 63, math.MaxUint64 - 1, math.MaxUint64}
		pick := func() Range {
			for {
				a, b := points[rng.IntN(len(points))], points[rng.IntN(len(points))]
				if a > b {
					a, b = b, a
				}
				r := Range{From: a, To: b + 1} // b == MaxUint64 → To 0, the end
				if r.Validate() == nil {
					return r
				}
			}
		}
		var set rangeSet
		var naive []Range
		for range rng.IntN(6) {
			r := pick()
			set = set.add(r)
			naive = append(naive, r)
		}
		in := func(tok uint64) bool {
			return slices.ContainsFunc(naive, func(r Range) bool { return r.Contains(tok) })
		}
		var probes []uint64
		for _, p := range points {
			probes = append(probes, p-1, p, p+1)
		}
		for _, p := range probes {
			if got := set.covers(Range{From: p, To: p + 1}); got != in(p) {
				t.Fatalf("token %#x: set %v says %v, naive %v", p, set, got, in(p))
			}
		}
		for i := 1; i < len(set); i++ {
			if set[i-1].hi+1 >= set[i].lo {
				t.Fatalf("set %v is not sorted, disjoint and non-adjacent", set)
			}
		}
		if set.full() != (in(0) && !slices.ContainsFunc(probes, func(p uint64) bool { return !in(p) })) {
			t.Fatalf("full() = %v for %v", set.full(), set)
		}
		// firstGap of a random range: its start is the first probe in the
		// range not covered, and nothing before it in the range is a gap.
		q := pick()
		gap, ok := set.firstGap(q)
		first, found := uint64(0), false
		for _, p := range slices.Sorted(slices.Values(probes)) {
			if q.Contains(p) && !in(p) {
				first, found = p, true
				break
			}
		}
		if ok != found || (ok && gap.From != first) {
			t.Fatalf("firstGap(%v) of %v = %v, %v; naive first gap %#x, %v", q, set, gap, ok, first, found)
		}
		if ok {
			for _, p := range probes {
				if gap.Contains(p) && (in(p) || !q.Contains(p)) {
					t.Fatalf("gap %v holds %#x, which is covered or outside %v", gap, p, q)
				}
			}
		}
	})
}

func TestSegments(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 256, 1000} {
		segs := Segments(n)
		if len(segs) != n || segs[0].From != 0 || segs[n-1].To != 0 {
			t.Fatalf("Segments(%d) = %v...", n, segs[:min(3, n)])
		}
		var total float64
		for i, s := range segs {
			if s.Validate() != nil || (i > 0 && segs[i-1].To != s.From) {
				t.Fatalf("Segments(%d): segment %d %v does not tile", n, i, s)
			}
			if SegmentOf(s.From, n) != i || SegmentOf(s.last(), n) != i {
				t.Fatalf("Segments(%d): segmentOf disagrees at segment %d", n, i)
			}
			total += s.Fraction()
		}
		if math.Abs(total-1) > 1e-9 {
			t.Fatalf("Segments(%d) cover %v of the ring", n, total)
		}
	}
	if len(Segments(0)) != DefaultSegments {
		t.Fatal("Segments(0) is not the default")
	}
}
