package node

import (
	"fmt"
	"testing"
)

// TestSessionRounds checks that every session is scheduled exactly once
// and that no node takes part twice in one round.
func TestSessionRounds(t *testing.T) {
	var sessions [][2]string
	for a := range 3 {
		for b := range 4 {
			sessions = append(sessions, [2]string{fmt.Sprintf("east-%d", a), fmt.Sprintf("west-%d", b)})
		}
	}
	for a := range 3 {
		for b := a + 1; b < 3; b++ {
			sessions = append(sessions, [2]string{fmt.Sprintf("east-%d", a), fmt.Sprintf("east-%d", b)})
		}
	}
	seen := map[[2]string]int{}
	rounds := sessionRounds(sessions)
	for i, round := range rounds {
		busy := map[string]bool{}
		for _, s := range round {
			if busy[s[0]] || busy[s[1]] {
				t.Fatalf("round %d has %s or %s twice: %v", i, s[0], s[1], round)
			}
			busy[s[0]], busy[s[1]] = true, true
			seen[s]++
		}
	}
	for _, s := range sessions {
		if seen[s] != 1 {
			t.Fatalf("session %v scheduled %d times", s, seen[s])
		}
	}
	if len(seen) != len(sessions) {
		t.Fatalf("%d sessions scheduled, %d asked", len(seen), len(sessions))
	}
	t.Logf("%d sessions in %d rounds", len(sessions), len(rounds))
}
