package consistency

import (
	"fmt"
	"sort"
	"strings"
)

// Tally counts acknowledgements for one request against its Need. It is not
// safe for concurrent use; the coordinator owns it.
type Tally struct {
	need    Need
	acked   map[string]int
	pending map[string]int
}

// NewTally starts a tally for need, where asked[dc] is how many replicas of
// each datacenter were sent the request.
func NewTally(need Need, asked map[string]int) *Tally {
	t := &Tally{need: need, acked: map[string]int{}, pending: map[string]int{}}
	for dc, n := range asked {
		t.pending[dc] = n
	}
	return t
}

// Ack records one success from a replica in dc.
func (t *Tally) Ack(dc string) {
	t.acked[dc]++
	if t.pending[dc] > 0 {
		t.pending[dc]--
	}
}

// Fail records one failure (error or timeout) from a replica in dc.
func (t *Tally) Fail(dc string) {
	if t.pending[dc] > 0 {
		t.pending[dc]--
	}
}

// Acked returns the acks per datacenter so far.
func (t *Tally) Acked() map[string]int {
	out := make(map[string]int, len(t.acked))
	for dc, n := range t.acked {
		out[dc] = n
	}
	return out
}

// Met reports whether the need is satisfied.
func (t *Tally) Met() bool { return t.met(t.acked) }

// Possible reports whether the need could still be met if every pending
// replica acknowledged.
func (t *Tally) Possible() bool {
	best := make(map[string]int, len(t.acked))
	for dc, n := range t.acked {
		best[dc] = n
	}
	for dc, n := range t.pending {
		best[dc] += n
	}
	return t.met(best)
}

// Pending reports how many replicas have not answered yet.
func (t *Tally) Pending() int {
	n := 0
	for _, p := range t.pending {
		n += p
	}
	return n
}

func (t *Tally) met(acked map[string]int) bool {
	sum := 0
	for _, n := range acked {
		sum += n
	}
	if sum < t.need.Total {
		return false
	}
	for dc, n := range t.need.PerDC {
		if acked[dc] < n {
			return false
		}
	}
	return true
}

// Err returns the shortfall as a *QuorumError (nil if the need is met).
func (t *Tally) Err(op, cause string) error {
	if t.Met() {
		return nil
	}
	e := &QuorumError{Op: op, Required: map[string]int{}, Acked: t.Acked(), TotalRequired: t.need.Total, Cause: cause}
	for dc, n := range t.need.PerDC {
		e.Required[dc] = n
	}
	for _, n := range t.acked {
		e.TotalAcked += n
	}
	return e
}

// QuorumError reports a request that could not collect its W or R. It
// names every datacenter that fell short.
type QuorumError struct {
	Op            string         `cbor:"1,keyasint" json:"op"`
	Required      map[string]int `cbor:"2,keyasint" json:"required"`
	Acked         map[string]int `cbor:"3,keyasint" json:"acked"`
	TotalRequired int            `cbor:"4,keyasint,omitempty" json:"total_required,omitempty"`
	TotalAcked    int            `cbor:"5,keyasint" json:"total_acked"`
	Cause         string         `cbor:"6,keyasint,omitempty" json:"cause,omitempty"`
}

// Short returns, per datacenter that fell short, required minus acked.
func (e *QuorumError) Short() map[string]int {
	out := map[string]int{}
	for dc, n := range e.Required {
		if e.Acked[dc] < n {
			out[dc] = n - e.Acked[dc]
		}
	}
	return out
}

func (e *QuorumError) Error() string {
	var parts []string
	dcs := make([]string, 0, len(e.Required))
	for dc := range e.Required {
		dcs = append(dcs, dc)
	}
	sort.Strings(dcs)
	for _, dc := range dcs {
		if e.Acked[dc] < e.Required[dc] {
			parts = append(parts, fmt.Sprintf("%s acked %d of %d required", dc, e.Acked[dc], e.Required[dc]))
		}
	}
	if e.TotalRequired > 0 && e.TotalAcked < e.TotalRequired {
		parts = append(parts, fmt.Sprintf("%d of %d replicas acked across all datacenters", e.TotalAcked, e.TotalRequired))
	}
	msg := fmt.Sprintf("consistency: %s quorum not met: %s", e.Op, strings.Join(parts, ", "))
	if e.Cause != "" {
		msg += " (" + e.Cause + ")"
	}
	if e.isWrite() {
		msg += "; " + e.appliedNote()
	}
	return msg
}

// isWrite reports whether the failed request was a write (a delete is a
// put of a tombstone).
func (e *QuorumError) isWrite() bool { return e.Op == "put" || e.Op == "delete" }

// Landed returns, per datacenter, how many replicas acknowledged holding a
// failed write: a write that misses its quorum is not rolled back, so
// these copies stay and spread (hints, read repair, anti-entropy).
func (e *QuorumError) Landed() map[string]int {
	out := map[string]int{}
	for dc, n := range e.Acked {
		if n > 0 {
			out[dc] = n
		}
	}
	return out
}

// appliedNote tells the user of a failed write that it may have been
// applied, and where it certainly was.
func (e *QuorumError) appliedNote() string {
	landed := e.Landed()
	if len(landed) == 0 {
		return "the write may have been applied on replicas that did not answer; read the key to see its state before writing again"
	}
	dcs := make([]string, 0, len(landed))
	for dc := range landed {
		dcs = append(dcs, dc)
	}
	sort.Strings(dcs)
	where := make([]string, len(dcs))
	for i, dc := range dcs {
		where[i] = fmt.Sprintf("%s (%d %s)", dc, landed[dc], plural(landed[dc], "replica", "replicas"))
	}
	return fmt.Sprintf("the write may have been applied: it is stored in %s and is not rolled back; read the key to see its state, and write with that read's context rather than repeating this write", strings.Join(where, ", "))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
