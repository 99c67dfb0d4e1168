package version

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Dot names one write event: the Counter-th write of a key coordinated by
// Actor (a node id).
type Dot struct {
	_       struct{} `cbor:",toarray"`
	Actor   string
	Counter uint64
}

// String is the dot as "actor:counter", the writer a read reports.
func (d Dot) String() string {
	var b [64]byte
	return string(strconv.AppendUint(append(append(b[:0], d.Actor...), ':'), d.Counter, 10))
}

func (d Dot) compare(e Dot) int {
	if c := strings.Compare(d.Actor, e.Actor); c != 0 {
		return c
	}
	switch {
	case d.Counter < e.Counter:
		return -1
	case d.Counter > e.Counter:
		return 1
	}
	return 0
}

// Sibling is one concurrent value of a key, or a tombstone.
type Sibling struct {
	_       struct{} `cbor:",toarray"`
	Dot     Dot
	Value   []byte
	Deleted bool
	// WrittenAt is the coordinator's wall clock at the write, in Unix
	// nanoseconds. It is informational (and, later, feeds tombstone grace);
	// it never decides a conflict.
	WrittenAt int64
	// Trace is the W3C trace id and span id of the request that wrote the
	// sibling (16 + 8 bytes, or empty), so repair and hint spans can link
	// back to it.
	Trace []byte
}

// Write is the payload of one client write or delete.
type Write struct {
	Value     []byte
	Deleted   bool
	WrittenAt int64
	Trace     []byte
}

// Object is what a replica stores for one key: the version vector of
// everything it has seen, and the siblings that nothing seen supersedes,
// sorted by dot.
type Object struct {
	_        struct{} `cbor:",toarray"`
	Clock    Vector
	Siblings []Sibling
}

// New returns the empty object (a key never written).
func New() *Object { return &Object{} }

// IsEmpty reports whether the object has never been written.
func (o *Object) IsEmpty() bool { return o == nil || (len(o.Clock) == 0 && len(o.Siblings) == 0) }

// Context returns the causal context a read hands to the client: the
// object's version vector.
func (o *Object) Context() Vector {
	if o == nil {
		return nil
	}
	return o.Clock.Clone()
}

// Live returns the siblings that are values, not tombstones.
func (o *Object) Live() []Sibling {
	if o == nil {
		return nil
	}
	var out []Sibling
	for _, s := range o.Siblings {
		if !s.Deleted {
			out = append(out, s)
		}
	}
	return out
}

// Values returns the values of the live siblings, in dot order.
func (o *Object) Values() [][]byte {
	var out [][]byte
	for _, s := range o.Live() {
		out = append(out, s.Value)
	}
	return out
}

// Update applies one write coordinated by actor, given the causal context
// ctx the client read (nil for a blind write). Siblings covered by ctx are
// superseded; the write becomes a new sibling with a fresh dot of actor.
// The receiver is not modified.
//
// The caller must serialise Update calls for a key and must pass the
// object it has durably stored: dots of actor are only unique if actor
// always updates its own latest state.
func (o *Object) Update(ctx Vector, actor string, w Write) *Object {
	if o == nil {
		o = New()
	}
	counter := max(o.Clock[actor], ctx[actor]) + 1
	out := &Object{Clock: o.Clock.Join(ctx)}
	out.Clock[actor] = counter
	for _, s := range o.Siblings {
		if !ctx.Covers(s.Dot) {
			out.Siblings = append(out.Siblings, s)
		}
	}
	out.Siblings = append(out.Siblings, Sibling{
		Dot:       Dot{Actor: actor, Counter: counter},
		Value:     w.Value,
		Deleted:   w.Deleted,
		WrittenAt: w.WrittenAt,
		Trace:     w.Trace,
	})
	out.sort()
	return out
}

// Merge joins two replicas' views of one key. A sibling survives if the
// other side holds it too or has not seen its dot; the clocks join. Merge
// is commutative, associative and idempotent, so replicas converge however
// objects travel (read repair, hints, anti-entropy). Neither input is
// modified.
func Merge(a, b *Object) *Object {
	if a == nil {
		a = New()
	}
	if b == nil {
		b = New()
	}
	out := &Object{Clock: a.Clock.Join(b.Clock)}
	inB := make(map[Dot]bool, len(b.Siblings))
	for _, s := range b.Siblings {
		inB[s.Dot] = true
	}
	inA := make(map[Dot]bool, len(a.Siblings))
	for _, s := range a.Siblings {
		inA[s.Dot] = true
		if inB[s.Dot] || !b.Clock.Covers(s.Dot) {
			out.Siblings = append(out.Siblings, s)
		}
	}
	for _, s := range b.Siblings {
		if !inA[s.Dot] && !a.Clock.Covers(s.Dot) {
			out.Siblings = append(out.Siblings, s)
		}
	}
	out.sort()
	return out
}

// Equal reports whether a and b hold the same clock and the same siblings
// (by dot and content).
func Equal(a, b *Object) bool {
	if a.IsEmpty() || b.IsEmpty() {
		return a.IsEmpty() && b.IsEmpty()
	}
	if !a.Clock.Equal(b.Clock) || len(a.Siblings) != len(b.Siblings) {
		return false
	}
	for i := range a.Siblings {
		x, y := a.Siblings[i], b.Siblings[i]
		if x.Dot != y.Dot || x.Deleted != y.Deleted || !bytes.Equal(x.Value, y.Value) {
			return false
		}
	}
	return true
}

// Descends reports whether a already holds everything in b, so that merging
// b into a would change nothing.
func Descends(a, b *Object) bool { return Equal(Merge(a, b), a) }

func (o *Object) sort() {
	slices.SortFunc(o.Siblings, func(x, y Sibling) int { return x.Dot.compare(y.Dot) })
}

// Validate checks an object that arrived from a peer or from disk: siblings
// sorted by dot with no dot twice, every sibling's dot covered by the clock
// (a replica never holds a write it has not seen), and no counter so large
// that a later Update could wrap it.
func (o *Object) Validate() error {
	if o == nil {
		return nil
	}
	for a, c := range o.Clock {
		if c > maxContextCounter {
			return fmt.Errorf("version: invalid object: counter %d of %q is out of range", c, a)
		}
	}
	for i, s := range o.Siblings {
		if i > 0 && o.Siblings[i-1].Dot.compare(s.Dot) >= 0 {
			return errors.New("version: invalid object: siblings not in strict dot order")
		}
		if !o.Clock.Covers(s.Dot) || s.Dot.Counter == 0 {
			return fmt.Errorf("version: invalid object: sibling %s:%d is not covered by its clock", s.Dot.Actor, s.Dot.Counter)
		}
	}
	return nil
}
