package version

import "sort"

// Vector is a version vector: for each actor, the highest counter of that
// actor's writes that has been seen. A nil Vector is the empty vector.
type Vector map[string]uint64

// Covers reports whether the vector has seen dot d.
func (v Vector) Covers(d Dot) bool { return d.Counter <= v[d.Actor] }

// Descends reports whether v has seen everything w has seen (v >= w).
func (v Vector) Descends(w Vector) bool {
	for a, c := range w {
		if v[a] < c {
			return false
		}
	}
	return true
}

// Equal reports whether v and w have seen exactly the same events.
func (v Vector) Equal(w Vector) bool { return v.Descends(w) && w.Descends(v) }

// Join returns the least upper bound of v and w as a new vector.
func (v Vector) Join(w Vector) Vector {
	out := make(Vector, len(v)+len(w))
	for a, c := range v {
		if c > 0 {
			out[a] = c
		}
	}
	for a, c := range w {
		if c > out[a] {
			out[a] = c
		}
	}
	return out
}

// Clone returns a copy of v.
func (v Vector) Clone() Vector { return v.Join(nil) }

// Actors returns the actors of v in sorted order.
func (v Vector) Actors() []string {
	out := make([]string, 0, len(v))
	for a := range v {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}
