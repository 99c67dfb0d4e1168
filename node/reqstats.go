package node

import (
	"slices"
	"sort"
	"sync"
	"time"
)

// reqStats keeps the latencies of the last requests per region, for the
// status page's rates and p99s: client requests this node coordinated
// (under its own region) and its calls to replicas (under theirs). It is
// a view of the last minute, not a metric: /metrics has the histograms.
type reqStats struct {
	mu sync.Mutex
	by map[statKey]*sampleRing
}

type statKey struct{ kind, region string }

type reqSample struct {
	at time.Time
	d  time.Duration
}

// maxSamples bounds the samples kept per kind and region.
const maxSamples = 4096

// sampleRing holds the last maxSamples samples: add overwrites the oldest,
// so recording a request costs the same however many are kept (it runs on
// every client request and every call to a replica).
type sampleRing struct {
	buf  []reqSample
	next int // where the next sample goes once buf is full
}

func (r *sampleRing) add(smp reqSample) {
	if len(r.buf) < maxSamples {
		r.buf = append(r.buf, smp)
		return
	}
	r.buf[r.next] = smp
	r.next = (r.next + 1) % maxSamples
}

func (s *reqStats) add(kind, region string, at time.Time, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.by == nil {
		s.by = map[statKey]*sampleRing{}
	}
	k := statKey{kind, region}
	r := s.by[k]
	if r == nil {
		r = &sampleRing{}
		s.by[k] = r
	}
	r.add(reqSample{at, d})
}

// RegionRate is the rate and p99 latency of one kind of request in one
// region over the last window.
type RegionRate struct {
	Kind      string  `json:"kind"` // "client" (coordinated here) or "replica" (calls to replicas)
	Region    string  `json:"region"`
	PerSecond float64 `json:"per_second"`
	P99ms     float64 `json:"p99_ms"`
	Count     int     `json:"count"`
}

// summary reports each kind and region over the window before now,
// sorted by kind and region.
func (s *reqStats) summary(now time.Time, window time.Duration) []RegionRate {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []RegionRate{}
	for k, r := range s.by {
		var ds []time.Duration
		for _, smp := range r.buf {
			if now.Sub(smp.at) <= window {
				ds = append(ds, smp.d)
			}
		}
		if len(ds) == 0 {
			continue
		}
		slices.Sort(ds)
		p99 := ds[(len(ds)*99+99)/100-1]
		out = append(out, RegionRate{Kind: k.kind, Region: k.region, Count: len(ds),
			PerSecond: float64(len(ds)) / window.Seconds(), P99ms: float64(p99.Microseconds()) / 1000})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Region < out[j].Region
	})
	return out
}
