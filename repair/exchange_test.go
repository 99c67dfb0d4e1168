package repair

import (
	"bytes"
	"context"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/meridian-kv/meridian/version"
)

func w(v string) version.Write { return version.Write{Value: []byte(v)} }

var tombstone = version.Write{Deleted: true}

func values(o *version.Object) []string {
	var out []string
	for _, v := range o.Values() {
		out = append(out, string(v))
	}
	return out
}

// TestReconcileTable pins what each side sends for the basic cases.
func TestReconcileTable(t *testing.T) {
	v1 := version.New().Update(nil, "a", w("v1"))
	v2 := v1.Update(v1.Context(), "a", w("v2"))    // supersedes v1
	sib := v1.Update(nil, "b", w("sib"))           // concurrent with v2
	del := v1.Update(v1.Context(), "a", tombstone) // a delete that saw v1
	late := v1.Update(nil, "b", w("late"))         // written without seeing the delete
	delOfV2 := v2.Update(v2.Context(), "b", tombstone)

	for _, tc := range []struct {
		name          string
		local, remote *version.Object
		toRemote      bool // local's object is sent
		toLocal       bool // remote's object is sent
		want          []string
		wantDeleted   bool // the merge holds a tombstone sibling
	}{
		{"only local has it", v1, nil, true, false, []string{"v1"}, false},
		{"only remote has it", nil, v1, false, true, []string{"v1"}, false},
		{"equal", v2, v2, false, false, []string{"v2"}, false},
		{"local newer", v2, v1, true, false, []string{"v2"}, false},
		{"remote newer", v1, v2, false, true, []string{"v2"}, false},
		{"concurrent siblings", v2, sib, true, true, []string{"v2", "sib"}, false},
		{"tombstone beats the value it saw", del, v1, true, false, nil, true},
		{"stale value never resurrects", v1, del, false, true, nil, true},
		{"write concurrent with a delete survives", del, late, true, true, []string{"late"}, true},
		{"delete of the newer value", v1, delOfV2, false, true, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			local, remote := map[string]*version.Object{}, map[string]*version.Object{}
			if tc.local != nil {
				local["k"] = tc.local
			}
			if tc.remote != nil {
				remote["k"] = tc.remote
			}
			toRemote, toLocal := Reconcile(local, remote)
			if _, ok := toRemote["k"]; ok != tc.toRemote {
				t.Errorf("local object sent = %v, want %v", ok, tc.toRemote)
			}
			if _, ok := toLocal["k"]; ok != tc.toLocal {
				t.Errorf("remote object sent = %v, want %v", ok, tc.toLocal)
			}
			newLocal := version.Merge(tc.local, toLocal["k"])
			newRemote := version.Merge(tc.remote, toRemote["k"])
			if !version.Equal(newLocal, newRemote) {
				t.Fatalf("replicas did not converge: %+v vs %+v", newLocal, newRemote)
			}
			got := values(newLocal)
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("values after repair %v, want %v", got, want)
			}
			if d := len(newLocal.Siblings) > len(newLocal.Live()); d != tc.wantDeleted {
				t.Errorf("tombstone kept = %v, want %v", d, tc.wantDeleted)
			}
		})
	}
}

// TestReconcileAgainstMerge: for random divergent replicas, what Reconcile
// sends makes both sides equal to version.Merge of the two (so no sibling
// is lost and nothing a tombstone superseded comes back, as Merge
// guarantees), and it sends an object only to a side that lacks something
// of it.
func TestReconcileAgainstMerge(t *testing.T) {
	var sentBoth, sentOne, deletes int
	forSeeds(t, 40, func(t *testing.T, rng *rand.Rand) {
		base := newMemSource()
		populate(rng, base, 20+rng.IntN(50))
		a, b := base.clone(), base.clone()
		// Both replicas take writes; some of a's are exchanged with b
		// part way, as hints and read repair would, so histories overlap.
		for range 40 {
			switch rng.IntN(3) {
			case 0:
				mutate(rng, a, "a")
			case 1:
				mutate(rng, b, "b")
			default:
				keys := sortedKeys(a.objs)
				if len(keys) > 0 {
					k := keys[rng.IntN(len(keys))]
					b.set(k, version.Merge(b.objs[k], a.objs[k]))
				}
			}
		}
		// Deletes that saw a value on one side only: the classic
		// resurrection setup.
		for _, k := range sortedKeys(a.objs)[:min(5, len(a.objs))] {
			o := a.objs[k]
			a.set(k, o.Update(o.Context(), "a", tombstone))
			deletes++
		}
		toB, toA := Reconcile(a.objs, b.objs)
		for k := range toB {
			if version.Descends(b.objs[k], a.objs[k]) {
				t.Fatalf("key %q: sent a's object to b, which already descends from it", k)
			}
			if _, ok := toA[k]; ok {
				sentBoth++
			} else {
				sentOne++
			}
		}
		for k := range toA {
			if version.Descends(a.objs[k], b.objs[k]) {
				t.Fatalf("key %q: sent b's object to a, which already descends from it", k)
			}
		}
		keys := map[string]bool{}
		for k := range a.objs {
			keys[k] = true
		}
		for k := range b.objs {
			keys[k] = true
		}
		for k := range keys {
			_, sentToB := toB[k]
			_, sentToA := toA[k]
			if !sentToB && !version.Descends(b.objs[k], a.objs[k]) {
				t.Fatalf("key %q: b lacks some of a's object and was not sent it", k)
			}
			if !sentToA && !version.Descends(a.objs[k], b.objs[k]) {
				t.Fatalf("key %q: a lacks some of b's object and was not sent it", k)
			}
			want := version.Merge(a.objs[k], b.objs[k])
			newA := version.Merge(a.objs[k], toA[k])
			newB := version.Merge(b.objs[k], toB[k])
			if !version.Equal(newA, want) || !version.Equal(newB, want) {
				t.Fatalf("key %q: after repair a=%+v b=%+v, want Merge %+v", k, newA, newB, want)
			}
			// No resurrection: a sibling one side had superseded (its dot
			// covered by that side's clock, the sibling gone) is not in
			// the result.
			for _, side := range []*version.Object{a.objs[k], b.objs[k]} {
				if side == nil {
					continue
				}
				for _, s := range want.Siblings {
					if side.Clock.Covers(s.Dot) && !slices.ContainsFunc(side.Siblings, func(x version.Sibling) bool { return x.Dot == s.Dot }) {
						t.Fatalf("key %q: sibling %v superseded on one side came back", k, s.Dot)
					}
				}
			}
		}
	})
	t.Logf("keys sent both ways %d, one way %d; %d deletes", sentBoth, sentOne, deletes)
	if len(testSeeds(t, 40)) >= 20 && (sentBoth == 0 || sentOne == 0) {
		t.Error("the generator made no concurrent or no one-sided differences")
	}
}

// TestSessionConverges runs a whole repair session between two replicas,
// as the node will over QUIC: tree comparison, digests of the keys under
// differing leaves, the responder's objects and wants, Reconcile on the
// initiator, merges on both sides. Afterwards the trees agree and an
// independent comparison of every key agrees too.
func TestSessionConverges(t *testing.T) {
	forSeeds(t, 15, func(t *testing.T, rng *rand.Rand) {
		a, b := divergedPair(rng, 2000, 1+rng.IntN(40))
		for range rng.IntN(20) {
			mutate(rng, a, "a")
		}
		r, depth := randRange(rng), DepthFor(2000)
		if r.To != 0 && r.To-r.From < 1<<20 {
			r = FullRing
		}
		sent := session(t, a, b, r, depth)
		ta, _ := BuildTree(a, "ks", r, depth)
		tb, _ := BuildTree(b, "ks", r, depth)
		if ta.Root() != tb.Root() {
			t.Fatal("roots differ after repair")
		}
		for k, o := range a.objs {
			if r.Contains(tokenOf(k)) && !version.Equal(o, b.objs[k]) {
				t.Fatalf("key %q differs after repair", k)
			}
		}
		for k := range b.objs {
			if _, ok := a.objs[k]; r.Contains(tokenOf(k)) && !ok {
				t.Fatalf("key %q only on b after repair", k)
			}
		}
		if session(t, a, b, r, depth) != 0 {
			t.Fatal("a second session still sent objects")
		}
		t.Logf("%d objects sent", sent)
	})
}

// session repairs r between initiator a and responder b and returns the
// number of objects that crossed.
func session(t *testing.T, a, b *memSource, r Range, depth int) int {
	t.Helper()
	ta, err := BuildTree(a, "ks", r, depth)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := BuildTree(b, "ks", r, depth)
	if err != nil {
		t.Fatal(err)
	}
	leaves, _, err := DiffWithPeer(context.Background(), ta, tb)
	if err != nil {
		t.Fatal(err)
	}
	// Initiator: digests of its keys under the leaves.
	mine, err := KeysInLeaves(a, "ks", r, depth, leaves)
	if err != nil {
		t.Fatal(err)
	}
	digests := Digests(mine)
	if !slices.IsSortedFunc(digests, func(x, y KeyDigest) int { return bytes.Compare(x.Key, y.Key) }) {
		t.Fatal("digests not sorted")
	}
	// Responder: its keys under the same leaves against the digests.
	theirs, err := KeysInLeaves(b, "ks", r, depth, leaves)
	if err != nil {
		t.Fatal(err)
	}
	send, want := CompareDigests(theirs, digests)
	// Initiator: reconcile what differs.
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
	for k, o := range toA {
		a.set(k, version.Merge(a.objs[k], o))
	}
	for k, o := range toB {
		b.set(k, version.Merge(b.objs[k], o))
	}
	return len(send) + len(toB)
}

func TestCompareDigests(t *testing.T) {
	v := version.New().Update(nil, "a", w("v"))
	v2 := v.Update(v.Context(), "a", w("v2"))
	local := map[string]*version.Object{"same": v, "changed": v2, "onlyLocal": v}
	remote := Digests(map[string]*version.Object{"same": v, "changed": v, "onlyRemote": v, "empty": version.New()})
	send, want := CompareDigests(local, remote)
	if got := slices.Sorted(maps.Keys(send)); !slices.Equal(got, []string{"changed", "onlyLocal"}) {
		t.Errorf("send %v, want [changed onlyLocal]", got)
	}
	if len(want) != 1 || string(want[0]) != "onlyRemote" {
		t.Errorf("want %q, want [onlyRemote]", want)
	}
}
