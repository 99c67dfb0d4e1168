package consistency

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

var rep = map[string]int{"east": 3, "west": 3, "central": 2}

func TestResolve(t *testing.T) {
	cases := []struct {
		spec  string
		local string
		want  Need
		err   string
	}{
		{"ONE", "east", Need{PerDC: map[string]int{}, Total: 1}, ""},
		{"one", "east", Need{PerDC: map[string]int{}, Total: 1}, ""},
		{"LOCAL_ONE", "west", Need{PerDC: map[string]int{"west": 1}}, ""},
		{"LOCAL_QUORUM", "east", Need{PerDC: map[string]int{"east": 2}}, ""},
		{"LOCAL_QUORUM", "central", Need{PerDC: map[string]int{"central": 2}}, ""},
		{"EACH_QUORUM", "east", Need{PerDC: map[string]int{"east": 2, "west": 2, "central": 2}}, ""},
		{"QUORUM", "east", Need{PerDC: map[string]int{}, Total: 5}, ""},
		{"ALL", "east", Need{PerDC: map[string]int{"east": 3, "west": 3, "central": 2}}, ""},
		{"east=2,west=1", "east", Need{PerDC: map[string]int{"east": 2, "west": 1}}, ""},
		{" east = 2 , central=0 ", "west", Need{PerDC: map[string]int{"east": 2}}, ""},
		{"mars=1", "east", Need{}, `"mars" holds no replicas`},
		{"east=4", "east", Need{}, "more acks than the 3 replicas"},
		{"east=0", "east", Need{}, "no acknowledgement"},
		{"LOCAL_QUORUM", "mars", Need{}, "keeps none"},
		{"MOST", "east", Need{}, `unknown level "MOST"`},
		{"east=two", "east", Need{}, "non-negative replica count"},
		{"east=-1", "east", Need{}, "non-negative replica count"},
		{"east=1,east=2", "east", Need{}, "named twice"},
		{"=1", "east", Need{}, "not of the form"},
	}
	for _, tt := range cases {
		t.Run(tt.spec+"@"+tt.local, func(t *testing.T) {
			spec, err := Parse(tt.spec)
			var need Need
			if err == nil {
				need, err = spec.Resolve(rep, tt.local)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("want error containing %q, got %v", tt.err, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if need.Total != tt.want.Total || len(need.PerDC) != len(tt.want.PerDC) {
				t.Fatalf("got %+v, want %+v", need, tt.want)
			}
			for dc, n := range tt.want.PerDC {
				if need.PerDC[dc] != n {
					t.Fatalf("got %+v, want %+v", need, tt.want)
				}
			}
		})
	}
}

func TestSpecStringRoundTrip(t *testing.T) {
	for _, s := range []string{"ONE", "EACH_QUORUM", "central=1,east=2,west=1"} {
		spec, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		if spec.String() != s {
			t.Errorf("%q round-trips to %q", s, spec.String())
		}
	}
}

func TestTallyShortfall(t *testing.T) {
	need := Need{PerDC: map[string]int{"east": 2, "west": 2}}
	tl := NewTally(need, map[string]int{"east": 3, "west": 3})
	tl.Ack("east")
	tl.Ack("east")
	tl.Ack("west")
	if tl.Met() || !tl.Possible() {
		t.Fatal("2 east + 1 west should be pending, not met")
	}
	tl.Fail("west")
	tl.Fail("west")
	if tl.Possible() {
		t.Fatal("west has no pending replica left: need is impossible")
	}
	var qe *QuorumError
	if err := tl.Err("put", "x"); !errors.As(err, &qe) {
		t.Fatalf("want QuorumError, got %v", err)
	}
	if qe.Short()["west"] != 1 || len(qe.Short()) != 1 {
		t.Errorf("short = %v", qe.Short())
	}
	if !strings.Contains(qe.Error(), "west acked 1 of 2 required") {
		t.Errorf("message: %s", qe.Error())
	}
}

// TestTallyAgainstNaive checks Met and Possible against a direct count, for
// random needs and random ack/fail sequences.
func TestTallyAgainstNaive(t *testing.T) {
	seed := rand.Uint64()
	r := rand.New(rand.NewPCG(seed, 0))
	dcs := []string{"a", "b", "c"}
	for range 2000 {
		asked := map[string]int{}
		need := Need{PerDC: map[string]int{}}
		for _, dc := range dcs {
			asked[dc] = r.IntN(4)
			if r.IntN(2) == 0 {
				need.PerDC[dc] = r.IntN(asked[dc] + 2)
			}
		}
		need.Total = r.IntN(6)
		tl := NewTally(need, asked)
		acked, left := map[string]int{}, map[string]int{}
		for dc, n := range asked {
			left[dc] = n
		}
		check := func() {
			met, possible := true, true
			sum, best := 0, 0
			for _, dc := range dcs {
				sum += acked[dc]
				best += acked[dc] + left[dc]
				if acked[dc] < need.PerDC[dc] {
					met = false
				}
				if acked[dc]+left[dc] < need.PerDC[dc] {
					possible = false
				}
			}
			if sum < need.Total {
				met = false
			}
			if best < need.Total {
				possible = false
			}
			if tl.Met() != met || tl.Possible() != possible {
				t.Fatalf("seed %d: need %+v acked %v left %v: Met=%v Possible=%v, want %v %v", seed, need, acked, left, tl.Met(), tl.Possible(), met, possible)
			}
		}
		check()
		for _, dc := range dcs {
			for left[dc] > 0 {
				left[dc]--
				if r.IntN(3) == 0 {
					tl.Fail(dc)
				} else {
					acked[dc]++
					tl.Ack(dc)
				}
				check()
			}
		}
	}
}
