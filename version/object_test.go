package version

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func put(o *Object, ctx Vector, actor, value string) *Object {
	return o.Update(ctx, actor, Write{Value: []byte(value)})
}

func del(o *Object, ctx Vector, actor string) *Object {
	return o.Update(ctx, actor, Write{Deleted: true})
}

func values(o *Object) []string {
	out := []string{}
	for _, v := range o.Values() {
		out = append(out, string(v))
	}
	slices.Sort(out)
	return out
}

func tombstones(o *Object) int {
	n := 0
	for _, s := range o.Siblings {
		if s.Deleted {
			n++
		}
	}
	return n
}

func TestUpdate(t *testing.T) {
	tests := []struct {
		name       string
		obj        func() *Object
		values     []string
		tombstones int
		clock      Vector
	}{
		{
			name:   "first write",
			obj:    func() *Object { return put(New(), nil, "a", "x") },
			values: []string{"x"},
			clock:  Vector{"a": 1},
		},
		{
			name:   "nil object is the empty object",
			obj:    func() *Object { return put(nil, nil, "a", "x") },
			values: []string{"x"},
			clock:  Vector{"a": 1},
		},
		{
			name:   "blind write creates a sibling",
			obj:    func() *Object { return put(put(New(), nil, "a", "x"), nil, "a", "y") },
			values: []string{"x", "y"},
			clock:  Vector{"a": 2},
		},
		{
			name: "write with the read's context supersedes",
			obj: func() *Object {
				o := put(New(), nil, "a", "x")
				return put(o, o.Context(), "a", "y")
			},
			values: []string{"y"},
			clock:  Vector{"a": 2},
		},
		{
			name: "write with context supersedes every sibling it saw",
			obj: func() *Object {
				o := put(put(New(), nil, "a", "x"), nil, "a", "y")
				return put(o, o.Context(), "a", "z")
			},
			values: []string{"z"},
			clock:  Vector{"a": 3},
		},
		{
			name: "stale context supersedes only what it saw",
			obj: func() *Object {
				o := put(New(), nil, "a", "x")
				stale := o.Context()
				o = put(o, nil, "a", "y")
				return put(o, stale, "a", "z")
			},
			values: []string{"y", "z"},
			clock:  Vector{"a": 3},
		},
		{
			name: "context read elsewhere joins the clock",
			obj: func() *Object {
				b := put(New(), nil, "b", "x")
				return put(New(), b.Context(), "a", "y")
			},
			values: []string{"y"},
			clock:  Vector{"a": 1, "b": 1},
		},
		{
			name: "delete with context hides every value but keeps the clock",
			obj: func() *Object {
				o := put(put(New(), nil, "a", "x"), nil, "a", "y")
				return del(o, o.Context(), "a")
			},
			values:     []string{},
			tombstones: 1,
			clock:      Vector{"a": 3},
		},
		{
			name:       "blind delete leaves the values it did not see",
			obj:        func() *Object { return del(put(New(), nil, "a", "x"), nil, "a") },
			values:     []string{"x"},
			tombstones: 1,
			clock:      Vector{"a": 2},
		},
		{
			name: "write with the context of a delete replaces the tombstone",
			obj: func() *Object {
				o := put(New(), nil, "a", "x")
				o = del(o, o.Context(), "a")
				return put(o, o.Context(), "a", "y")
			},
			values: []string{"y"},
			clock:  Vector{"a": 3},
		},
		{
			name: "delete of a delete leaves one tombstone",
			obj: func() *Object {
				o := del(New(), nil, "a")
				return del(o, o.Context(), "a")
			},
			values:     []string{},
			tombstones: 1,
			clock:      Vector{"a": 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.obj()
			if got := values(o); !slices.Equal(got, tt.values) {
				t.Errorf("values = %q, want %q", got, tt.values)
			}
			if got := tombstones(o); got != tt.tombstones {
				t.Errorf("%d tombstones, want %d", got, tt.tombstones)
			}
			if !o.Clock.Equal(tt.clock) {
				t.Errorf("clock = %v, want %v", o.Clock, tt.clock)
			}
			if !o.Context().Equal(tt.clock) {
				t.Errorf("context = %v, want the clock %v", o.Context(), tt.clock)
			}
			if o.IsEmpty() {
				t.Errorf("IsEmpty() = true after a write")
			}
			if !slices.IsSortedFunc(o.Siblings, func(x, y Sibling) int { return x.Dot.compare(y.Dot) }) {
				t.Errorf("siblings not sorted by dot: %+v", o.Siblings)
			}
		})
	}
}

func TestUpdateKeepsWriteMetadata(t *testing.T) {
	o := New().Update(nil, "a", Write{Value: []byte("x"), WrittenAt: 42, Trace: []byte{1, 2}})
	s := o.Siblings[0]
	if s.Dot != (Dot{Actor: "a", Counter: 1}) || s.WrittenAt != 42 || string(s.Trace) != "\x01\x02" {
		t.Fatalf("sibling = %+v", s)
	}
}

func TestContextIsACopy(t *testing.T) {
	o := put(New(), nil, "a", "x")
	ctx := o.Context()
	ctx["a"] = 99
	ctx["z"] = 1
	if !o.Clock.Equal(Vector{"a": 1}) {
		t.Fatalf("changing the context changed the clock: %v", o.Clock)
	}
	if (*Object)(nil).Context() != nil {
		t.Fatalf("nil object has a context")
	}
}

// TestUpdateContextCounterAheadOfReplica: a context can carry a counter of
// the coordinator that its state lacks (state lost, or a forged context);
// the new dot must still be fresh.
func TestUpdateContextCounterAheadOfReplica(t *testing.T) {
	o := put(New(), nil, "a", "x")
	o = put(o, Vector{"a": 7}, "a", "y")
	if got := o.Siblings; len(got) != 1 || got[0].Dot != (Dot{Actor: "a", Counter: 8}) {
		t.Fatalf("siblings = %+v, want one with dot a:8", got)
	}
}

func TestMerge(t *testing.T) {
	// Replica a writes x and gossips it to b; then both take writes.
	base := put(New(), nil, "a", "x")
	tests := []struct {
		name       string
		a, b       func() *Object
		values     []string
		tombstones int
		clock      Vector
	}{
		{
			name:   "nil and nil",
			a:      func() *Object { return nil },
			b:      func() *Object { return nil },
			values: []string{},
			clock:  Vector{},
		},
		{
			name:   "with the empty object",
			a:      func() *Object { return base },
			b:      New,
			values: []string{"x"},
			clock:  Vector{"a": 1},
		},
		{
			name:   "same state twice",
			a:      func() *Object { return base },
			b:      func() *Object { return Merge(New(), base) },
			values: []string{"x"},
			clock:  Vector{"a": 1},
		},
		{
			name:   "concurrent blind writes on two replicas",
			a:      func() *Object { return put(New(), nil, "a", "x") },
			b:      func() *Object { return put(New(), nil, "b", "y") },
			values: []string{"x", "y"},
			clock:  Vector{"a": 1, "b": 1},
		},
		{
			name:   "superseded value is not resurrected by a stale replica",
			a:      func() *Object { return put(base, base.Context(), "a", "y") },
			b:      func() *Object { return base },
			values: []string{"y"},
			clock:  Vector{"a": 2},
		},
		{
			name:   "write on another replica supersedes what its context saw",
			a:      func() *Object { return base },
			b:      func() *Object { return put(Merge(New(), base), base.Context(), "b", "y") },
			values: []string{"y"},
			clock:  Vector{"a": 1, "b": 1},
		},
		{
			name:   "write whose context came from elsewhere supersedes there too",
			a:      func() *Object { return base },
			b:      func() *Object { return put(New(), base.Context(), "b", "y") },
			values: []string{"y"},
			clock:  Vector{"a": 1, "b": 1},
		},
		{
			name:       "delete is not resurrected by a stale replica",
			a:          func() *Object { return del(base, base.Context(), "a") },
			b:          func() *Object { return Merge(New(), base) },
			values:     []string{},
			tombstones: 1,
			clock:      Vector{"a": 2},
		},
		{
			name:       "concurrent delete and write both survive",
			a:          func() *Object { return del(base, base.Context(), "a") },
			b:          func() *Object { return put(Merge(New(), base), base.Context(), "b", "y") },
			values:     []string{"y"},
			tombstones: 1,
			clock:      Vector{"a": 2, "b": 1},
		},
		{
			name:   "concurrent context writes on two replicas both survive",
			a:      func() *Object { return put(base, base.Context(), "a", "y") },
			b:      func() *Object { return put(Merge(New(), base), base.Context(), "b", "z") },
			values: []string{"y", "z"},
			clock:  Vector{"a": 2, "b": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, order := range []string{"a,b", "b,a"} {
				x, y := tt.a(), tt.b()
				if order == "b,a" {
					x, y = y, x
				}
				m := Merge(x, y)
				if got := values(m); !slices.Equal(got, tt.values) {
					t.Errorf("Merge(%s): values = %q, want %q", order, got, tt.values)
				}
				if got := tombstones(m); got != tt.tombstones {
					t.Errorf("Merge(%s): %d tombstones, want %d", order, got, tt.tombstones)
				}
				if !m.Clock.Equal(tt.clock) {
					t.Errorf("Merge(%s): clock = %v, want %v", order, m.Clock, tt.clock)
				}
				if !Equal(Merge(m, y), m) || !Equal(Merge(m, x), m) {
					t.Errorf("Merge(%s): merging an input again changed the result", order)
				}
			}
		})
	}
}

func TestDescends(t *testing.T) {
	x := put(New(), nil, "a", "x")
	y := put(x, x.Context(), "a", "y")
	z := put(Merge(New(), x), x.Context(), "b", "z")
	yz := Merge(y, z)
	tomb := del(yz, yz.Context(), "c")
	tests := []struct {
		name string
		a, b *Object
		want bool
	}{
		{"nil descends nil", nil, nil, true},
		{"empty descends nil", New(), nil, true},
		{"anything descends the empty object", x, New(), true},
		{"the empty object does not descend a write", New(), x, false},
		{"an object descends itself", x, x, true},
		{"a later write descends an earlier one", y, x, true},
		{"an earlier write does not descend a later one", x, y, false},
		{"concurrent writes do not descend each other", y, z, false},
		{"concurrent writes do not descend each other, reversed", z, y, false},
		{"a merge descends its inputs", yz, z, true},
		{"an input does not descend the merge", y, yz, false},
		{"a delete descends what it saw", tomb, yz, true},
		{"what a delete saw does not descend the delete", yz, tomb, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Descends(tt.a, tt.b); got != tt.want {
				t.Fatalf("Descends = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEqual(t *testing.T) {
	x := put(New(), nil, "a", "x")
	sameDotOtherValue := put(New(), nil, "a", "other")
	sameDotDeleted := del(New(), nil, "a")
	tests := []struct {
		name string
		a, b *Object
		want bool
	}{
		{"nil and empty", nil, New(), true},
		{"nil and a write", nil, x, false},
		{"same write", x, Merge(x, nil), true},
		{"metadata is not content", x, New().Update(nil, "a", Write{Value: []byte("x"), WrittenAt: 1, Trace: []byte{1}}), true},
		{"different value", x, sameDotOtherValue, false},
		{"tombstone versus value", x, sameDotDeleted, false},
		{"different clock", x, &Object{Clock: Vector{"a": 2}, Siblings: x.Siblings}, false},
		{"zero clock entries do not count", x, &Object{Clock: Vector{"a": 1, "b": 0}, Siblings: x.Siblings}, true},
		{"different number of siblings", x, put(x, nil, "a", "y"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Equal(tt.a, tt.b); got != tt.want {
				t.Fatalf("Equal = %v, want %v", got, tt.want)
			}
			if got := Equal(tt.b, tt.a); got != tt.want {
				t.Fatalf("Equal reversed = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestVector(t *testing.T) {
	v := Vector{"a": 2, "b": 1}
	w := Vector{"a": 1, "c": 3}
	if j := v.Join(w); !j.Equal(Vector{"a": 2, "b": 1, "c": 3}) {
		t.Fatalf("Join = %v", j)
	}
	if !v.Covers(Dot{Actor: "a", Counter: 2}) || v.Covers(Dot{Actor: "a", Counter: 3}) || v.Covers(Dot{Actor: "c", Counter: 1}) {
		t.Fatalf("Covers wrong for %v", v)
	}
	if v.Descends(w) || w.Descends(v) || !v.Descends(nil) || !Vector(nil).Descends(Vector{"a": 0}) {
		t.Fatalf("Descends wrong")
	}
	if got := v.Join(w).Actors(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("Actors = %v", got)
	}
	c := v.Clone()
	c["a"] = math.MaxUint64
	if v["a"] != 2 {
		t.Fatalf("Clone shares storage")
	}
}

func TestDotString(t *testing.T) {
	for _, c := range []struct {
		d    Dot
		want string
	}{
		{Dot{Actor: "east-1", Counter: 7}, "east-1:7"},
		{Dot{Actor: "", Counter: 0}, ":0"},
		{Dot{Actor: strings.Repeat("a", 100), Counter: 1<<64 - 1}, strings.Repeat("a", 100) + ":18446744073709551615"},
	} {
		if got := c.d.String(); got != c.want {
			t.Errorf("%#v.String() = %q, want %q", c.d, got, c.want)
		}
	}
}
