package store

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestDeleteHintsOnlyUnchanged delivers a batch of hints of two targets
// and two keyspaces while one of them gains newer data: DeleteHints removes
// the others, keeps the changed one, and the stats follow.
func TestDeleteHintsOnlyUnchanged(t *testing.T) {
	s := openMem(t)
	for i := range 10 {
		addHint(t, s, "t1", "ks", fmt.Sprintf("k%d", i), written("n1", "a"), hintT0)
	}
	addHint(t, s, "t1", "other", "k0", written("n1", "a"), hintT0)
	addHint(t, s, "t2", "ks", "k0", written("n1", "a"), hintT0)
	batch := append(hintsOf(t, s, "t1"), hintsOf(t, s, "t2")...)
	if len(batch) != 12 {
		t.Fatalf("%d hints, want 12", len(batch))
	}
	// A write for t1's k3 arrives during delivery.
	addHint(t, s, "t1", "ks", "k3", written("n2", "b"), hintT0.Add(time.Second))

	deleted, err := s.DeleteHints(append(batch, batch[0])) // a duplicate counts once
	if err != nil {
		t.Fatal(err)
	}
	if deleted != 11 {
		t.Errorf("deleted %d hints, want 11", deleted)
	}
	left := hintsOf(t, s, "t1")
	if len(left) != 1 || string(left[0].Key) != "k3" || len(left[0].Object.Siblings) != 2 {
		t.Fatalf("left %v, want only k3 with both writes", left)
	}
	if len(hintsOf(t, s, "t2")) != 0 {
		t.Error("t2's hint was not deleted")
	}
	checkHintStats(t, s)
	if st := s.HintStats(); len(st) != 1 || st["t1"].Count != 1 {
		t.Errorf("HintStats %v, want one hint for t1", st)
	}
	// Deleting again finds nothing.
	if deleted, err := s.DeleteHints(batch); err != nil || deleted != 0 {
		t.Errorf("second DeleteHints: %d, %v", deleted, err)
	}
}

func TestDeleteHintsRefusesBadInput(t *testing.T) {
	s := openMem(t)
	if _, err := s.DeleteHints([]Hint{{Target: "", Keyspace: "ks", Key: []byte("k")}}); err != ErrEmptyTarget {
		t.Errorf("empty target: %v", err)
	}
	big := make([]Hint, MaxDeleteHints+1)
	if _, err := s.DeleteHints(big); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("%d hints: %v", len(big), err)
	}
	if n, err := s.DeleteHints(nil); n != 0 || err != nil {
		t.Errorf("no hints: %d, %v", n, err)
	}
}
