package bench

import (
	"slices"
	"sync"
	"time"
)

// Run modes.
const (
	ModeClosed = "closed"
	ModeOpen   = "open"
)

// Result is what one run measured.
type Result struct {
	// Target names what was driven (meridian, etcd); set by the caller.
	Target       string  `json:"target"`
	Workload     string  `json:"workload"`
	Distribution string  `json:"distribution"`
	Records      uint64  `json:"records"`
	ValueSize    int     `json:"value_size"`
	Consistency  string  `json:"consistency"`
	Mode         string  `json:"mode"`
	Threads      int     `json:"threads"`
	Rate         float64 `json:"rate,omitempty"`
	// Seconds is the run's wall time, from the first operation issued to
	// the last one finished.
	Seconds float64 `json:"seconds"`
	// Ops counts completed operations (errors included), OpsPerSec the
	// successful ones per second, over every operation kind.
	Ops       int64   `json:"ops"`
	Errors    int64   `json:"errors"`
	OpsPerSec float64 `json:"ops_per_sec"`
	// Unfinished counts open-loop operations scheduled before the end but
	// never started: the target fell behind the rate. They are not in the
	// percentiles; UnfinishedWaitMs is the longest any of them had waited
	// when the run ended (their latency would have been more).
	Unfinished       int64   `json:"unfinished,omitempty"`
	UnfinishedWaitMs float64 `json:"unfinished_wait_ms,omitempty"`
	// PerOp holds one entry per operation kind, sorted by name.
	PerOp []OpResult `json:"per_op"`
	// CPU, when known, is the target's CPU time during the run.
	CPU *CPU `json:"cpu,omitempty"`
}

// OpResult is one operation kind's figures. Latencies are in
// milliseconds; an open-loop run's count from the intended start.
type OpResult struct {
	Op          string  `json:"op"`
	Consistency string  `json:"consistency"`
	Count       int64   `json:"count"`
	Errors      int64   `json:"errors"`
	OpsPerSec   float64 `json:"ops_per_sec"`
	MeanMs      float64 `json:"mean_ms"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	P999Ms      float64 `json:"p999_ms"`
	MaxMs       float64 `json:"max_ms"`
	// FirstError is the text of one failed operation's error.
	FirstError string `json:"first_error,omitempty"`
}

// CPU is the CPU time (user + system) the target's processes spent during
// a run.
type CPU struct {
	// Processes counts the processes measured.
	Processes int     `json:"processes"`
	Seconds   float64 `json:"seconds"`
	// MicrosPerOp is Seconds over the run's successful operations, in µs.
	MicrosPerOp float64 `json:"us_per_op"`
	// Cores is Seconds over the run's wall time: cores kept busy.
	Cores float64 `json:"cores"`
	// ClientSeconds and ClientMicrosPerOp are the same for the process
	// that generated the load, when known (it shares the machine).
	ClientSeconds     float64 `json:"client_seconds,omitempty"`
	ClientMicrosPerOp float64 `json:"client_us_per_op,omitempty"`
}

// SetCPU fills r.CPU from the CPU seconds its target's processes and the
// load generator (0: unknown) spent.
func (r *Result) SetCPU(processes int, seconds, client float64) {
	c := &CPU{Processes: processes, Seconds: seconds, ClientSeconds: client}
	if ok := r.Ops - r.Errors; ok > 0 {
		c.MicrosPerOp = seconds / float64(ok) * 1e6
		c.ClientMicrosPerOp = client / float64(ok) * 1e6
	}
	if r.Seconds > 0 {
		c.Cores = seconds / r.Seconds
	}
	r.CPU = c
}

// recorder collects latencies per operation; safe for concurrent use.
type recorder struct {
	mu         sync.Mutex
	ops        map[Op]*opStats
	unfinished int64
	lateMax    time.Duration
}

type opStats struct {
	h        *Latencies
	errors   int64
	firstErr string
}

func newRecorder() *recorder {
	return &recorder{ops: map[Op]*opStats{}}
}

func (r *recorder) record(op Op, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.ops[op]
	if s == nil {
		s = &opStats{h: NewLatencies()}
		r.ops[op] = s
	}
	s.h.Record(d)
	if err != nil {
		s.errors++
		if s.firstErr == "" {
			s.firstErr = err.Error()
		}
	}
}

func (r *recorder) neverStarted(waited time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unfinished++
	r.lateMax = max(r.lateMax, waited)
}

func ms(us int64) float64 { return float64(us) / 1000 }

// fill writes the recorded figures into res.
func (r *recorder) fill(res *Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res.Unfinished = r.unfinished
	res.UnfinishedWaitMs = float64(r.lateMax.Microseconds()) / 1000
	names := make([]Op, 0, len(r.ops))
	for op := range r.ops {
		names = append(names, op)
	}
	slices.Sort(names)
	var ok int64
	for _, op := range names {
		s := r.ops[op]
		h := s.h
		o := OpResult{
			Op: string(op), Consistency: res.Consistency,
			Count: h.Count(), Errors: s.errors, FirstError: s.firstErr,
			MeanMs: h.MeanMs(), P50Ms: h.QuantileMs(50),
			P99Ms: h.QuantileMs(99), P999Ms: h.QuantileMs(99.9), MaxMs: h.MaxMs(),
		}
		if res.Seconds > 0 {
			o.OpsPerSec = float64(o.Count-o.Errors) / res.Seconds
		}
		res.Ops += o.Count
		res.Errors += o.Errors
		ok += o.Count - o.Errors
		res.PerOp = append(res.PerOp, o)
	}
	if res.Seconds > 0 {
		res.OpsPerSec = float64(ok) / res.Seconds
	}
}
