package grants

import "time"

// Stamp orders the writes of one fact: a hybrid logical clock (wall time in
// nanoseconds, then a logical counter) and, to break ties, the writing
// node's id.
type Stamp struct {
	_       struct{} `cbor:",toarray"`
	Wall    int64
	Logical uint32
	Writer  string
}

// Compare returns -1, 0 or +1 as s is before, equal to or after o.
func (s Stamp) Compare(o Stamp) int {
	switch {
	case s.Wall != o.Wall:
		return cmp(s.Wall < o.Wall)
	case s.Logical != o.Logical:
		return cmp(s.Logical < o.Logical)
	case s.Writer != o.Writer:
		return cmp(s.Writer < o.Writer)
	}
	return 0
}

func cmp(less bool) int {
	if less {
		return -1
	}
	return 1
}

// Clock is a hybrid logical clock (Kulkarni et al., "Logical Physical
// Clocks", 2014): its stamps follow every stamp it has issued or observed,
// so a revoke made on a node that has seen a grant is stamped after it even
// if that node's wall clock is behind the granting node's. The zero value
// is ready; it is not safe for concurrent use.
type Clock struct {
	last Stamp
}

// Next returns a stamp for a write by writer at wall time now, after every
// stamp issued or observed so far.
func (c *Clock) Next(now time.Time, writer string) Stamp {
	wall := now.UnixNano()
	if wall > c.last.Wall {
		c.last = Stamp{Wall: wall, Writer: writer}
	} else {
		c.last = Stamp{Wall: c.last.Wall, Logical: c.last.Logical + 1, Writer: writer}
	}
	return c.last
}

// Observe moves the clock past a stamp received from another node.
func (c *Clock) Observe(s Stamp) {
	if s.Wall > c.last.Wall || (s.Wall == c.last.Wall && s.Logical > c.last.Logical) {
		c.last = Stamp{Wall: s.Wall, Logical: s.Logical, Writer: c.last.Writer}
	}
}
