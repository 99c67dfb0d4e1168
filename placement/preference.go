package placement

import (
	"slices"
	"sort"
)

// Plan is the preference list of one key (Dynamo §4.3), made
// datacenter-aware: every datacenter named by the replication map gets its
// own list, computed on its own nodes.
//
// A Plan is a value; its maps and slices belong to the caller.
type Plan struct {
	// Token is the position the plan was computed for.
	Token Token
	// Replicas per DC, in ring-walk order starting at the key's token (first =
	// "primary" in that DC). Only datacenters asked for with a count > 0 and
	// having at least one member appear.
	Replicas map[string][]Member
	// Fallbacks per DC: the remaining nodes of that DC in ring-walk order after
	// the replicas (sloppy-quorum stand-ins, Dynamo §4.6). A datacenter whose
	// nodes are all replicas does not appear.
	Fallbacks map[string][]Member
	// Short per DC: how many replicas the replication map asked for that the
	// DC cannot give (fewer nodes than requested, or DC absent). Omitted when
	// 0; nil when nothing is short.
	Short map[string]int
}

// Plan returns the preference list for token t under rep.
//
// In each datacenter it walks that datacenter's ring clockwise from the first
// vnode token >= t (wrapping past the top) and lists the distinct nodes in the
// order met. The replicas are chosen from that walk like Cassandra's
// NetworkTopologyStrategy spreads over racks: first every node whose rack is
// not yet used, until the count is reached or every rack holds a replica;
// then, if more are needed, the nodes passed over because their rack was
// taken, in walk order. The replicas are reported in walk order, so the first
// node of the walk is always the primary; every other node of the datacenter
// is a fallback, also in walk order.
//
// The result depends only on t, rep and the member set. Plan allocates only
// its result.
func (r *Ring) Plan(t Token, rep Replication) Plan {
	p := Plan{
		Token:     t,
		Replicas:  make(map[string][]Member, len(rep)),
		Fallbacks: make(map[string][]Member, len(rep)),
	}
	for dc, want := range rep {
		if want <= 0 {
			continue
		}
		d := r.byDC[dc]
		n := 0
		if d != nil {
			n = len(d.members)
		}
		if want > n {
			if p.Short == nil {
				p.Short = make(map[string]int)
			}
			p.Short[dc] = want - n
			want = n
		}
		if n == 0 {
			continue
		}
		replicas, fallbacks := d.plan(t, want)
		p.Replicas[dc] = replicas
		if len(fallbacks) > 0 {
			p.Fallbacks[dc] = fallbacks
		}
	}
	return p
}

// plan walks d from t and splits its nodes into want replicas and the
// fallbacks; 0 < want <= len(d.members).
func (d *dcRing) plan(t Token, want int) (replicas, fallbacks []Member) {
	n := len(d.members)

	// Walk order of the distinct nodes. Collecting all n is a coupon-collector
	// walk of about n·ln(n) vnodes, independent of the vnode count.
	var orderBuf [64]int32
	order := orderBuf[:0]
	seen := newBitset(n)
	i := sort.Search(len(d.tokens), func(i int) bool { return d.tokens[i] >= t })
	for range d.tokens {
		if i == len(d.tokens) {
			i = 0
		}
		if o := d.owners[i]; !seen.has(int(o)) {
			seen.set(int(o))
			order = append(order, o)
			if len(order) == n {
				break
			}
		}
		i++
	}

	// Pick replicas by position in order: new racks first, then the rest.
	picked := newBitset(n)
	racks := newBitset(d.racks)
	got, racksUsed := 0, 0
	for pos, o := range order {
		if got == want || racksUsed == d.racks {
			break
		}
		if rk := int(d.rackOf[o]); !racks.has(rk) {
			racks.set(rk)
			racksUsed++
			picked.set(pos)
			got++
		}
	}
	for pos := range order {
		if got == want {
			break
		}
		if !picked.has(pos) {
			picked.set(pos)
			got++
		}
	}

	// One allocation for both lists; the full slice expression keeps an
	// append to replicas from overwriting the fallbacks.
	out := make([]Member, n)
	ri, fi := 0, want
	for pos, o := range order {
		if picked.has(pos) {
			out[ri] = d.members[o]
			ri++
		} else {
			out[fi] = d.members[o]
			fi++
		}
	}
	return out[:want:want], out[want:]
}

// All returns all replicas, datacenters sorted by name, walk order inside a
// datacenter. Fallbacks are not included.
func (p Plan) All() []Member {
	dcs := make([]string, 0, len(p.Replicas))
	total := 0
	for dc, ms := range p.Replicas {
		dcs = append(dcs, dc)
		total += len(ms)
	}
	slices.Sort(dcs)
	all := make([]Member, 0, total)
	for _, dc := range dcs {
		all = append(all, p.Replicas[dc]...)
	}
	return all
}

// Contains reports whether the member with the given ID is one of the
// replicas (not a fallback).
func (p Plan) Contains(id string) bool {
	for _, ms := range p.Replicas {
		for _, m := range ms {
			if m.ID == id {
				return true
			}
		}
	}
	return false
}

// bitset is a set of small non-negative ints. Up to 256 members fit in the
// inline array, so the common case does not allocate.
type bitset struct {
	inline [4]uint64
	words  []uint64
}

func newBitset(n int) bitset {
	var b bitset
	if w := (n + 63) / 64; w > len(b.inline) {
		b.words = make([]uint64, w)
	}
	return b
}

func (b *bitset) word(i int) *uint64 {
	if b.words != nil {
		return &b.words[i/64]
	}
	return &b.inline[i/64]
}

func (b *bitset) has(i int) bool { return *b.word(i)&(1<<(i%64)) != 0 }
func (b *bitset) set(i int)      { *b.word(i) |= 1 << (i % 64) }
