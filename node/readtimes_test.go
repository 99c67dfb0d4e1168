package node

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// Read times that spread as queueing spreads them (exponentially, mean
// 10 ms): a read waits long enough that about 1 % of reads ask a spare for
// lateness, as a 99th percentile does. (The patience used to be three
// times the moving average, which about 5 % of these times exceed: a
// spare for one read in twenty on a loaded cluster.)
func TestPatienceIsTheNinetyNinthPercentile(t *testing.T) {
	var rt readTimes
	rng := rand.New(rand.NewPCG(1, 2))
	draw := func() time.Duration {
		return time.Duration(-math.Log(1-rng.Float64()) * float64(10*time.Millisecond))
	}
	for range readSamples {
		rt.observe("east", draw())
	}
	late, reads := 0, 20000
	for range reads {
		p := rt.patience([]string{"east"}, time.Minute)
		d := draw()
		if d > p {
			late++
		}
		rt.observe("east", d)
	}
	if frac := float64(late) / float64(reads); frac < 0.003 || frac > 0.02 {
		t.Errorf("%.2f %% of reads outlasted their patience, want about 1 %%", 100*frac)
	}
}

// The patience: 50 ms for a datacenter never timed, never under 2 ms nor
// over a quarter of the request timeout, the slowest of the datacenters
// asked.
func TestPatienceBounds(t *testing.T) {
	var rt readTimes
	if got := rt.patience([]string{"west"}, time.Minute); got != unknownReadTime {
		t.Errorf("untimed datacenter: %v, want %v", got, unknownReadTime)
	}
	rt.observe("east", 100*time.Microsecond)
	if got := rt.patience([]string{"east"}, time.Minute); got != 2*time.Millisecond {
		t.Errorf("fast datacenter: %v, want the 2ms floor", got)
	}
	for range readSamples {
		rt.observe("far", 3*time.Second)
	}
	if got := rt.patience([]string{"east", "far"}, 4*time.Second); got != time.Second {
		t.Errorf("slow datacenter: %v, want a quarter of the 4s timeout", got)
	}
	if got := rt.patience([]string{"east", "far"}, time.Minute); got != 3*time.Second {
		t.Errorf("east and far: %v, want far's 3s", got)
	}
}
