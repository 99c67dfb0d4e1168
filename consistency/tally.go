package consistency

import (
	"fmt"
	"sort"
	"strings"
)

// Tally counts acknowledgements for one request against its Need. It is not
// safe for concurrent use; the coordinator owns it.
//
// A request involves a few datacenters at most, so the counts are kept in a
// slice searched in order: a coordinator asks Met and Possible after every
// reply, and neither allocates.
type Tally struct {
	need Need
	dcs  []dcCount
}

// dcCount is one datacenter's part of a Tally.
type dcCount struct {
	dc                   string
	need, acked, pending int
}

// NewTally starts a tally for need, where asked[dc] is how many replicas of
// each datacenter were sent the request.
func NewTally(need Need, asked map[string]int) *Tally {
	t := &Tally{need: need, dcs: make([]dcCount, 0, max(len(asked), len(need.PerDC)))}
	for dc, n := range asked {
		t.at(dc).pending = n
	}
	for dc, n := range need.PerDC {
		t.at(dc).need = n
	}
	return t
}

// at returns dc's counts, added if new. The pointer is good until the
// next call.
func (t *Tally) at(dc string) *dcCount {
	for i := range t.dcs {
		if t.dcs[i].dc == dc {
			return &t.dcs[i]
		}
	}
	t.dcs = append(t.dcs, dcCount{dc: dc})
	return &t.dcs[len(t.dcs)-1]
}

// Ack records one success from a replica in dc.
func (t *Tally) Ack(dc string) {
	c := t.at(dc)
	c.acked++
	if c.pending > 0 {
		c.pending--
	}
}

// Fail records one failure (error or timeout) from a replica in dc.
func (t *Tally) Fail(dc string) {
	if c := t.at(dc); c.pending > 0 {
		c.pending--
	}
}

// Acked returns the acks per datacenter so far (the datacenters with
// any).
func (t *Tally) Acked() map[string]int {
	out := make(map[string]int, len(t.dcs))
	for _, c := range t.dcs {
		if c.acked > 0 {
			out[c.dc] = c.acked
		}
	}
	return out
}

// Met reports whether the need is satisfied.
func (t *Tally) Met() bool { return t.met(false) }

// Possible reports whether the need could still be met if every pending
// replica acknowledged.
func (t *Tally) Possible() bool { return t.met(true) }

// Pending reports how many replicas have not answered yet.
func (t *Tally) Pending() int {
	n := 0
	for _, c := range t.dcs {
		n += c.pending
	}
	return n
}

// met reports whether the acks, and the pending replicas too if
// withPending, meet the need.
func (t *Tally) met(withPending bool) bool {
	sum := 0
	for _, c := range t.dcs {
		n := c.acked
		if withPending {
			n += c.pending
		}
		if n < c.need {
			return false
		}
		sum += n
	}
	return sum >= t.need.Total
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
	for _, c := range t.dcs {
		e.TotalAcked += c.acked
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
