package placement

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

var balanceDCs = []string{"us-east", "eu-west", "ap-south"}

// spread returns, over the DCs of r, the largest relative deviation of a
// member's ownership from the fair share 1/N of its DC, and the largest
// max/min ownership ratio within one DC.
func spread(r *Ring) (maxDev, maxRatio float64) {
	own := r.Ownership()
	for _, dc := range r.DCs() {
		var fs []float64
		for _, m := range r.Members() {
			if m.DC == dc {
				fs = append(fs, own[m.ID])
			}
		}
		fair := 1 / float64(len(fs))
		for _, f := range fs {
			maxDev = max(maxDev, math.Abs(f-fair)/fair)
		}
		maxRatio = max(maxRatio, slices.Max(fs)/slices.Min(fs))
	}
	return maxDev, maxRatio
}

// TestBalance: with DefaultVNodes every node of 3 DCs × 3..10 nodes owns
// within ±20% of its fair share. Member IDs are fixed, so this is a
// measurement pinned as a test, not a random trial.
func TestBalance(t *testing.T) {
	for n := 3; n <= 10; n++ {
		r, err := NewRing(topology(balanceDCs, n, 3), DefaultVNodes)
		if err != nil {
			t.Fatal(err)
		}
		dev, ratio := spread(r)
		if dev > 0.20 {
			t.Errorf("3 DCs × %d nodes, V=%d: worst node %.1f%% off its fair share, want ≤ 20%% (max/min %.2f)",
				n, DefaultVNodes, 100*dev, ratio)
		}
	}
}

// TestBalanceTable logs the table quoted in doc.go (run with -v). The first
// column uses the IDs "<dc>-<i>" of TestBalance; the others build 20 clusters
// with random IDs each, so the figures do not hinge on one naming scheme.
// Deviation is the worst node's distance from 1/N over all three DCs.
func TestBalanceTable(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement only")
	}
	const trials = 20
	rng := rand.New(rand.NewPCG(7, 7))
	t.Logf("| V    | N  | named: worst dev, max/min | random: median worst dev | random: worst of %d |", trials)
	for _, v := range []int{16, 64, 256, 512, 1024} {
		for _, n := range []int{3, 5, 10} {
			r, err := NewRing(topology(balanceDCs, n, 3), v)
			if err != nil {
				t.Fatal(err)
			}
			dev, ratio := spread(r)
			var devs []float64
			for range trials {
				var ms []Member
				for _, dc := range balanceDCs {
					for range n {
						ms = append(ms, Member{ID: fmt.Sprintf("%016x", rng.Uint64()), DC: dc})
					}
				}
				rr, err := NewRing(ms, v)
				if err != nil {
					t.Fatal(err)
				}
				d, _ := spread(rr)
				devs = append(devs, d)
			}
			slices.Sort(devs)
			t.Logf("| %-4d | %-2d | ±%4.1f%%, %.2f              | ±%4.1f%%                   | ±%4.1f%%             |",
				v, n, 100*dev, ratio, 100*devs[trials/2], 100*devs[trials-1])
		}
	}
}

// primaries returns the primary in dc for each token.
func primaries(r *Ring, dc string, toks []Token) []string {
	out := make([]string, len(toks))
	for i, tok := range toks {
		out[i] = r.Plan(tok, Replication{dc: 1}).Replicas[dc][0].ID
	}
	return out
}

// TestMovement: a join or leave in one DC moves about 1/N of that DC's
// primaries, only to or from the node that changed, and nothing in other DCs
// (Dynamo §4.2).
func TestMovement(t *testing.T) {
	rng := seededRand(t)
	const samples = 20000
	toks := make([]Token, samples)
	for i := range toks {
		toks[i] = rng.Uint64()
	}
	nine := topology(balanceDCs, 9, 3)
	newcomer := Member{ID: "us-east-new", DC: "us-east", Rack: "rack0"}
	ten := append(slices.Clone(nine), newcomer)
	leaver := "us-east-4"
	eight := slices.DeleteFunc(slices.Clone(nine), func(m Member) bool { return m.ID == leaver })

	r9, err := NewRing(nine, DefaultVNodes)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		members []Member
		changed string  // the node that joined or left
		n       float64 // the N that movement is about 1/N of
	}{
		{"join 10th node", ten, newcomer.ID, 10},
		{"remove 1 of 9", eight, leaver, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRing(tc.members, DefaultVNodes)
			if err != nil {
				t.Fatal(err)
			}
			before, after := primaries(r9, "us-east", toks), primaries(r, "us-east", toks)
			moved := 0
			for i := range toks {
				if before[i] == after[i] {
					continue
				}
				moved++
				if before[i] != tc.changed && after[i] != tc.changed {
					t.Fatalf("token %#x moved %s -> %s, not involving %s",
						toks[i], before[i], after[i], tc.changed)
				}
			}
			frac := float64(moved) / samples
			t.Logf("%s: %.2f%% of primaries moved (1/N = %.2f%%)", tc.name, 100*frac, 100/tc.n)
			if frac < 0.5/tc.n || frac > 2/tc.n {
				t.Errorf("%.3f of primaries moved, want between 0.5/N and 2/N (N=%v)", frac, tc.n)
			}

			rep := Replication{"us-east": 3, "eu-west": 3, "ap-south": 2}
			for _, tok := range toks[:2000] {
				p9, p := r9.Plan(tok, rep), r.Plan(tok, rep)
				for _, dc := range []string{"eu-west", "ap-south"} {
					if !reflect.DeepEqual(p9.Replicas[dc], p.Replicas[dc]) || !reflect.DeepEqual(p9.Fallbacks[dc], p.Fallbacks[dc]) {
						t.Fatalf("token %#x: placement in %s changed after a change in us-east", tok, dc)
					}
				}
			}
		})
	}
}

// Without racks a join only swaps the newcomer into a replica set: the new set
// is within the old set plus the newcomer (consistent hashing's minimal
// movement, extended to the whole preference list).
func TestJoinReplicaSetsMinimalWithoutRacks(t *testing.T) {
	rng := seededRand(t)
	base := topology([]string{"a"}, 7, 1)
	r0, err := NewRing(base, 64)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := NewRing(append(base, Member{ID: "a-new", DC: "a", Rack: "rack0"}), 64)
	if err != nil {
		t.Fatal(err)
	}
	for range 2000 {
		tok := rng.Uint64()
		old := map[string]bool{"a-new": true}
		for _, m := range r0.Plan(tok, Replication{"a": 3}).Replicas["a"] {
			old[m.ID] = true
		}
		for _, m := range r1.Plan(tok, Replication{"a": 3}).Replicas["a"] {
			if !old[m.ID] {
				t.Fatalf("token %#x: %s became a replica although only a-new joined", tok, m.ID)
			}
		}
	}
}
