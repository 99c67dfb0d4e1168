package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Report is a whole invocation: where and how it ran, the machine's
// ceilings, and every run.
type Report struct {
	// Command is the command line that produced the report.
	Command string `json:"command"`
	// Machine describes the host (free text: CPU model, cores, OS).
	Machine string `json:"machine"`
	// Setup describes the target (e.g. "3 meridian node processes, one
	// region, N=3").
	Setup       string    `json:"setup"`
	Calibration []Ceiling `json:"calibration,omitempty"`
	Runs        []*Result `json:"runs"`
	// Ratios compare a target's runs to a reference target's runs of the
	// same point (threads or rate, and consistency).
	Ratios []Ratio `json:"ratios,omitempty"`
}

// Ceiling is one calibration figure: what this machine does at best for
// a building block of a request.
type Ceiling struct {
	Name        string  `json:"name"`
	Description string  `json:"description"`
	Threads     int     `json:"threads"`
	OpsPerSec   float64 `json:"ops_per_sec"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
}

// Ratio is one target's throughput over another's at the same
// point.
type Ratio struct {
	Target     string  `json:"target"`
	Reference  string  `json:"reference"`
	Point      string  `json:"point"`
	Throughput float64 `json:"throughput"`
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Point names a run's place in a sweep ("16 threads" or "500 ops/s").
func (r *Result) Point() string {
	if r.Mode == ModeOpen {
		return fmt.Sprintf("%g ops/s", r.Rate)
	}
	return fmt.Sprintf("%d threads", r.Threads)
}

// WriteMarkdown writes the report as Markdown tables.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	if r.Machine != "" {
		fmt.Fprintf(&b, "Machine: %s  \n", r.Machine)
	}
	if r.Setup != "" {
		fmt.Fprintf(&b, "Setup: %s  \n", r.Setup)
	}
	if r.Command != "" {
		fmt.Fprintf(&b, "Command: `%s`\n", r.Command)
	}
	b.WriteString("\n| target | workload | keys | consistency | load | ops/s | op | op ops/s | p50 ms | p99 ms | p99.9 ms | errors | server CPU µs/op | client CPU µs/op |\n")
	b.WriteString("|---|---|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, run := range r.Runs {
		cpu, ccpu := "–", "–"
		if run.CPU != nil {
			cpu = fmt.Sprintf("%.0f", run.CPU.MicrosPerOp)
			if run.CPU.ClientMicrosPerOp > 0 {
				ccpu = fmt.Sprintf("%.0f", run.CPU.ClientMicrosPerOp)
			}
		}
		load := run.Point()
		if run.Unfinished > 0 {
			load += fmt.Sprintf(" (behind: %d never started, waited up to %.0f ms)", run.Unfinished, run.UnfinishedWaitMs)
		}
		for i, o := range run.PerOp {
			total := ""
			if i == 0 {
				total = fmt.Sprintf("%.0f", run.OpsPerSec)
			} else {
				cpu, ccpu = "", ""
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %.0f | %.2f | %.2f | %.2f | %d | %s | %s |\n",
				run.Target, run.Workload, run.Distribution, o.Consistency, load, total, o.Op, o.OpsPerSec,
				o.P50Ms, o.P99Ms, o.P999Ms, o.Errors, cpu, ccpu)
		}
	}
	if len(r.Calibration) > 0 {
		b.WriteString("\nCalibration (this machine's ceilings):\n\n| ceiling | threads | ops/s | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|\n")
		for _, c := range r.Calibration {
			fmt.Fprintf(&b, "| %s | %d | %.0f | %.3f | %.3f |\n", c.Description, c.Threads, c.OpsPerSec, c.P50Ms, c.P99Ms)
		}
	}
	if shares := r.shares(); shares != "" {
		b.WriteString(shares)
	}
	if len(r.Ratios) > 0 {
		b.WriteString("\n| target / reference | point | throughput ratio |\n|---|---|---:|\n")
		for _, q := range r.Ratios {
			fmt.Fprintf(&b, "| %s / %s | %s | %.2f |\n", q.Target, q.Reference, q.Point, q.Throughput)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// shares states each closed-loop run's throughput as a fraction of every
// ceiling measured at its thread count.
func (r *Report) shares() string {
	var names []string
	for _, c := range r.Calibration {
		if !slices.Contains(names, c.Name) {
			names = append(names, c.Name)
		}
	}
	var rows strings.Builder
	for _, run := range r.Runs {
		if run.Mode != ModeClosed {
			continue
		}
		cells := make([]string, len(names))
		found := false
		for i, n := range names {
			cells[i] = "–"
			for _, c := range r.Calibration {
				if c.Name == n && c.Threads == run.Threads && c.OpsPerSec > 0 {
					cells[i] = fmt.Sprintf("%.1f %%", 100*run.OpsPerSec/c.OpsPerSec)
					found = true
				}
			}
		}
		if found {
			fmt.Fprintf(&rows, "| %s | %s | %s | %.0f | %s |\n", run.Target, run.Consistency, run.Point(), run.OpsPerSec, strings.Join(cells, " | "))
		}
	}
	if rows.Len() == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\nThroughput as a share of each ceiling at the same thread count:\n\n| target | consistency | load | ops/s | " + strings.Join(names, " | ") + " |\n|---|---|---|---:|")
	b.WriteString(strings.Repeat("---:|", len(names)) + "\n")
	b.WriteString(rows.String())
	return b.String()
}

// Ratios pairs every run of target with the run of reference at the same
// point (mode, threads or rate, and consistency) and gives target's
// throughput over reference's.
func Ratios(runs []*Result, target, reference string) []Ratio {
	var out []Ratio
	for _, a := range runs {
		if a.Target != target {
			continue
		}
		for _, b := range runs {
			if b.Target == reference && b.Mode == a.Mode && b.Point() == a.Point() && b.Consistency == a.Consistency && b.OpsPerSec > 0 {
				out = append(out, Ratio{Target: target, Reference: reference, Point: a.Consistency + ", " + a.Point(), Throughput: a.OpsPerSec / b.OpsPerSec})
			}
		}
	}
	return out
}
