package placement

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestNewRingErrors(t *testing.T) {
	tests := []struct {
		name    string
		members []Member
		want    []error
		msg     string // whole message, when set
	}{
		{
			name:    "empty id",
			members: []Member{{ID: "a", DC: "x"}, {DC: "x"}},
			want:    []error{ErrEmptyID},
			msg:     "placement: member with empty id",
		},
		{
			name:    "empty id twice reported once",
			members: []Member{{DC: "x"}, {DC: "y"}},
			want:    []error{ErrEmptyID},
			msg:     "placement: member with empty id",
		},
		{
			name:    "empty dc",
			members: []Member{{ID: "a", DC: "x"}, {ID: "b"}},
			want:    []error{ErrEmptyDC},
			msg:     `placement: member with empty datacenter: set the datacenter of member "b"`,
		},
		{
			name:    "duplicate id",
			members: []Member{{ID: "a", DC: "x"}, {ID: "b", DC: "x"}, {ID: "a", DC: "y"}, {ID: "a", DC: "z"}},
			want:    []error{ErrDuplicateID},
			msg:     `placement: duplicate member id "a": give every node a unique id`,
		},
		{
			name:    "every problem at once",
			members: []Member{{ID: "a"}, {DC: "x"}, {ID: "b", DC: "x"}, {ID: "b", DC: "x"}},
			want:    []error{ErrEmptyID, ErrEmptyDC, ErrDuplicateID},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRing(tt.members, 4)
			if err == nil {
				t.Fatalf("NewRing = %v, nil; want error", r)
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("error %q is not %q", err, w)
				}
			}
			if tt.msg != "" && err.Error() != tt.msg {
				t.Errorf("error = %q, want %q", err, tt.msg)
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tt.want) {
				t.Errorf("error %q has %d lines, want one per problem (%d)", err, n, len(tt.want))
			}
		})
	}
}

func TestNewRingAccessors(t *testing.T) {
	in := []Member{
		{ID: "c", DC: "us-east", Rack: "r1"},
		{ID: "a", DC: "eu-west", Rack: "r1"},
		{ID: "b", DC: "us-east", Rack: "r2"},
	}
	r, err := NewRing(in, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.VNodes() != DefaultVNodes {
		t.Errorf("VNodes() = %d, want DefaultVNodes (%d)", r.VNodes(), DefaultVNodes)
	}
	wantMembers := []Member{in[1], in[2], in[0]}
	if got := r.Members(); !reflect.DeepEqual(got, wantMembers) {
		t.Errorf("Members() = %v, want %v", got, wantMembers)
	}
	r.Members()[0].ID = "mutated"
	if got := r.Members()[0].ID; got != "a" {
		t.Errorf("Members() shares storage with the ring: first ID now %q", got)
	}
	if got, want := r.DCs(), []string{"eu-west", "us-east"}; !reflect.DeepEqual(got, want) {
		t.Errorf("DCs() = %v, want %v", got, want)
	}
	if m, ok := r.Member("b"); !ok || m != in[2] {
		t.Errorf("Member(b) = %v, %v; want %v, true", m, ok, in[2])
	}
	if m, ok := r.Member("zz"); ok {
		t.Errorf("Member(zz) = %v, true; want not found", m)
	}
	in[0].ID = "changed"
	if _, ok := r.Member("c"); !ok {
		t.Error("ring aliases the caller's member slice")
	}
}

func TestEmptyRing(t *testing.T) {
	r, err := NewRing(nil, 8)
	if err != nil {
		t.Fatal(err)
	}
	p := r.Plan(42, Replication{"a": 2})
	if len(p.Replicas) != 0 || len(p.Fallbacks) != 0 || !reflect.DeepEqual(p.Short, map[string]int{"a": 2}) {
		t.Errorf("Plan on empty ring = %+v, want only Short{a:2}", p)
	}
	if len(r.DCs()) != 0 || len(r.Members()) != 0 || len(r.Ownership()) != 0 {
		t.Error("empty ring reports members, DCs or ownership")
	}
}

// Tokens come from the ID alone: a member's ring position does not depend on
// who else is in the cluster. Checked through the primary of its own tokens.
func TestTokensDependOnIDOnly(t *testing.T) {
	solo, err := NewRing([]Member{{ID: "n1", DC: "a"}}, 16)
	if err != nil {
		t.Fatal(err)
	}
	crowd, err := NewRing(append(topology([]string{"a", "b"}, 6, 2), Member{ID: "n1", DC: "a"}), 16)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range solo.byDC["a"].tokens {
		p := crowd.Plan(tok, Replication{"a": 1})
		if got := p.Replicas["a"][0].ID; got != "n1" {
			t.Errorf("token %#x of n1 has primary %s in a larger ring", tok, got)
		}
	}
}

func TestOwnershipSumsToOnePerDC(t *testing.T) {
	r, err := NewRing(append(topology([]string{"a", "b"}, 5, 3), Member{ID: "lonely", DC: "c"}), 32)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]float64{}
	for id, f := range r.Ownership() {
		m, _ := r.Member(id)
		sums[m.DC] += f
	}
	for _, dc := range r.DCs() {
		if math.Abs(sums[dc]-1) > 1e-9 {
			t.Errorf("ownership in %s sums to %v, want 1", dc, sums[dc])
		}
	}
}

// Ownership agrees with sampling: the share of random tokens a member is
// primary for converges to its ownership.
func TestOwnershipMatchesSampling(t *testing.T) {
	const samples = 50000
	rng := seededRand(t)
	r, err := NewRing(topology([]string{"a"}, 5, 1), 8)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for range samples {
		counts[r.Plan(rng.Uint64(), Replication{"a": 1}).Replicas["a"][0].ID]++
	}
	for id, f := range r.Ownership() {
		got := float64(counts[id]) / samples
		if math.Abs(got-f) > 0.015 { // > 6 standard deviations
			t.Errorf("%s primary for %.4f of samples, Ownership says %.4f", id, got, f)
		}
	}
}

func TestDCsSorted(t *testing.T) {
	r, err := NewRing(topology([]string{"z", "m", "a"}, 1, 1), 1)
	if err != nil {
		t.Fatal(err)
	}
	if dcs := r.DCs(); !slices.IsSorted(dcs) || len(dcs) != 3 {
		t.Errorf("DCs() = %v, want 3 sorted", dcs)
	}
}
