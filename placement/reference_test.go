package placement

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// refRing is the naive reference: one flat list of every vnode of every
// member, searched linearly. It shares no code with Ring.
type refRing struct {
	vnodes []refVNode // sorted by (token, ID)
	byID   map[string]Member
}

type refVNode struct {
	token Token
	m     Member
}

func newRefRing(members []Member, vnodes int) *refRing {
	r := &refRing{byID: map[string]Member{}}
	for _, m := range members {
		r.byID[m.ID] = m
		for i := 0; i < vnodes; i++ {
			r.vnodes = append(r.vnodes, refVNode{xxhash.Sum64String(m.ID + "#" + strconv.Itoa(i)), m})
		}
	}
	slices.SortFunc(r.vnodes, func(a, b refVNode) int {
		return cmp.Or(cmp.Compare(a.token, b.token), cmp.Compare(a.m.ID, b.m.ID))
	})
	return r
}

// walk lists the distinct members of dc clockwise from t over the whole ring.
func (r *refRing) walk(t Token, dc string) []Member {
	start := len(r.vnodes)
	for i, v := range r.vnodes {
		if v.token >= t {
			start = i
			break
		}
	}
	var out []Member
	seen := map[string]bool{}
	for k := 0; k < len(r.vnodes); k++ {
		v := r.vnodes[(start+k)%len(r.vnodes)]
		if v.m.DC == dc && !seen[v.m.ID] {
			seen[v.m.ID] = true
			out = append(out, v.m)
		}
	}
	return out
}

// plan is Cassandra's original NetworkTopologyStrategy loop: take nodes of
// unseen racks; park nodes of seen racks; once every rack is seen, drain the
// parked nodes and then take whatever comes.
func (r *refRing) plan(t Token, rep Replication) Plan {
	p := Plan{Token: t, Replicas: map[string][]Member{}, Fallbacks: map[string][]Member{}}
	for dc, want := range rep {
		if want <= 0 {
			continue
		}
		walk := r.walk(t, dc)
		if want > len(walk) {
			if p.Short == nil {
				p.Short = map[string]int{}
			}
			p.Short[dc] = want - len(walk)
			want = len(walk)
		}
		if len(walk) == 0 {
			continue
		}
		allRacks := map[string]bool{}
		for _, m := range walk {
			allRacks[m.Rack] = true
		}
		chosen := map[string]bool{}
		seenRacks := map[string]bool{}
		var parked []Member
		for _, m := range walk {
			if len(chosen) == want {
				break
			}
			switch {
			case !seenRacks[m.Rack]:
				seenRacks[m.Rack] = true
				chosen[m.ID] = true
				if len(seenRacks) == len(allRacks) {
					for len(parked) > 0 && len(chosen) < want {
						chosen[parked[0].ID] = true
						parked = parked[1:]
					}
				}
			case len(seenRacks) == len(allRacks):
				chosen[m.ID] = true
			default:
				parked = append(parked, m)
			}
		}
		var reps, fbs []Member
		for _, m := range walk {
			if chosen[m.ID] {
				reps = append(reps, m)
			} else {
				fbs = append(fbs, m)
			}
		}
		p.Replicas[dc] = reps
		if len(fbs) > 0 {
			p.Fallbacks[dc] = fbs
		}
	}
	return p
}

// randomTopology returns members in 1..4 datacenters with 0..12 nodes each
// over 1..4 racks, and a replication map that also names a missing DC at times.
func randomTopology(rng *rand.Rand) ([]Member, Replication) {
	var members []Member
	rep := Replication{}
	ndc := 1 + rng.IntN(4)
	for d := range ndc {
		dc := fmt.Sprintf("dc%d", d)
		racks := 1 + rng.IntN(4)
		for i := range rng.IntN(13) {
			members = append(members, Member{
				ID:   fmt.Sprintf("%s-n%d-%d", dc, i, rng.IntN(1000)),
				DC:   dc,
				Rack: fmt.Sprintf("r%d", rng.IntN(racks)),
			})
		}
		if rng.IntN(5) > 0 {
			rep[dc] = rng.IntN(6) - 1 // -1 and 0 mean no copy
		}
	}
	if rng.IntN(4) == 0 {
		rep["nowhere"] = 1 + rng.IntN(3)
	}
	return members, rep
}

// topology returns dcs × n members, racks per DC spread round-robin.
func topology(dcs []string, n, racks int) []Member {
	var ms []Member
	for _, dc := range dcs {
		for i := range n {
			ms = append(ms, Member{ID: fmt.Sprintf("%s-%d", dc, i), DC: dc, Rack: fmt.Sprintf("rack%d", i%racks)})
		}
	}
	return ms
}

// seededRand returns a generator with a fresh seed and logs the seed if the
// test fails; set MERIDIAN_SEED to replay one.
func seededRand(t testing.TB) *rand.Rand {
	t.Helper()
	seed := rand.Uint64()
	if s := os.Getenv("MERIDIAN_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("MERIDIAN_SEED=%q: %v", s, err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d (replay with MERIDIAN_SEED=%d)", seed, seed)
		}
	})
	return rand.New(rand.NewPCG(seed, seed))
}
