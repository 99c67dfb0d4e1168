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
	// Past maxSamples the oldest give way: the last maxSamples are kept.
	for i := 1; i <= 2*maxSamples+10; i++ {
		s.add("replica", "south", t0, time.Duration(i)*time.Millisecond)
	}
	r := s.by[statKey{"replica", "south"}]
	if n := len(r.buf); n != maxSamples {
		t.Fatalf("%d samples kept, want %d", n, maxSamples)
	}
	least := r.buf[0].d
	for _, smp := range r.buf {
		least = min(least, smp.d)
	}
	if want := time.Duration(maxSamples+11) * time.Millisecond; least != want {
		t.Fatalf("oldest sample kept %v, want %v", least, want)
	}
}
