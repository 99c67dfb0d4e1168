package placement

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// handRing builds a one-DC ring by hand: walk lists member IDs in token order
// at tokens 100, 200, 300, ...; racks maps ID -> rack. IDs must be listed in
// sorted order in ids.
func handRing(ids []string, racks map[string]string, walk []string) *dcRing {
	d := &dcRing{}
	rackNum := map[string]int32{}
	for _, id := range ids {
		d.members = append(d.members, Member{ID: id, DC: "dc", Rack: racks[id]})
		n, ok := rackNum[racks[id]]
		if !ok {
			n = int32(len(rackNum))
			rackNum[racks[id]] = n
		}
		d.rackOf = append(d.rackOf, n)
	}
	d.racks = len(rackNum)
	for i, id := range walk {
		d.tokens = append(d.tokens, Token(100*(i+1)))
		for j, m := range d.members {
			if m.ID == id {
				d.owners = append(d.owners, int32(j))
			}
		}
	}
	return d
}

func ids(ms []Member) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = m.ID
	}
	return strings.Join(s, ",")
}

func TestDCPlanRackSpreading(t *testing.T) {
	abcd := []string{"a", "b", "c", "d"}
	threeRacks := map[string]string{"a": "r1", "b": "r1", "c": "r2", "d": "r3"}
	twoRacks := map[string]string{"a": "r1", "b": "r1", "c": "r1", "d": "r2"}
	oneRack := map[string]string{}
	tests := []struct {
		name      string
		racks     map[string]string
		walk      []string
		t         Token
		want      int
		replicas  string
		fallbacks string
	}{
		{"new racks before repeats", threeRacks, abcd, 0, 3, "a,c,d", "b"},
		{"stop at count", threeRacks, abcd, 0, 2, "a,c", "b,d"},
		{"parked node taken once every rack is used", twoRacks, abcd, 0, 3, "a,b,d", "c"},
		{"one rack is plain walk order", oneRack, abcd, 0, 2, "a,b", "c,d"},
		{"count equals nodes", threeRacks, abcd, 0, 4, "a,b,c,d", ""},
		{"token on a vnode belongs to that vnode", oneRack, abcd, 200, 1, "b", "c,d,a"},
		{"token just past a vnode goes to the next", oneRack, abcd, 201, 1, "c", "d,a,b"},
		{"wraps past the top", oneRack, abcd, 401, 2, "a,b", "c,d"},
		{"wraps at max token", oneRack, abcd, math.MaxUint64, 1, "a", "b,c,d"},
		{"repeated vnodes count once", oneRack, []string{"a", "a", "b", "a", "c", "b", "d"}, 0, 3, "a,b,c", "d"},
		{"walk order kept when a rack repeat precedes new racks", twoRacks, []string{"b", "c", "a", "d"}, 0, 3, "b,c,d", "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := handRing(abcd, tt.racks, tt.walk)
			reps, fbs := d.plan(tt.t, tt.want)
			if ids(reps) != tt.replicas || ids(fbs) != tt.fallbacks {
				t.Errorf("plan(%d, %d) = replicas [%s] fallbacks [%s], want [%s] [%s]",
					tt.t, tt.want, ids(reps), ids(fbs), tt.replicas, tt.fallbacks)
			}
		})
	}
}

func TestPlanShort(t *testing.T) {
	r, err := NewRing(topology([]string{"a", "b"}, 2, 1), 8)
	if err != nil {
		t.Fatal(err)
	}
	p := r.Plan(7, Replication{"a": 3, "b": 2, "c": 1, "d": 0, "e": -1})
	if want := map[string]int{"a": 1, "c": 1}; !reflect.DeepEqual(p.Short, want) {
		t.Errorf("Short = %v, want %v", p.Short, want)
	}
	if len(p.Replicas["a"]) != 2 || len(p.Replicas["b"]) != 2 || len(p.Replicas) != 2 {
		t.Errorf("Replicas = %v, want both nodes of a and b only", p.Replicas)
	}
	if len(p.Fallbacks) != 0 {
		t.Errorf("Fallbacks = %v, want none", p.Fallbacks)
	}
	if p := r.Plan(7, Replication{"a": 1}); p.Short != nil {
		t.Errorf("Short = %v, want nil when nothing is short", p.Short)
	}
}

func TestPlanAllAndContains(t *testing.T) {
	r, err := NewRing(topology([]string{"us", "eu", "ap"}, 4, 2), 16)
	if err != nil {
		t.Fatal(err)
	}
	p := r.Plan(KeyToken([]byte("user:42")), Replication{"us": 2, "eu": 1})
	all := p.All()
	if len(all) != 3 {
		t.Fatalf("All() = %v, want 3 replicas", all)
	}
	if all[0].DC != "eu" || all[1].DC != "us" || all[2].DC != "us" {
		t.Errorf("All() = %v, want eu first then us (DCs sorted)", all)
	}
	if ids(all[1:]) != ids(p.Replicas["us"]) {
		t.Errorf("All() lost walk order inside us: %v vs %v", all[1:], p.Replicas["us"])
	}
	for _, m := range all {
		if !p.Contains(m.ID) {
			t.Errorf("Contains(%s) = false for a replica", m.ID)
		}
	}
	for _, m := range p.Fallbacks["us"] {
		if p.Contains(m.ID) {
			t.Errorf("Contains(%s) = true for a fallback", m.ID)
		}
	}
	if p.Contains("ap-0") {
		t.Error("Contains(ap-0) = true, but ap has no replicas")
	}
	// Appending to a replica list must not clobber the fallbacks.
	fb := ids(p.Fallbacks["us"])
	_ = append(p.Replicas["us"], Member{ID: "x"})
	if ids(p.Fallbacks["us"]) != fb {
		t.Error("appending to Replicas overwrote Fallbacks")
	}
}

// TestPlanMatchesReference compares Plan with the naive reference on random
// topologies and tokens, and checks the invariants directly.
func TestPlanMatchesReference(t *testing.T) {
	rng := seededRand(t)
	for iter := range 200 {
		members, rep := randomTopology(rng)
		vnodes := []int{1, 3, 16, 64}[rng.IntN(4)]
		r, err := NewRing(members, vnodes)
		if err != nil {
			t.Fatalf("iter %d: %v", iter, err)
		}
		ref := newRefRing(members, vnodes)
		for k := range 25 {
			tok := rng.Uint64()
			switch k {
			case 0:
				tok = 0
			case 1:
				tok = math.MaxUint64
			case 2, 3:
				if len(ref.vnodes) > 0 { // exactly on, and just past, a vnode
					tok = ref.vnodes[rng.IntN(len(ref.vnodes))].token + Token(k-2)
				}
			}
			got, want := r.Plan(tok, rep), ref.plan(tok, rep)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("iter %d: Plan(%#x, %v) with %d vnodes over %v\n got %+v\nwant %+v",
					iter, tok, rep, vnodes, members, got, want)
			}
			if err := checkInvariants(r, got, rep); err != nil {
				t.Fatalf("iter %d: Plan(%#x, %v): %v", iter, tok, rep, err)
			}
		}
	}
}

// checkInvariants checks a plan against the definition without walking the
// ring: distinct nodes, per-DC counts, Short, rack spreading, and Fallbacks
// being the rest of the DC.
func checkInvariants(r *Ring, p Plan, rep Replication) error {
	byDC := map[string][]Member{}
	for _, m := range r.Members() {
		byDC[m.DC] = append(byDC[m.DC], m)
	}
	seen := map[string]bool{}
	for dc, want := range rep {
		want = max(want, 0)
		nodes := byDC[dc]
		reps, fbs := p.Replicas[dc], p.Fallbacks[dc]
		if got := len(reps); got != min(want, len(nodes)) {
			return fmt.Errorf("%s: %d replicas, want min(%d, %d nodes)", dc, got, want, len(nodes))
		}
		if got := p.Short[dc]; got != max(want-len(nodes), 0) {
			return fmt.Errorf("%s: short %d, want %d", dc, got, max(want-len(nodes), 0))
		}
		if want > 0 && len(reps)+len(fbs) != len(nodes) {
			return fmt.Errorf("%s: %d replicas + %d fallbacks, want all %d nodes", dc, len(reps), len(fbs), len(nodes))
		}
		if want == 0 && len(fbs) != 0 {
			return fmt.Errorf("%s: fallbacks %v for a DC with no replicas", dc, fbs)
		}
		allRacks, usedRacks := map[string]bool{}, map[string]bool{}
		for _, m := range nodes {
			allRacks[m.Rack] = true
		}
		for _, m := range append(reps[:len(reps):len(reps)], fbs...) {
			if m.DC != dc {
				return fmt.Errorf("%s: lists %s of %s", dc, m.ID, m.DC)
			}
			if seen[m.ID] {
				return fmt.Errorf("%s: %s listed twice", dc, m.ID)
			}
			seen[m.ID] = true
		}
		for _, m := range reps {
			usedRacks[m.Rack] = true
		}
		if len(usedRacks) != min(len(reps), len(allRacks)) {
			return fmt.Errorf("%s: replicas %v use %d racks, want min(%d, %d racks)",
				dc, ids(reps), len(usedRacks), len(reps), len(allRacks))
		}
	}
	for dc := range p.Replicas {
		if rep[dc] <= 0 {
			return fmt.Errorf("replicas in %s, which the map does not ask for", dc)
		}
	}
	return nil
}

// Shuffling the member list changes nothing.
func TestPlanDeterministic(t *testing.T) {
	rng := seededRand(t)
	for iter := range 20 {
		members, rep := randomTopology(rng)
		a, err := NewRing(members, 32)
		if err != nil {
			t.Fatal(err)
		}
		rng.Shuffle(len(members), func(i, j int) { members[i], members[j] = members[j], members[i] })
		b, err := NewRing(members, 32)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a.Ownership(), b.Ownership()) {
			t.Fatalf("iter %d: ownership differs after shuffle", iter)
		}
		for range 200 {
			tok := rng.Uint64()
			if pa, pb := a.Plan(tok, rep), b.Plan(tok, rep); !reflect.DeepEqual(pa, pb) {
				t.Fatalf("iter %d: Plan(%#x) differs after shuffle:\n%+v\n%+v", iter, tok, pa, pb)
			}
		}
	}
}

func BenchmarkPlan(b *testing.B) {
	r, err := NewRing(topology([]string{"us-east", "eu-west", "ap-south"}, 10, 3), DefaultVNodes)
	if err != nil {
		b.Fatal(err)
	}
	rep := Replication{"us-east": 3, "eu-west": 3, "ap-south": 3}
	rng := rand.New(rand.NewPCG(1, 2))
	toks := make([]Token, 1024)
	for i := range toks {
		toks[i] = rng.Uint64()
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Plan(toks[i%len(toks)], rep)
		i++
	}
}
