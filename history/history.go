package history

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Kind is what an operation did.
type Kind uint8

// Operation kinds.
const (
	Put Kind = iota + 1
	Delete
	Read
)

func (k Kind) String() string {
	switch k {
	case Put:
		return "put"
	case Delete:
		return "delete"
	case Read:
		return "read"
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Outcome is what the client learnt of an operation.
type Outcome uint8

// Outcomes. A write whose outcome is Unknown may or may not have been
// applied (a timeout, a lost connection, a quorum that fell short after
// some replicas took it): it need not survive, and may.
const (
	OK Outcome = iota + 1
	Fail
	Unknown
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Fail:
		return "fail"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("outcome(%d)", o)
}

// Op is one client operation.
type Op struct {
	Client int
	Kind   Kind
	Key    string
	// Value is a put's value, unique to this put.
	Value string
	// Saw holds the values the write's causal context covers (what the
	// read it is based on returned); a blind write saw nothing.
	Saw []string
	// Read holds the values a read returned.
	Read []string
	// Start and End are when the client invoked the operation and heard
	// its outcome.
	Start, End time.Time
	Outcome    Outcome
	// Note is free text for reports (the consistency level, the error).
	Note string
	// Coordinator and Context are, for an acknowledged write, the node
	// that coordinated it and the causal context its acknowledgement
	// returned (which covers the write): with them a replica's version
	// vector tells whether it has seen the write.
	Coordinator, Context string
}

// Recorder collects operations from many goroutines.
type Recorder struct {
	mu  sync.Mutex
	ops []Op
}

// Add records op.
func (r *Recorder) Add(op Op) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

// Ops returns a copy of the operations recorded so far.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ops)
}

// Finding is one violation.
type Finding struct {
	Key, Value string
	// Where names the replica (or "final") the violation was seen on.
	Where string
	Op    Op
}

func (f Finding) String() string {
	return fmt.Sprintf("key %q value %q on %s (%s %s, %s–%s, %s)", f.Key, f.Value, f.Where, f.Op.Kind, f.Op.Outcome,
		f.Op.Start.Format("15:04:05.000"), f.Op.End.Format("15:04:05.000"), f.Op.Note)
}

// Report is the result of Check.
type Report struct {
	// Counts of writes (puts and deletes) by outcome, and of reads.
	Acked, Failed, Unknown, Reads int
	AckedDeletes                  int
	// Lost (P1): an acknowledged put whose value is missing, and that no
	// later write (acknowledged or of unknown outcome) saw.
	Lost []Finding
	// Resurrected (P3): a value an acknowledged delete saw, present again.
	Resurrected []Finding
	// Phantoms (P2): a value read or found that no put wrote.
	Phantoms []Finding
}

// OK reports whether no property was violated.
func (r Report) OK() bool {
	return len(r.Lost) == 0 && len(r.Resurrected) == 0 && len(r.Phantoms) == 0
}

func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d writes acknowledged (%d deletes), %d failed, %d of unknown outcome, %d reads; lost %d, resurrected %d, phantoms %d",
		r.Acked, r.AckedDeletes, r.Failed, r.Unknown, r.Reads, len(r.Lost), len(r.Resurrected), len(r.Phantoms))
	for _, group := range []struct {
		name string
		fs   []Finding
	}{{"lost", r.Lost}, {"resurrected", r.Resurrected}, {"phantom", r.Phantoms}} {
		for i, f := range group.fs {
			if i == 10 {
				fmt.Fprintf(&b, "\n  … %d more %s", len(group.fs)-i, group.name)
				break
			}
			fmt.Fprintf(&b, "\n  %s: %s", group.name, f)
		}
	}
	return b.String()
}

// State is what one holder (a replica, or the cluster as a final read
// sees it) has: key → live values. A key absent or with no values is
// deleted or was never written.
type State map[string][]string

// Check checks ops against the states the cluster ended in, one per
// holder (replica name → State): every holder must keep every acknowledged
// put that nothing superseded (P1), show no value an acknowledged delete saw
// (P3), and hold only values that were written (P2). Reads are checked for
// phantoms too.
func Check(ops []Op, holders map[string]State) Report {
	var rep Report
	written := map[string]bool{}
	// seenBy[key][value]: some write that may have been applied saw value.
	seenBy := map[string]map[string]bool{}
	for _, op := range ops {
		switch op.Kind {
		case Put, Delete:
			if op.Kind == Put {
				written[op.Value] = true
			}
			switch op.Outcome {
			case OK:
				rep.Acked++
				if op.Kind == Delete {
					rep.AckedDeletes++
				}
			case Fail:
				rep.Failed++
			default:
				rep.Unknown++
			}
			if op.Outcome != Fail {
				if seenBy[op.Key] == nil {
					seenBy[op.Key] = map[string]bool{}
				}
				for _, v := range op.Saw {
					seenBy[op.Key][v] = true
				}
			}
		case Read:
			rep.Reads++
		}
	}
	for _, op := range ops {
		if op.Kind == Read && op.Outcome == OK {
			for _, v := range op.Read {
				if !written[v] {
					rep.Phantoms = append(rep.Phantoms, Finding{Key: op.Key, Value: v, Where: "a read", Op: op})
				}
			}
		}
	}
	names := make([]string, 0, len(holders))
	for name := range holders {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		st := holders[name]
		has := map[string]map[string]bool{}
		keys := make([]string, 0, len(st))
		for k := range st {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			has[k] = map[string]bool{}
			for _, v := range st[k] {
				has[k][v] = true
				if !written[v] {
					rep.Phantoms = append(rep.Phantoms, Finding{Key: k, Value: v, Where: name})
				}
			}
		}
		for _, op := range ops {
			if op.Outcome != OK {
				continue
			}
			switch op.Kind {
			case Put:
				if !has[op.Key][op.Value] && !seenBy[op.Key][op.Value] {
					rep.Lost = append(rep.Lost, Finding{Key: op.Key, Value: op.Value, Where: name, Op: op})
				}
			case Delete:
				for _, v := range op.Saw {
					if has[op.Key][v] {
						rep.Resurrected = append(rep.Resurrected, Finding{Key: op.Key, Value: v, Where: name, Op: op})
					}
				}
			}
		}
	}
	return rep
}
