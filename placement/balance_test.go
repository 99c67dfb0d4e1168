package placement

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
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

// balanceRow is one row of the table in doc.go: for V vnodes and N nodes in
// each of 3 DCs, the worst deviation and max/min ratio with the IDs
// "<dc>-<i>" of TestBalance, and the median and worst deviation over 20
// clusters with random IDs (a fixed seed, so the figures are reproducible).
type balanceRow struct {
	v, n                            int
	dev, ratio, medianDev, worstDev float64
}

func (r balanceRow) String() string {
	return fmt.Sprintf("V=%d N=%d: dev ±%.1f%% max/min %.2f, random median ±%.1f%% worst ±%.1f%%",
		r.v, r.n, 100*r.dev, r.ratio, 100*r.medianDev, 100*r.worstDev)
}

// measureBalance computes the row for v and n, drawing the random IDs from
// rng.
func measureBalance(t testing.TB, rng *rand.Rand, v, n int) balanceRow {
	const trials = 20
	r, err := NewRing(topology(balanceDCs, n, 3), v)
	if err != nil {
		t.Fatal(err)
	}
	row := balanceRow{v: v, n: n}
	row.dev, row.ratio = spread(r)
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
	row.medianDev, row.worstDev = devs[trials/2], devs[trials-1]
	return row
}

// docRow matches a row of the balance table in doc.go.
var docRow = regexp.MustCompile(`^//\t(\d+)\s+(\d+)\s+±\s*([\d.]+)%\s+([\d.]+)\s+±\s*([\d.]+)%\s+±\s*([\d.]+)%$`)

// TestBalanceTable recomputes every row of the balance table in doc.go and
// fails when a figure differs from the printed one, so the documentation
// cannot drift from the code; it then checks the claims doc.go draws from
// the table.
func TestBalanceTable(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	// The rows are measured in the table's order from one seeded source, so
	// every row's random IDs are fixed.
	vs, ns := []int{16, 64, 256, 512, 1024}, []int{3, 5, 10}
	rng := rand.New(rand.NewPCG(7, 7))
	rows := map[[2]int]balanceRow{}
	for _, v := range vs {
		for _, n := range ns {
			rows[[2]int{v, n}] = measureBalance(t, rng, v, n)
		}
	}
	documented := 0
	for _, line := range strings.Split(string(src), "\n") {
		m := docRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var f [6]float64
		for i := range f {
			if f[i], err = strconv.ParseFloat(m[i+1], 64); err != nil {
				t.Fatal(err)
			}
		}
		doc := balanceRow{v: int(f[0]), n: int(f[1]), dev: f[2] / 100, ratio: f[3], medianDev: f[4] / 100, worstDev: f[5] / 100}
		got, ok := rows[[2]int{doc.v, doc.n}]
		if !ok {
			t.Errorf("doc.go has a row for V=%d N=%d, which the test does not measure", doc.v, doc.n)
			continue
		}
		documented++
		// The table prints one decimal of a percentage and two of a ratio;
		// allow one unit in the last place for rounding.
		if math.Abs(got.dev-doc.dev) > 0.0011 || math.Abs(got.ratio-doc.ratio) > 0.011 ||
			math.Abs(got.medianDev-doc.medianDev) > 0.0011 || math.Abs(got.worstDev-doc.worstDev) > 0.0011 {
			t.Errorf("doc.go says %v\nmeasured     %v", doc, got)
		}
	}
	if documented != len(rows) {
		t.Fatalf("found %d rows of the balance table in doc.go, want %d", documented, len(rows))
	}
	for _, n := range ns {
		// About 1/sqrt(V): sixteen times the vnodes, about a quarter of the
		// median deviation (within a factor of two).
		lo, hi := rows[[2]int{64, n}], rows[[2]int{1024, n}]
		if q := hi.medianDev / lo.medianDev; q < 0.125 || q > 0.5 {
			t.Errorf("N=%d: median deviation at V=1024 is %.2f of V=64's, want about 1/4", n, q)
		}
		// At DefaultVNodes every measured cluster stays within ±20%.
		if d := rows[[2]int{DefaultVNodes, n}]; d.dev > 0.20 || d.worstDev > 0.20 {
			t.Errorf("V=%d N=%d: %v, want every deviation within ±20%%", DefaultVNodes, n, d)
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
