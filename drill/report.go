package drill

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/meridian-kv/meridian/bench"
	"github.com/meridian-kv/meridian/history"
)

// Report is what a drill measured; docs/drill.md defines every field.
type Report struct {
	Region      string  `json:"region"`
	Driver      string  `json:"driver"`
	Workload    string  `json:"workload"`
	Consistency string  `json:"consistency"`
	DownSeconds float64 `json:"down_seconds"`

	// The history's verdict (history.Check over every replica's state).
	Acked       int `json:"acked"`
	AckedLost   int `json:"acked_lost"`
	Resurrected int `json:"resurrected"`
	Phantoms    int `json:"phantoms"`
	Failed      int `json:"failed"`
	Unknown     int `json:"unknown"`
	Reads       int `json:"reads"`
	KeysChecked int `json:"keys_checked"`

	RPOWrites  int     `json:"rpo_writes"`
	RPOSeconds float64 `json:"rpo_seconds"`
	// RPOChecked counts the writes acknowledged before the loss, whose
	// presence in the lost region was checked.
	RPOChecked int `json:"rpo_checked"`

	ConvergeSeconds float64 `json:"converge_seconds"`
	Converged       bool    `json:"converged"`
	SafeToFailBack  bool    `json:"safe_to_fail_back"`
	// FailBack says why fail-back is (not) safe.
	FailBack string `json:"fail_back"`

	// HintsSteady is the most hints pending in the baseline: the copies
	// of writes in flight, which every write keeps until its replicas
	// acknowledge.
	HintsSteady           int `json:"hints_steady"`
	HintsPendingPeak      int `json:"hints_pending_peak"`
	HintsPendingAtRestore int `json:"hints_pending_at_restore"`
	HintsPendingEnd       int `json:"hints_pending_end"`
	// HintsDelivered is the hints pending at the restore that the
	// cluster no longer held at convergence.
	HintsDelivered int `json:"hints_delivered"`

	Baseline Phase `json:"baseline"`
	Outage   Phase `json:"outage"`
	Recovery Phase `json:"recovery"`

	// Moments, and the seconds per second of the run.
	Start       time.Time `json:"start"`
	LossAt      time.Time `json:"loss_at"`
	RestoreAt   time.Time `json:"restore_at"`
	ConvergedAt time.Time `json:"converged_at"`
	Timeline    []Second  `json:"timeline"`

	// Findings lists the first violations found, if any.
	Findings []string `json:"findings,omitempty"`

	// History is every operation the workload recorded (not in the JSON).
	History []history.Op `json:"-"`
}

// Phase is what the workload saw during one phase.
type Phase struct {
	Seconds   float64 `json:"seconds"`
	Ops       int     `json:"ops"`
	Errors    int     `json:"errors"`
	ErrorRate float64 `json:"error_rate"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	// Regions are the same figures by the region the client lives in.
	Regions map[string]RegionPhase `json:"regions"`
}

// RegionPhase is one client region's share of a phase.
type RegionPhase struct {
	Ops          int     `json:"ops"`
	Errors       int     `json:"errors"`
	Availability float64 `json:"availability"`
	P99Ms        float64 `json:"p99_ms"`
}

// Second is one second of the run: operations that ended in it.
type Second struct {
	T         float64 `json:"t"` // seconds since the start
	OK        int     `json:"ok"`
	Errors    int     `json:"errors"`
	P99Ms     float64 `json:"p99_ms"`
	HintsPend int     `json:"hints_pending"` // -1: not known that second
}

// OK reports whether nothing acknowledged was lost and nothing deleted
// came back.
func (r *Report) OK() bool { return r.AckedLost == 0 && r.Resurrected == 0 && r.Phantoms == 0 }

// phaseOf names the phase an operation that started at t belongs to.
func (r *Report) phaseOf(t time.Time) *Phase {
	switch {
	case t.Before(r.LossAt):
		return &r.Baseline
	case t.Before(r.RestoreAt):
		return &r.Outage
	}
	return &r.Recovery
}

// fillPhases computes the phases and the timeline from ops; regionOf
// names the client region of an operation's Client.
func (r *Report) fillPhases(ops []history.Op, regionOf func(client int) string, end time.Time) {
	type acc struct {
		lat     *bench.Latencies
		regions map[string]*bench.Latencies
	}
	accs := map[*Phase]*acc{}
	for _, p := range []*Phase{&r.Baseline, &r.Outage, &r.Recovery} {
		accs[p] = &acc{lat: bench.NewLatencies(), regions: map[string]*bench.Latencies{}}
		p.Regions = map[string]RegionPhase{}
	}
	r.Baseline.Seconds = r.LossAt.Sub(r.Start).Seconds()
	r.Outage.Seconds = r.RestoreAt.Sub(r.LossAt).Seconds()
	r.Recovery.Seconds = end.Sub(r.RestoreAt).Seconds()
	secs := int(math.Ceil(end.Sub(r.Start).Seconds()))
	r.Timeline = make([]Second, max(secs, 1))
	perSec := make([]*bench.Latencies, len(r.Timeline))
	for i := range r.Timeline {
		r.Timeline[i].T = float64(i)
		perSec[i] = bench.NewLatencies()
	}
	for _, op := range ops {
		if op.Start.Before(r.Start) || op.Start.After(end) {
			continue
		}
		p := r.phaseOf(op.Start)
		a := accs[p]
		region := regionOf(op.Client)
		rp := p.Regions[region]
		p.Ops++
		rp.Ops++
		d := op.End.Sub(op.Start)
		if op.Outcome != history.OK {
			p.Errors++
			rp.Errors++
		}
		a.lat.Record(d)
		if a.regions[region] == nil {
			a.regions[region] = bench.NewLatencies()
		}
		a.regions[region].Record(d)
		p.Regions[region] = rp
		if i := int(op.End.Sub(r.Start) / time.Second); i >= 0 && i < len(r.Timeline) {
			if op.Outcome == history.OK {
				r.Timeline[i].OK++
			} else {
				r.Timeline[i].Errors++
			}
			perSec[i].Record(d)
		}
	}
	for p, a := range accs {
		if p.Ops > 0 {
			p.ErrorRate = float64(p.Errors) / float64(p.Ops)
			p.P50Ms, p.P99Ms = a.lat.QuantileMs(50), a.lat.QuantileMs(99)
		}
		if p.Seconds > 0 {
			p.OpsPerSec = float64(p.Ops-p.Errors) / p.Seconds
		}
		for region, rp := range p.Regions {
			if rp.Ops > 0 {
				rp.Availability = float64(rp.Ops-rp.Errors) / float64(rp.Ops)
				rp.P99Ms = a.regions[region].QuantileMs(99)
			}
			p.Regions[region] = rp
		}
	}
	for i := range r.Timeline {
		if perSec[i].Count() > 0 {
			r.Timeline[i].P99Ms = perSec[i].QuantileMs(99)
		}
	}
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteMarkdown writes the report as Markdown.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	verdict := "PASS"
	if !r.OK() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "## Failover drill: region %s down %v (%s driver) — %s\n\n", r.Region, time.Duration(r.DownSeconds*float64(time.Second)).Round(time.Second), r.Driver, verdict)
	fmt.Fprintf(&b, "Workload %s at %s; loss at %s, restore at %s.\n\n", r.Workload, r.Consistency, r.LossAt.UTC().Format("15:04:05.000"), r.RestoreAt.UTC().Format("15:04:05.000"))
	fmt.Fprintf(&b, "| verdict | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| acknowledged writes | %d |\n", r.Acked)
	fmt.Fprintf(&b, "| acknowledged writes lost | **%d** |\n", r.AckedLost)
	fmt.Fprintf(&b, "| deletes resurrected | **%d** |\n", r.Resurrected)
	fmt.Fprintf(&b, "| RPO: acknowledged writes not in %s at the loss | %d of %d |\n", r.Region, r.RPOWrites, r.RPOChecked)
	fmt.Fprintf(&b, "| RPO, seconds | %.3f |\n", r.RPOSeconds)
	conv := fmt.Sprintf("%.1f s", r.ConvergeSeconds)
	if !r.Converged {
		conv = fmt.Sprintf("not converged after %.1f s", r.ConvergeSeconds)
	}
	fmt.Fprintf(&b, "| time to converge after the restore | %s |\n", conv)
	fmt.Fprintf(&b, "| safe to fail back | %v (%s) |\n", r.SafeToFailBack, r.FailBack)
	fmt.Fprintf(&b, "| hints pending: baseline level, peak, at restore, at the end | %d, %d, %d, %d |\n", r.HintsSteady, r.HintsPendingPeak, r.HintsPendingAtRestore, r.HintsPendingEnd)
	fmt.Fprintf(&b, "| hints delivered after the restore | %d |\n", r.HintsDelivered)
	fmt.Fprintf(&b, "| writes failed / of unknown outcome | %d / %d |\n\n", r.Failed, r.Unknown)
	fmt.Fprintf(&b, "| phase | seconds | ops | errors | error rate | ok ops/s | p50 ms | p99 ms |\n|---|---|---|---|---|---|---|---|\n")
	for _, ph := range []struct {
		name string
		p    *Phase
	}{{"baseline", &r.Baseline}, {"outage", &r.Outage}, {"recovery", &r.Recovery}} {
		p := ph.p
		fmt.Fprintf(&b, "| %s | %.1f | %d | %d | %.2f %% | %.0f | %.1f | %.1f |\n", ph.name, p.Seconds, p.Ops, p.Errors, 100*p.ErrorRate, p.OpsPerSec, p.P50Ms, p.P99Ms)
	}
	fmt.Fprintf(&b, "\nAvailability by client region (share of operations that succeeded):\n\n| region | baseline | outage | recovery |\n|---|---|---|---|\n")
	for _, region := range r.regions() {
		fmt.Fprintf(&b, "| %s", region)
		for _, p := range []*Phase{&r.Baseline, &r.Outage, &r.Recovery} {
			rp := p.Regions[region]
			fmt.Fprintf(&b, " | %.2f %% of %d (p99 %.0f ms)", 100*rp.Availability, rp.Ops, rp.P99Ms)
		}
		b.WriteString(" |\n")
	}
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "\n- %s", f)
	}
	if len(r.Findings) > 0 {
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) regions() []string {
	var out []string
	for _, p := range []*Phase{&r.Baseline, &r.Outage, &r.Recovery} {
		for region := range p.Regions {
			if !slices.Contains(out, region) {
				out = append(out, region)
			}
		}
	}
	slices.Sort(out)
	return out
}

// WritePlot draws throughput and p99 over time, one panel each, with the
// loss, the restore and the convergence marked.
func (r *Report) WritePlot(w io.Writer) error {
	var ok, errs, p99 bench.PlotSeries
	ok.Name, errs.Name, p99.Name = "ok ops/s", "errors/s", "p99 ms"
	for _, s := range r.Timeline {
		ok.Points = append(ok.Points, [2]float64{s.T, float64(s.OK)})
		errs.Points = append(errs.Points, [2]float64{s.T, float64(s.Errors)})
		p99.Points = append(p99.Points, [2]float64{s.T, s.P99Ms})
	}
	at := func(t time.Time) float64 { return t.Sub(r.Start).Seconds() }
	marks := []bench.Mark{{X: at(r.LossAt), Label: "loss"}, {X: at(r.RestoreAt), Label: "restore"}}
	if r.Converged {
		marks = append(marks, bench.Mark{X: at(r.ConvergedAt), Label: "converged"})
	}
	// The time axis ends at the run's last second, rounded up to 10 s.
	xmax := 10 * math.Ceil(float64(len(r.Timeline))/10)
	return bench.WriteCharts(w,
		bench.Chart{XLabel: "seconds", YLabel: "operations per second", Series: []bench.PlotSeries{ok, errs}, Marks: marks, XMax: xmax},
		bench.Chart{XLabel: "seconds", YLabel: "p99 latency (ms)", Series: []bench.PlotSeries{p99}, Marks: marks, XMax: xmax},
	)
}
