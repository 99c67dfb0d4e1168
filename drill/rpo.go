package drill

import (
	"strings"
	"time"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/history"
	"github.com/meridian-kv/meridian/version"
)

// RPO is what the lost region did not hold at the moment of loss.
type RPO struct {
	// Writes are the puts acknowledged before the loss whose value no
	// replica of the region held then, neither as it is nor superseded
	// by a write that saw it.
	Writes int
	// Seconds is the loss moment minus the acknowledgement of the oldest
	// of them: how far back the region's copy reached (0 with none).
	Seconds float64
	// Checked counts the puts acknowledged before the loss, and Keys the
	// keys inspected.
	Checked, Keys int
	// Oldest is the oldest missing write, for the report.
	Oldest *history.Op
}

// ComputeRPO finds the puts of ops acknowledged before lossAt that the
// region's replicas (held: key → their states at the loss) did not hold.
//
// A replica holds a put if its version vector covers the put's dot: it
// holds the value, or what superseded it. The dot is the coordinator's
// actor's entry in the context the acknowledgement returned (see
// writeDot). A put recorded without them (an older history) is held if the
// replica holds its value, or the value of a write that saw it (directly or
// through other writes), or a tombstone while a delete that saw it
// (likewise) exists; that misses a supersession through a read that saw
// only a tombstone, and so may count too many. A key with no entry in held
// is not covered.
func ComputeRPO(ops []history.Op, held map[string][]api.ReplicaState, lossAt time.Time) RPO {
	// sawBy[key][v]: the values (and "" for a delete) of writes whose
	// context covered v.
	type kv struct{ key, value string }
	sawBy := map[kv][]string{}
	for _, op := range ops {
		if (op.Kind != history.Put && op.Kind != history.Delete) || op.Outcome == history.Fail {
			continue
		}
		v := op.Value
		if op.Kind == history.Delete {
			v = ""
		}
		for _, s := range op.Saw {
			sawBy[kv{op.Key, s}] = append(sawBy[kv{op.Key, s}], v)
		}
	}
	// covered reports whether some replica state covers value of key,
	// following supersessions breadth-first.
	covered := func(key, value string) bool {
		states := held[key]
		if len(states) == 0 {
			return false
		}
		has := map[string]bool{}
		tomb := false
		for _, st := range states {
			for _, v := range st.Values {
				has[v] = true
			}
			tomb = tomb || st.Deleted
		}
		seen := map[string]bool{value: true}
		queue := []string{value}
		for len(queue) > 0 {
			v := queue[0]
			queue = queue[1:]
			if has[v] {
				return true
			}
			for _, w := range sawBy[kv{key, v}] {
				if w == "" {
					if tomb {
						return true
					}
					continue
				}
				if !seen[w] {
					seen[w] = true
					queue = append(queue, w)
				}
			}
		}
		return false
	}
	// byDot reports whether some replica of key has seen dot; ok is false
	// when op carries no dot.
	byDot := func(op *history.Op) (covered, ok bool) {
		actor, counter, ok := writeDot(op)
		if !ok {
			return false, false
		}
		for _, st := range held[op.Key] {
			if st.Version[actor] >= counter {
				return true, true
			}
		}
		return false, true
	}
	var r RPO
	r.Keys = len(held)
	for i := range ops {
		op := &ops[i]
		if op.Kind != history.Put || op.Outcome != history.OK || !op.End.Before(lossAt) {
			continue
		}
		r.Checked++
		if c, ok := byDot(op); (ok && c) || (!ok && covered(op.Key, op.Value)) {
			continue
		}
		r.Writes++
		if r.Oldest == nil || op.End.Before(r.Oldest.End) {
			r.Oldest = op
		}
	}
	if r.Oldest != nil {
		r.Seconds = lossAt.Sub(r.Oldest.End).Seconds()
	}
	return r
}

// writeDot returns the dot of an acknowledged write: the counter of its
// coordinator's actor (the node id, "@", an incarnation) in the context
// its acknowledgement returned, which is the object's clock just after the
// coordinator minted the dot. ok is false without a context, or when the
// coordinator's actor cannot be told (none, or two incarnations of it).
func writeDot(op *history.Op) (actor string, counter uint64, ok bool) {
	if op.Context == "" || op.Coordinator == "" {
		return "", 0, false
	}
	v, err := version.DecodeContext(op.Context)
	if err != nil {
		return "", 0, false
	}
	for a, c := range v {
		if strings.HasPrefix(a, op.Coordinator+"@") {
			if actor != "" {
				return "", 0, false
			}
			actor, counter = a, c
		}
	}
	return actor, counter, actor != ""
}
