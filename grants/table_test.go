package grants

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

func entry(t *testing.T, principal, ks string, p Permission, granted bool, wall int64, logical uint32, writer string) Entry {
	t.Helper()
	e, err := NewEntry(principal, ks, p, granted, Stamp{Wall: wall, Logical: logical, Writer: writer})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestAllows(t *testing.T) {
	tab := NewTable()
	for _, e := range []Entry{
		entry(t, "reader", "default", Read, true, 1, 0, "n1"),
		entry(t, "writer", "default", Write, true, 1, 0, "n1"),
		entry(t, "ksadmin", "default", Admin, true, 1, 0, "n1"),
		entry(t, "everywhere", AllKeyspaces, Read, true, 1, 0, "n1"),
		entry(t, "root", AllKeyspaces, Admin, true, 1, 0, "n1"),
		entry(t, "revoked", "default", Read, false, 2, 0, "n1"),
	} {
		if _, err := tab.Merge(e); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		principal, ks string
		need          Permission
		want          bool
	}{
		{"nobody", "default", Read, false},
		{"reader", "default", Read, true},
		{"reader", "default", Write, false},
		{"reader", "default", Admin, false},
		{"reader", "other", Read, false},
		{"writer", "default", Write, true},
		{"writer", "default", Read, false}, // write does not imply read
		{"ksadmin", "default", Read, true},
		{"ksadmin", "default", Write, true},
		{"ksadmin", "default", Admin, true},
		{"ksadmin", "other", Read, false},
		{"ksadmin", AllKeyspaces, Admin, false}, // admin of one keyspace is not cluster admin
		{"everywhere", "default", Read, true},
		{"everywhere", "other", Read, true},
		{"everywhere", "other", Write, false},
		{"root", "anything", Write, true},
		{"root", AllKeyspaces, Admin, true},
		{"revoked", "default", Read, false},
	}
	for _, c := range cases {
		if got := tab.Allows(c.principal, c.ks, c.need); got != c.want {
			t.Errorf("Allows(%q, %q, %v) = %v, want %v", c.principal, c.ks, c.need, got, c.want)
		}
	}
}

func TestMergeLastWriterWinsAndRevokeTies(t *testing.T) {
	tab := NewTable()
	grant := entry(t, "alice", "default", Write, true, 10, 0, "east-1")
	revoke := entry(t, "alice", "default", Write, false, 10, 1, "west-1")
	if ok, _ := tab.Merge(revoke); !ok {
		t.Fatal("first merge did not change the table")
	}
	if ok, _ := tab.Merge(grant); ok {
		t.Fatal("an older grant replaced a newer revoke")
	}
	if tab.Allows("alice", "default", Write) {
		t.Fatal("revoke lost to the older grant")
	}
	// Equal stamps (never issued by one writer): the revoke wins on every
	// node whatever the order.
	a := entry(t, "bob", "default", Read, true, 5, 0, "n1")
	b := entry(t, "bob", "default", Read, false, 5, 0, "n1")
	for _, order := range [][]Entry{{a, b}, {b, a}} {
		tt := NewTable()
		tt.MergeAll(order)
		if tt.Allows("bob", "default", Read) {
			t.Fatalf("order %v: a grant with the same stamp as a revoke won", order)
		}
	}
}

// randomEntries draws facts over a few principals, keyspaces and stamps,
// so that many of them collide on the same fact.
func randomEntries(r *rand.Rand, n int) []Entry {
	out := make([]Entry, n)
	for i := range out {
		out[i] = Entry{
			Principal:  fmt.Sprintf("p%d", r.IntN(3)),
			Keyspace:   []string{"default", "other", AllKeyspaces}[r.IntN(3)],
			Permission: Permissions[r.IntN(3)],
			Granted:    r.IntN(2) == 0,
			Stamp:      Stamp{Wall: int64(r.IntN(4)), Logical: uint32(r.IntN(2)), Writer: fmt.Sprintf("n%d", r.IntN(2))},
		}
	}
	return out
}

func tableOf(t *testing.T, parts ...[]Entry) *Table {
	t.Helper()
	tab := NewTable()
	for _, p := range parts {
		if _, err := tab.MergeAll(p); err != nil {
			t.Fatal(err)
		}
	}
	return tab
}

// merge merges b's entries into a copy of a, as a node merges a peer's
// table.
func merge(t *testing.T, a, b *Table) *Table {
	t.Helper()
	c := a.Clone()
	if _, err := c.MergeAll(b.Entries()); err != nil {
		t.Fatal(err)
	}
	return c
}

// Merging tables is commutative, associative and idempotent, and the
// result does not depend on the order entries arrive in: nodes that
// exchange tables in any order converge.
func TestMergeIsASemilattice(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(uint64(seed), 0))
	for round := 0; round < 500; round++ {
		a := tableOf(t, randomEntries(r, r.IntN(12)))
		b := tableOf(t, randomEntries(r, r.IntN(12)))
		c := tableOf(t, randomEntries(r, r.IntN(12)))
		same := func(what string, x, y *Table) {
			t.Helper()
			if x.Digest() != y.Digest() || !reflect.DeepEqual(x.Entries(), y.Entries()) {
				t.Fatalf("seed %d round %d: %s differ:\n%v\n%v", seed, round, what, x.Entries(), y.Entries())
			}
		}
		same("a∪b and b∪a", merge(t, a, b), merge(t, b, a))
		same("(a∪b)∪c and a∪(b∪c)", merge(t, merge(t, a, b), c), merge(t, a, merge(t, b, c)))
		same("a∪a and a", merge(t, a, a), a)
		// Order of arrival of single entries does not matter either.
		all := append(append(a.Entries(), b.Entries()...), c.Entries()...)
		shuffled := append([]Entry(nil), all...)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		same("entries in two orders", tableOf(t, all), tableOf(t, shuffled))
	}
}

func TestDigestChangesWithContent(t *testing.T) {
	a := tableOf(t, []Entry{entry(t, "alice", "default", Read, true, 1, 0, "n1")})
	b := tableOf(t, []Entry{entry(t, "alice", "default", Read, false, 2, 0, "n1")})
	if a.Digest() == b.Digest() {
		t.Fatal("a grant and its revoke have the same digest")
	}
	if NewTable().Digest() == a.Digest() {
		t.Fatal("an empty table has the digest of a non-empty one")
	}
	before := a.Digest()
	a.Merge(b.Entries()[0])
	if a.Digest() == before || a.Digest() != b.Digest() {
		t.Fatal("the digest did not follow a merge")
	}
}

func TestTableIsBounded(t *testing.T) {
	tab := NewTable()
	for i := 0; i < MaxEntries; i++ {
		if _, err := tab.Merge(entry(t, fmt.Sprintf("p%d", i), "default", Read, true, 1, 0, "n1")); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	_, err := tab.Merge(entry(t, "one-too-many", "default", Read, true, 1, 0, "n1"))
	if !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "maximum") {
		t.Fatalf("merge into a full table: %v, want ErrFull", err)
	}
	// An update of an existing fact still goes in.
	if ok, err := tab.Merge(entry(t, "p0", "default", Read, false, 2, 0, "n1")); !ok || err != nil {
		t.Fatalf("revoke in a full table: %v %v", ok, err)
	}
	if tab.Len() != MaxEntries {
		t.Fatalf("len %d", tab.Len())
	}
}

func TestEntryValidation(t *testing.T) {
	ok := Stamp{Wall: 1, Writer: "n1"}
	bad := []Entry{
		{Principal: "", Keyspace: "default", Permission: Read, Stamp: ok},
		{Principal: "*", Keyspace: "default", Permission: Read, Stamp: ok},
		{Principal: "alice", Keyspace: "", Permission: Read, Stamp: ok},
		{Principal: "alice", Keyspace: "default", Permission: 0, Stamp: ok},
		{Principal: "alice", Keyspace: "default", Permission: 9, Stamp: ok},
		{Principal: "alice", Keyspace: "default", Permission: Read},
		{Principal: strings.Repeat("a", MaxNameLen+1), Keyspace: "default", Permission: Read, Stamp: ok},
		{Principal: "al\nice", Keyspace: "default", Permission: Read, Stamp: ok},
		{Principal: "alice", Keyspace: "\xff", Permission: Read, Stamp: ok},
	}
	for _, e := range bad {
		tab := NewTable()
		if changed, err := tab.Merge(e); err == nil || changed || tab.Len() != 0 {
			t.Errorf("Merge(%+v) = %v, %v; want a refusal", e, changed, err)
		}
	}
}

func TestClockOrdersAfterObserved(t *testing.T) {
	var east, west Clock
	t0 := time.Unix(1000, 0)
	g := east.Next(t0, "east-1")
	// west's wall clock is a minute behind, but it saw the grant.
	west.Observe(g)
	r := west.Next(t0.Add(-time.Minute), "west-1")
	if r.Compare(g) <= 0 {
		t.Fatalf("revoke stamp %+v is not after the grant %+v it saw", r, g)
	}
	r2 := west.Next(t0.Add(-time.Minute), "west-1")
	if r2.Compare(r) <= 0 {
		t.Fatalf("successive stamps %+v, %+v not increasing", r, r2)
	}
	if later := west.Next(t0.Add(time.Hour), "west-1"); later.Wall != t0.Add(time.Hour).UnixNano() || later.Logical != 0 {
		t.Fatalf("a later wall clock should reset the counter: %+v", later)
	}
}

func TestParsePermission(t *testing.T) {
	for _, p := range Permissions {
		got, err := ParsePermission(strings.ToUpper(p.String()))
		if err != nil || got != p {
			t.Errorf("ParsePermission(%q) = %v, %v", p, got, err)
		}
	}
	if _, err := ParsePermission("delete"); err == nil || !strings.Contains(err.Error(), "read, write or admin") {
		t.Errorf("ParsePermission(delete): %v", err)
	}
}
