package consistency

import (
	"strings"
	"testing"
)

// A failed write is not rolled back: its error says it may have been
// applied and names the datacenters whose replicas hold it. A failed read
// says nothing of the kind.
func TestQuorumErrorSaysWhereAFailedWriteLanded(t *testing.T) {
	eachQuorum := Need{PerDC: map[string]int{"east": 2, "west": 2, "central": 2}}
	asked := map[string]int{"east": 3, "west": 3, "central": 3}
	cases := []struct {
		name      string
		op        string
		acks      []string
		want      []string
		wantNot   []string
		landedDCs int
	}{
		{
			name: "each quorum landed in two regions", op: "put",
			acks:    []string{"east", "east", "central", "central", "central"},
			want:    []string{"west acked 0 of 2 required", "may have been applied", "stored in central (3 replicas), east (2 replicas)", "not rolled back"},
			wantNot: []string{"west ("}, landedDCs: 2,
		},
		{
			name: "one copy", op: "put", acks: []string{"west"},
			want: []string{"may have been applied", "stored in west (1 replica)"}, landedDCs: 1,
		},
		{
			name: "no copy acknowledged", op: "put",
			want: []string{"may have been applied on replicas that did not answer"},
		},
		{
			name: "read", op: "get", acks: []string{"east", "east"},
			want: []string{"west acked 0 of 2 required"}, wantNot: []string{"applied", "stored in"}, landedDCs: 1,
		},
	}
	for _, c := range cases {
		tl := NewTally(eachQuorum, asked)
		for _, dc := range c.acks {
			tl.Ack(dc)
		}
		qe := tl.Err(c.op, "last error: west-1: timed out").(*QuorumError)
		msg := qe.Error()
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: %q does not say %q", c.name, msg, w)
			}
		}
		for _, w := range c.wantNot {
			if strings.Contains(msg, w) {
				t.Errorf("%s: %q says %q", c.name, msg, w)
			}
		}
		if len(qe.Landed()) != c.landedDCs {
			t.Errorf("%s: Landed() = %v, want %d datacenters", c.name, qe.Landed(), c.landedDCs)
		}
	}
}
