package node

import (
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/meridian-kv/meridian/consistency"
	"github.com/meridian-kv/meridian/placement"
)

// readPlan is whom a read asks: first, per datacenter, the replicas R needs
// there; spares, per datacenter, the others, in the order they are asked
// when one of the first fails or is slow.
type readPlan struct {
	local  string
	first  map[string][]string
	spares map[string][]string
	// farthest are the datacenters asked first, for the patience of the
	// speculation.
	farthest []string
}

type replicaRef struct{ dc, id string }

// planRead chooses the replicas a read asks first: in each datacenter as
// many as need.PerDC asks for (this node first when it is a replica, then
// healthy replicas before unhealthy ones, each in preference order), then,
// for a count over all datacenters (ONE, QUORUM), as many more as it needs,
// from this node's datacenter first.
func (n *Node) planRead(plan placement.Plan, need consistency.Need) *readPlan {
	rp := &readPlan{local: n.cfg.DC, first: map[string][]string{}, spares: map[string][]string{}}
	for dc, reps := range plan.Replicas {
		ids := memberIDs(reps)
		// Stable: preference order within each group.
		sort.SliceStable(ids, func(i, j int) bool { return n.readRank(ids[i]) < n.readRank(ids[j]) })
		k := min(need.PerDC[dc], len(ids))
		if k > 0 {
			rp.first[dc] = ids[:k]
		}
		if k < len(ids) {
			rp.spares[dc] = ids[k:]
		}
	}
	asked := 0
	for _, ids := range rp.first {
		asked += len(ids)
	}
	for asked < need.Total {
		next, ok := rp.takeSpare("")
		if !ok {
			break
		}
		rp.first[next.dc] = append(rp.first[next.dc], next.id)
		asked++
	}
	for dc := range rp.first {
		rp.farthest = append(rp.farthest, dc)
	}
	sort.Strings(rp.farthest)
	return rp
}

// readRank orders the replicas a read asks: this node, then usable peers,
// then the rest.
func (n *Node) readRank(id string) int {
	switch {
	case id == n.cfg.ID:
		return 0
	case n.peers.usable(id):
		return 1
	}
	return 2
}

// takeSpare removes and returns the next spare of dc; for dc "" (a count
// over all datacenters), of this node's datacenter first, then of the
// others in name order.
func (rp *readPlan) takeSpare(dc string) (replicaRef, bool) {
	order := []string{dc}
	if dc == "" {
		order = []string{rp.local}
		var others []string
		for d := range rp.spares {
			if d != rp.local {
				others = append(others, d)
			}
		}
		sort.Strings(others)
		order = append(order, others...)
	}
	for _, d := range order {
		if ids := rp.spares[d]; len(ids) > 0 {
			rp.spares[d] = ids[1:]
			return replicaRef{dc: d, id: ids[0]}, true
		}
	}
	return replicaRef{}, false
}

// waiting returns the datacenters whose count R still waits on, given the
// acks so far: each short of need.PerDC, and "" (any) when the count over
// all datacenters is short.
func (rp *readPlan) waiting(acked map[string]int, need consistency.Need) []string {
	var out []string
	sum := 0
	for dc, k := range need.PerDC {
		if acked[dc] < k {
			out = append(out, dc)
		}
	}
	for _, k := range acked {
		sum += k
	}
	if sum < need.Total {
		out = append(out, "")
	}
	slices.Sort(out)
	return out
}

// readTimes keeps, per datacenter, the times peer replicas took to answer
// the last reads, for the patience of speculative reads: their 99th
// percentile, as Cassandra's default speculative_retry. (Three times their
// moving average, used before, is about the 95th percentile of times that
// spread as queueing spreads them: under load at 64 threads 7 % of reads
// asked a spare, each an extra replica read on a saturated machine.)
type readTimes struct {
	mu  sync.Mutex
	dcs map[string]*readWindow
}

const (
	// unknownReadTime stands for a datacenter no read has been timed in
	// yet.
	unknownReadTime = 50 * time.Millisecond
	// readSamples is how many recent times a datacenter's percentile is
	// taken over; it is taken again after every readRecompute new ones.
	readSamples   = 128
	readRecompute = 16
)

// readWindow is one datacenter's recent read times.
type readWindow struct {
	samples [readSamples]time.Duration // a ring
	n, next int                        // samples held, where the next goes
	fresh   int                        // samples since p99 was taken
	p99     time.Duration
	scratch []time.Duration
}

func (rt *readTimes) observe(dc string, d time.Duration) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.dcs == nil {
		rt.dcs = map[string]*readWindow{}
	}
	w := rt.dcs[dc]
	if w == nil {
		w = &readWindow{}
		rt.dcs[dc] = w
	}
	w.samples[w.next] = d
	w.next = (w.next + 1) % readSamples
	w.n = min(w.n+1, readSamples)
	w.fresh++
	if w.fresh >= readRecompute || w.n < readRecompute {
		w.fresh = 0
		w.scratch = append(w.scratch[:0], w.samples[:w.n]...)
		slices.Sort(w.scratch)
		w.p99 = w.scratch[(99*w.n+99)/100-1]
	}
}

// patience is how long a read waits on the replicas of dcs before it asks
// a spare: the slowest of their 99th percentiles, at least 2 ms and at
// most a quarter of the request timeout.
func (rt *readTimes) patience(dcs []string, timeout time.Duration) time.Duration {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var slowest time.Duration
	for _, dc := range dcs {
		p := unknownReadTime
		if w := rt.dcs[dc]; w != nil {
			p = w.p99
		}
		slowest = max(slowest, p)
	}
	return min(max(slowest, 2*time.Millisecond), timeout/4)
}
