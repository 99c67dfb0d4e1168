package placement

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// DefaultVNodes is the number of virtual-node tokens per member when NewRing
// is given vnodes <= 0.
//
// Tokens are pseudo-random, so a member's share of its datacenter's ring
// deviates from the fair share 1/N by about 1/sqrt(V). Measured for 3
// datacenters of 3 to 10 nodes, the worst node at V=256 is typically 8–13%
// off and rarely beyond 20%; at V=64 it is 17–27% off, at V=16 30–60%. The
// table and the reasons for not going higher are in the package
// documentation.
const DefaultVNodes = 256

// Errors reported by NewRing. They are returned wrapped (and joined, when a
// member list has several problems), so test for them with errors.Is.
var (
	ErrEmptyID     = errors.New("placement: member with empty id")
	ErrEmptyDC     = errors.New("placement: member with empty datacenter")
	ErrDuplicateID = errors.New("placement: duplicate member id")
)

// Member is one node as placement sees it.
type Member struct {
	// ID names the node uniquely in the cluster. It is the only input to the
	// node's tokens, so renaming a node moves its data.
	ID string
	// DC is the datacenter (region) the node lives in. Required.
	DC string
	// Rack is the failure domain inside DC. Empty is a rack like any other:
	// a datacenter whose nodes all leave Rack empty has one rack.
	Rack string
}

// Replication maps datacenter name -> replica count (0 or absent = no copy in
// that DC). Negative counts are treated as 0.
type Replication map[string]int

// Ring is an immutable consistent-hashing ring of members (Dynamo §4.2) with
// virtual nodes (Dynamo §6.2, strategy 1). It is safe for concurrent use.
//
// Each datacenter has its own ring of its own members' tokens: placement in one
// datacenter depends only on that datacenter's members, so a join or leave in
// one region never moves data in another. Walking a datacenter's ring visits
// its nodes in the same order as walking the whole ring and skipping other
// datacenters' nodes would.
type Ring struct {
	vnodes  int
	members []Member       // sorted by ID
	byID    map[string]int // ID -> index in members
	dcs     []string       // sorted
	byDC    map[string]*dcRing
}

// dcRing is one datacenter's part of the ring.
type dcRing struct {
	members []Member // this DC's members, sorted by ID; the index is the local id
	rackOf  []int32  // local id -> rack number
	racks   int      // number of distinct racks
	tokens  []Token  // sorted ascending
	owners  []int32  // owners[i] is the local id that owns tokens[i]
}

// NewRing builds the ring from members; vnodes <= 0 means DefaultVNodes.
//
// Each member owns vnodes tokens derived from its ID alone, token i being
// xxhash64(ID + "#" + decimal(i)) for i in [0, vnodes). Every node therefore
// computes the same ring from the member list, with no token gossip, and
// changing vnodes keeps the first min(old, new) tokens of every member. All
// nodes of a cluster must use the same vnodes.
//
// The order of members does not matter. Every member needs a non-empty ID and
// DC, and IDs must be unique; NewRing reports all problems at once. An empty
// member list gives an empty ring, whose plans are short everywhere.
func NewRing(members []Member, vnodes int) (*Ring, error) {
	if vnodes <= 0 {
		vnodes = DefaultVNodes
	}
	sorted := slices.Clone(members)
	slices.SortStableFunc(sorted, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	if err := validate(sorted); err != nil {
		return nil, err
	}

	r := &Ring{
		vnodes:  vnodes,
		members: sorted,
		byID:    make(map[string]int, len(sorted)),
		byDC:    make(map[string]*dcRing),
	}
	for i, m := range sorted {
		r.byID[m.ID] = i
		d := r.byDC[m.DC]
		if d == nil {
			d = &dcRing{}
			r.byDC[m.DC] = d
			r.dcs = append(r.dcs, m.DC)
		}
		d.members = append(d.members, m)
	}
	slices.Sort(r.dcs)
	for _, d := range r.byDC {
		d.build(vnodes)
	}
	return r, nil
}

// validate checks members sorted by ID and returns every problem found.
func validate(sorted []Member) error {
	var errs []error
	for i, m := range sorted {
		switch {
		case m.ID == "":
			if i == 0 { // empty IDs sort first; report them once
				errs = append(errs, ErrEmptyID)
			}
			continue
		case i > 0 && sorted[i-1].ID == m.ID:
			if i == 1 || sorted[i-2].ID != m.ID { // once per duplicated ID
				errs = append(errs, fmt.Errorf("%w %q: give every node a unique id", ErrDuplicateID, m.ID))
			}
		}
		if m.DC == "" {
			errs = append(errs, fmt.Errorf("%w: set the datacenter of member %q", ErrEmptyDC, m.ID))
		}
	}
	return errors.Join(errs...)
}

// build derives the tokens of d.members and indexes their racks.
func (d *dcRing) build(vnodes int) {
	rackNum := make(map[string]int32)
	d.rackOf = make([]int32, len(d.members))
	for i, m := range d.members {
		n, ok := rackNum[m.Rack]
		if !ok {
			n = int32(len(rackNum))
			rackNum[m.Rack] = n
		}
		d.rackOf[i] = n
	}
	d.racks = len(rackNum)

	type vnode struct {
		token Token
		owner int32
	}
	vs := make([]vnode, 0, len(d.members)*vnodes)
	var buf []byte
	for i, m := range d.members {
		for v := range vnodes {
			buf = append(buf[:0], m.ID...)
			buf = append(buf, '#')
			buf = strconv.AppendInt(buf, int64(v), 10)
			vs = append(vs, vnode{xxhash.Sum64(buf), int32(i)})
		}
	}
	// Ties (two members hashing to the same token) go to the smaller ID, so
	// the order stays independent of the input order.
	slices.SortFunc(vs, func(a, b vnode) int {
		return cmp.Or(cmp.Compare(a.token, b.token), cmp.Compare(a.owner, b.owner))
	})
	d.tokens = make([]Token, len(vs))
	d.owners = make([]int32, len(vs))
	for i, v := range vs {
		d.tokens[i] = v.token
		d.owners[i] = v.owner
	}
}

// VNodes returns the number of tokens per member.
func (r *Ring) VNodes() int { return r.vnodes }

// Members returns all members sorted by ID. The slice is the caller's.
func (r *Ring) Members() []Member { return slices.Clone(r.members) }

// Member returns the member with the given ID.
func (r *Ring) Member(id string) (Member, bool) {
	i, ok := r.byID[id]
	if !ok {
		return Member{}, false
	}
	return r.members[i], true
}

// DCs returns the distinct datacenters of the members, sorted. The slice is
// the caller's.
func (r *Ring) DCs() []string { return slices.Clone(r.dcs) }

// Ownership returns, for each member ID, the fraction of the ring (0..1) for
// which the member is the primary — the first replica — among the nodes of
// its own datacenter. The fractions of one datacenter sum to 1. It is meant
// for measuring balance, in tests and in `meridian ring`.
func (r *Ring) Ownership() map[string]float64 {
	const ringSize = 1 << 64 // as a float64 constant
	own := make(map[string]float64, len(r.members))
	for _, d := range r.byDC {
		if len(d.members) == 1 {
			own[d.members[0].ID] = 1
			continue
		}
		for _, m := range d.members {
			own[m.ID] = 0
		}
		// Token t belongs to the first vnode at or after it, so vnode i owns
		// (tokens[i-1], tokens[i]], and vnode 0 owns the wrap-around arc.
		// Unsigned subtraction wraps modulo 2^64, which is exactly the arc.
		last := d.tokens[len(d.tokens)-1]
		for i, t := range d.tokens {
			prev := last
			if i > 0 {
				prev = d.tokens[i-1]
			}
			own[d.members[d.owners[i]].ID] += float64(t-prev) / ringSize
		}
	}
	return own
}
