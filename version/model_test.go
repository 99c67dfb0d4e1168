package version

import (
	"bytes"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/meridian-kv/meridian/codec"
)

// Replay a failing randomized run with
//
//	go test ./version -run TestObjectAgainstModel -seed=N
//
// or MERIDIAN_SEED=N. Without either, the tests run a fixed range of seeds,
// so they are deterministic.
var seedFlag = flag.Uint64("seed", 0, "replay one randomized run of the version property tests with this seed")

// testSeeds returns the seeds a randomized test runs: the one given by -seed
// or MERIDIAN_SEED, or n fixed ones.
func testSeeds(t *testing.T, n int) []uint64 {
	t.Helper()
	if *seedFlag != 0 {
		return []uint64{*seedFlag}
	}
	if s := os.Getenv("MERIDIAN_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("MERIDIAN_SEED=%q: %v", s, err)
		}
		return []uint64{seed}
	}
	if testing.Short() {
		n = max(n/10, 1)
	}
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	return seeds
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

// The naive model. It knows nothing of dots or vectors: every write is an
// event with a unique value and the exact set of events its writer had seen,
// and a replica is the set of events it knows. A replica's current siblings
// are the known events that no known event saw.

type event struct {
	id      int
	value   []byte
	deleted bool
	saw     map[int]bool // the events the writer's context covered
	dot     Dot          // the dot the implementation gave it, checked unique
}

type eventSet map[int]bool

// current returns the events of known that no event of known saw.
func (s *sim) current(known eventSet) eventSet {
	superseded := eventSet{}
	for id := range known {
		for seen := range s.events[id].saw {
			superseded[seen] = true
		}
	}
	out := eventSet{}
	for id := range known {
		if !superseded[id] {
			out[id] = true
		}
	}
	return out
}

type replica struct {
	obj   *Object
	known eventSet
}

type client struct {
	ctx  Vector   // last read context (what the client would send back)
	saw  eventSet // the events that read covered, per the model
	read bool
}

type sim struct {
	t        *testing.T
	rng      *rand.Rand
	actors   []string
	replicas map[string]*replica
	clients  []*client
	events   []*event
	// old holds earlier states of replicas: gossip may deliver a stale,
	// reordered or duplicated copy.
	old []replica
	// snapshots collects reachable objects for the algebraic tests.
	snapshots []*Object
	dots      map[Dot]int
	stats     struct{ siblings, tombstones, blind, stale int }
}

func newSim(t *testing.T, rng *rand.Rand, nClients int) *sim {
	s := &sim{
		t:        t,
		rng:      rng,
		actors:   []string{"a", "b", "c"},
		replicas: map[string]*replica{},
		dots:     map[Dot]int{},
	}
	for _, a := range s.actors {
		s.replicas[a] = &replica{obj: New(), known: eventSet{}}
	}
	for range nClients {
		s.clients = append(s.clients, &client{})
	}
	return s
}

func (s *sim) pickReplica() string { return s.actors[s.rng.IntN(len(s.actors))] }

func (s *sim) read(c *client, r string) string {
	rep := s.replicas[r]
	ctx := rep.obj.Context()
	// The context travels to the client and back as its opaque string.
	wire := EncodeContext(ctx)
	back, err := DecodeContext(wire)
	if err != nil {
		s.t.Fatalf("DecodeContext(EncodeContext(%v)) = %v", ctx, err)
	}
	if !back.Equal(ctx) {
		s.t.Fatalf("context round trip: got %v, want %v", back, ctx)
	}
	c.ctx, c.saw, c.read = back, maps.Clone(rep.known), true
	return fmt.Sprintf("read %s -> %d values", r, len(rep.obj.Values()))
}

func (s *sim) write(c *client, r string, blind, deleted bool) string {
	rep := s.replicas[r]
	var ctx Vector
	saw := eventSet{}
	if !blind && c.read {
		ctx, saw = c.ctx, c.saw
	}
	e := &event{id: len(s.events), deleted: deleted, saw: saw}
	e.value = fmt.Appendf(nil, "v%d", e.id)
	before, _ := codec.Marshal(rep.obj)
	ctxBefore := ctx.Clone()

	out := rep.obj.Update(ctx, r, Write{Value: e.value, Deleted: deleted})

	if after, _ := codec.Marshal(rep.obj); !bytes.Equal(before, after) {
		s.t.Fatalf("Update modified its receiver")
	}
	if !ctx.Equal(ctxBefore) {
		s.t.Fatalf("Update modified the context")
	}
	e.dot = Dot{Actor: r, Counter: out.Clock[r]}
	var found int
	for _, sib := range out.Siblings {
		if sib.Dot == e.dot {
			found++
			if !bytes.Equal(sib.Value, e.value) || sib.Deleted != deleted {
				s.t.Fatalf("sibling with the new dot %s holds %q deleted=%v, want %q deleted=%v",
					dotString(e.dot), sib.Value, sib.Deleted, e.value, deleted)
			}
		}
	}
	if found != 1 {
		s.t.Fatalf("the write's dot %s (the clock's entry for %s) names %d siblings, want 1", dotString(e.dot), r, found)
	}
	if prev, dup := s.dots[e.dot]; dup {
		s.t.Fatalf("write %d reused dot %s of write %d", e.id, dotString(e.dot), prev)
	}
	s.dots[e.dot] = e.id
	s.events = append(s.events, e)

	s.old = append(s.old, replica{obj: rep.obj, known: rep.known})
	known := maps.Clone(rep.known)
	maps.Copy(known, saw)
	known[e.id] = true
	rep.obj, rep.known = out, known
	if blind {
		s.stats.blind++
	}
	kind := "put"
	if deleted {
		kind = "delete"
	}
	return fmt.Sprintf("%s %s v%d blind=%v ctx=%v", kind, r, e.id, blind, ctx)
}

// gossip merges from's state (or a stale copy of some replica) into to.
func (s *sim) gossip(from, to string) string {
	src := *s.replicas[from]
	desc := from
	if len(s.old) > 0 && s.rng.IntN(4) == 0 {
		src = s.old[s.rng.IntN(len(s.old))]
		desc = "stale copy"
		s.stats.stale++
	}
	dst := s.replicas[to]
	a, b := dst.obj, src.obj
	if s.rng.IntN(2) == 0 {
		a, b = b, a
	}
	encA, _ := codec.Marshal(a)
	encB, _ := codec.Marshal(b)
	out := Merge(a, b)
	if x, _ := codec.Marshal(a); !bytes.Equal(x, encA) {
		s.t.Fatalf("Merge modified its first argument")
	}
	if x, _ := codec.Marshal(b); !bytes.Equal(x, encB) {
		s.t.Fatalf("Merge modified its second argument")
	}
	if s.rng.IntN(3) == 0 { // the message arrives twice
		if again := Merge(out, src.obj); !Equal(again, out) {
			s.t.Fatalf("merging the same object twice changed the result:\nonce:  %+v\ntwice: %+v", out, again)
		}
	}
	s.old = append(s.old, replica{obj: dst.obj, known: dst.known})
	known := maps.Clone(dst.known)
	maps.Copy(known, src.known)
	dst.obj, dst.known = out, known
	return fmt.Sprintf("gossip %s -> %s", desc, to)
}

// check compares every replica with the model.
func (s *sim) check(step int, op string) {
	s.t.Helper()
	for _, r := range s.actors {
		rep := s.replicas[r]
		cur := s.current(rep.known)
		var wantVals, wantDots []string
		for id := range cur {
			e := s.events[id]
			wantDots = append(wantDots, dotString(e.dot))
			if !e.deleted {
				wantVals = append(wantVals, string(e.value))
			}
		}
		var gotVals, gotDots []string
		for _, v := range rep.obj.Values() {
			gotVals = append(gotVals, string(v))
		}
		for _, sib := range rep.obj.Siblings {
			gotDots = append(gotDots, dotString(sib.Dot))
			if sib.Deleted {
				s.stats.tombstones++
			}
		}
		slices.Sort(wantVals)
		slices.Sort(gotVals)
		slices.Sort(wantDots)
		slices.Sort(gotDots)
		if !slices.Equal(gotVals, wantVals) {
			s.t.Fatalf("step %d (%s): replica %s values %v, model says %v", step, op, r, gotVals, wantVals)
		}
		if !slices.Equal(gotDots, wantDots) {
			s.t.Fatalf("step %d (%s): replica %s sibling dots %v, model says %v", step, op, r, gotDots, wantDots)
		}
		if len(rep.obj.Siblings) > 1 {
			s.stats.siblings++
		}
		// The clock covers exactly the events the replica knows.
		for _, e := range s.events {
			if got, want := rep.obj.Clock.Covers(e.dot), rep.known[e.id]; got != want {
				s.t.Fatalf("step %d (%s): replica %s clock %v covers %s = %v, model says known = %v",
					step, op, r, rep.obj.Clock, dotString(e.dot), got, want)
			}
		}
		// P6: clocks stay bounded by the replica actors.
		for _, a := range rep.obj.Clock.Actors() {
			if !slices.Contains(s.actors, a) {
				s.t.Fatalf("step %d: replica %s clock names unknown actor %q", step, r, a)
			}
		}
	}
	for _, x := range s.actors {
		for _, y := range s.actors {
			want := subset(s.replicas[y].known, s.replicas[x].known)
			if got := Descends(s.replicas[x].obj, s.replicas[y].obj); got != want {
				s.t.Fatalf("step %d (%s): Descends(%s, %s) = %v, model says %v", step, op, x, y, got, want)
			}
		}
	}
}

func dotString(d Dot) string { return fmt.Sprintf("%s:%d", d.Actor, d.Counter) }

func subset(a, b eventSet) bool {
	for id := range a {
		if !b[id] {
			return false
		}
	}
	return true
}

// healAll gossips until every replica has every replica's state.
func (s *sim) healAll() {
	hub := s.replicas["a"]
	for _, from := range s.actors[1:] {
		hub.obj = Merge(hub.obj, s.replicas[from].obj)
		hub.known = union(hub.known, s.replicas[from].known)
	}
	for _, to := range s.actors[1:] {
		s.replicas[to].obj = Merge(hub.obj, s.replicas[to].obj)
		s.replicas[to].known = union(hub.known, s.replicas[to].known)
	}
}

func union(a, b eventSet) eventSet {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

func (s *sim) run(steps int) {
	var trace []string
	defer func() {
		if s.t.Failed() {
			tail := trace[max(0, len(trace)-20):]
			s.t.Logf("last operations:\n  %s", joinLines(tail))
		}
	}()
	for step := range steps {
		var op string
		c := s.clients[s.rng.IntN(len(s.clients))]
		switch k := s.rng.IntN(10); {
		case k < 3:
			op = s.read(c, s.pickReplica())
		case k < 7:
			op = s.write(c, s.pickReplica(), s.rng.IntN(5) == 0, s.rng.IntN(8) == 0)
		default:
			from, to := s.pickReplica(), s.pickReplica()
			op = s.gossip(from, to)
		}
		trace = append(trace, op)
		s.check(step, op)
		if s.rng.IntN(4) == 0 {
			s.snapshots = append(s.snapshots, s.replicas[s.pickReplica()].obj)
		}
	}
	s.healAll()
	s.check(steps, "heal")
	all := eventSet{}
	for _, e := range s.events {
		all[e.id] = true
	}
	for _, r := range s.actors {
		if !Equal(s.replicas[r].obj, s.replicas["a"].obj) {
			s.t.Fatalf("after heal replica %s = %+v, replica a = %+v", r, s.replicas[r].obj, s.replicas["a"].obj)
		}
		if !maps.Equal(s.replicas[r].known, all) {
			s.t.Fatalf("after heal replica %s does not know every event (model bug)", r)
		}
	}
	// P1 and P3 at the end: exactly the maximal events of the whole
	// history survive, as values or tombstones.
	maximal := s.current(all)
	if got := len(s.replicas["a"].obj.Siblings); got != len(maximal) {
		s.t.Fatalf("after heal: %d siblings, want the %d maximal events", got, len(maximal))
	}
}

func joinLines(ss []string) string {
	var b bytes.Buffer
	for i, s := range ss {
		if i > 0 {
			b.WriteString("\n  ")
		}
		b.WriteString(s)
	}
	return b.String()
}

// TestObjectAgainstModel drives three replicas and several clients through
// random reads, context and blind writes, deletes and gossip (including
// stale and duplicated deliveries) and checks every replica against the
// naive model after every step.
func TestObjectAgainstModel(t *testing.T) {
	var siblings, tombstones, stale int
	seeds := testSeeds(t, 300)
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Logf("seed %d (replay with -seed=%d)", seed, seed)
			rng := newRand(seed)
			s := newSim(t, rng, 1+rng.IntN(4))
			s.run(60 + rng.IntN(100))
			siblings += s.stats.siblings
			tombstones += s.stats.tombstones
			stale += s.stats.stale
		})
	}
	// Not vacuous: concurrency, deletes and stale deliveries really happened
	// (checked over the fixed seeds; one replayed seed may lack some).
	if !t.Failed() && len(seeds) > 1 && (siblings == 0 || tombstones == 0 || stale == 0) {
		t.Fatalf("vacuous run: %d sibling states, %d tombstone states, %d stale deliveries", siblings, tombstones, stale)
	}
	t.Logf("%d states with siblings, %d tombstone states, %d stale deliveries", siblings, tombstones, stale)
}

// TestReadModifyWriteSeesOneValue is P6: a client that always writes back
// the context of its read against one replica sees exactly its last value,
// even when the replica started with siblings and receives duplicate or
// stale copies of its own state.
func TestReadModifyWriteSeesOneValue(t *testing.T) {
	for _, seed := range testSeeds(t, 50) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Logf("seed %d (replay with -seed=%d)", seed, seed)
			rng := newRand(seed)
			actors := []string{"a", "b", "c"}
			r := actors[rng.IntN(len(actors))]
			// Start from concurrent history: blind writes on every replica,
			// fully gossiped into r.
			obj := New()
			for i, a := range actors {
				other := New()
				for j := range rng.IntN(3) {
					other = other.Update(nil, a, Write{Value: fmt.Appendf(nil, "pre-%d-%d", i, j)})
				}
				obj = Merge(obj, other)
			}
			var history []*Object
			for i := range 50 + rng.IntN(50) {
				ctx := obj.Context()
				if i > 0 {
					vals := obj.Values()
					want := fmt.Sprintf("rmw-%d", i-1)
					if len(vals) != 1 || string(vals[0]) != want {
						t.Fatalf("step %d: read %q, want exactly [%q]", i, vals, want)
					}
				}
				obj = obj.Update(ctx, r, Write{Value: fmt.Appendf(nil, "rmw-%d", i)})
				history = append(history, obj)
				if rng.IntN(3) == 0 { // a duplicate or stale copy arrives
					obj = Merge(obj, history[rng.IntN(len(history))])
				}
				if len(obj.Clock) > len(actors) {
					t.Fatalf("step %d: clock %v has more entries than actors", i, obj.Clock)
				}
			}
		})
	}
}

// TestMergeAlgebra checks on reachable objects that Merge is idempotent,
// commutative and associative, and is an upper bound of its inputs.
func TestMergeAlgebra(t *testing.T) {
	for _, seed := range testSeeds(t, 30) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Logf("seed %d (replay with -seed=%d)", seed, seed)
			rng := newRand(seed)
			s := newSim(t, rng, 3)
			s.run(120)
			objs := append(s.snapshots, New(), nil)
			pick := func() *Object { return objs[rng.IntN(len(objs))] }
			for range 300 {
				a, b, c := pick(), pick(), pick()
				ab := Merge(a, b)
				if !Equal(Merge(a, a), orEmpty(a)) {
					t.Fatalf("Merge(a, a) != a for a = %+v", a)
				}
				if !Equal(Merge(ab, b), ab) || !Equal(Merge(ab, a), ab) {
					t.Fatalf("merging an input again changed Merge(a, b)\na = %+v\nb = %+v", a, b)
				}
				if !Equal(ab, Merge(b, a)) {
					t.Fatalf("Merge not commutative\na = %+v\nb = %+v", a, b)
				}
				if !Equal(Merge(ab, c), Merge(a, Merge(b, c))) {
					t.Fatalf("Merge not associative\na = %+v\nb = %+v\nc = %+v", a, b, c)
				}
				if !Descends(ab, a) || !Descends(ab, b) {
					t.Fatalf("Merge(a, b) does not descend from both inputs\na = %+v\nb = %+v", a, b)
				}
			}
		})
	}
}

func orEmpty(o *Object) *Object {
	if o == nil {
		return New()
	}
	return o
}
