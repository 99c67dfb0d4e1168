package node

import (
	"testing"
	"time"
)

func TestReqStatsSummary(t *testing.T) {
	var s reqStats
	t0 := time.Unix(1000, 0)
	for i := 1; i <= 100; i++ {
		s.add("client", "east", t0.Add(time.Duration(i)*10*time.Millisecond), time.Duration(i)*time.Millisecond)
	}
	s.add("client", "east", t0.Add(-time.Minute), time.Hour) // outside the window
	s.add("replica", "west", t0, 40*time.Millisecond)
	got := s.summary(t0.Add(time.Second), 10*time.Second)
	if len(got) != 2 {
		t.Fatalf("summary %+v", got)
	}
	if c := got[0]; c.Kind != "client" || c.Region != "east" || c.Count != 100 || c.P99ms != 99 || c.PerSecond != 10 {
		t.Fatalf("client east: %+v", c)
	}
	if r := got[1]; r.Kind != "replica" || r.Region != "west" || r.Count != 1 || r.P99ms != 40 {
		t.Fatalf("replica west: %+v", r)
	}
	for i := 0; i < 2*maxSamples; i++ {
		s.add("replica", "west", t0, time.Millisecond)
	}
	if n := len(s.by[statKey{"replica", "west"}]); n != maxSamples {
		t.Fatalf("%d samples kept, want %d", n, maxSamples)
	}
}
