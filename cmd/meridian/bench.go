package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/meridian-kv/meridian/bench"
	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/devcluster"
)

type benchFlags struct {
	workload     string
	distribution string
	records      uint64
	valueSize    int
	threads      []int
	rates        []float64
	duration     time.Duration
	consistency  []string
	loadThreads  int
	seed         uint64
	jsonOut      string
	markdownOut  string
	cpu          bool
	calibrate    bool
	calibDur     time.Duration
	dir          string
	basePort     int
	noEncryption bool
}

func newBenchCmd(g *globalFlags) *cobra.Command {
	f := &benchFlags{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput and latency with YCSB workloads (against --config's cluster, or a local one it starts)",
		Long: `bench loads --records keys, then runs a YCSB workload (A: 50 % reads / 50 %
updates, B: 95/5, C: reads only, F: reads and read-modify-writes, W: updates
only) for --duration at each thread count of --threads (closed loop) or, with
--rate, at each fixed rate (open loop: latency counts from the time the
schedule meant an operation to start, so a target that falls behind shows
its queueing delay). It reports ops/s and p50/p99/p99.9 latency per
operation and consistency level, as Markdown on standard output and, if
asked, in --json and --markdown files.

Without --config it starts its own cluster: 3 meridian node processes on
loopback in one region, 3 replicas (like meridian dev --regions east
--config-only, then meridian node for each), and stops it at the end; --cpu
then reports the nodes' CPU time per operation. --calibrate measures this
machine's ceilings in the same run: raw Pebble synced writes and raw QUIC
request/responses of Meridian's message sizes at the same thread counts.

Updates write with the newest causal context the benchmark has seen for the
key (from its last read or write of it), as an application holding its
contexts does, so they replace the value rather than pile up siblings;
read-modify-writes read and write back with the read's context.`,
		Example: `  meridian bench --workload A --threads 16,64 --duration 30s --cpu --calibrate --markdown perf.md
  meridian bench --workload B --rate 500,1000 --threads 64 --duration 20s
  meridian --config client.yaml bench --workload C --consistency ONE,LOCAL_QUORUM`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runBench(cmd, g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.workload, "workload", "A", "YCSB workload: A, B, C, F or W (write-only)")
	fl.StringVar(&f.distribution, "distribution", "uniform", "key chooser: uniform or zipfian (YCSB's scrambled zipfian, 0.99)")
	fl.Uint64Var(&f.records, "records", 10000, "records loaded before the runs, and the key space of the runs")
	fl.IntVar(&f.valueSize, "value-size", 1000, "value size in bytes")
	fl.IntSliceVar(&f.threads, "threads", []int{16}, "thread counts to sweep (closed loop); with --rate, the largest bounds the operations in flight")
	fl.Float64SliceVar(&f.rates, "rate", nil, "open-loop rates in operations per second to sweep (instead of a closed loop)")
	fl.DurationVar(&f.duration, "duration", 30*time.Second, "length of each run")
	fl.StringSliceVar(&f.consistency, "consistency", []string{"LOCAL_QUORUM"}, "consistency levels to sweep (reads and writes alike)")
	fl.IntVar(&f.loadThreads, "load-threads", 32, "concurrent writers while loading the records")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the operation and key choices")
	fl.StringVar(&f.jsonOut, "json", "", "write the report as JSON to this file")
	fl.StringVar(&f.markdownOut, "markdown", "", "write the report as Markdown to this file")
	fl.BoolVar(&f.cpu, "cpu", false, "report the node processes' CPU time per operation (only for the cluster bench starts)")
	fl.BoolVar(&f.calibrate, "calibrate", false, "also measure raw Pebble synced writes and raw QUIC request/responses at the same thread counts")
	fl.DurationVar(&f.calibDur, "calibrate-duration", 5*time.Second, "length of each calibration run")
	fl.StringVar(&f.dir, "dir", "", "directory for the started cluster's certificates, configurations, data and logs (default: a temporary directory, removed afterwards)")
	fl.IntVar(&f.basePort, "base-port", 7400, "first UDP port of the started cluster")
	fl.BoolVar(&f.noEncryption, "no-encryption", false, "start the cluster without encryption at rest")
	return cmd
}

func (f *benchFlags) validate() error {
	var errs []error
	if f.duration <= 0 {
		errs = append(errs, errors.New("--duration must be positive"))
	}
	if f.valueSize < 0 {
		errs = append(errs, errors.New("--value-size must not be negative"))
	}
	if len(f.threads) == 0 {
		errs = append(errs, errors.New("--threads needs at least one thread count"))
	}
	for _, t := range f.threads {
		if t <= 0 {
			errs = append(errs, fmt.Errorf("--threads %d: thread counts must be positive", t))
		}
	}
	for _, r := range f.rates {
		if r <= 0 {
			errs = append(errs, fmt.Errorf("--rate %g: rates must be positive", r))
		}
	}
	if len(f.consistency) == 0 {
		errs = append(errs, errors.New("--consistency needs at least one level"))
	}
	return errors.Join(errs...)
}

func runBench(cmd *cobra.Command, g *globalFlags, f *benchFlags) error {
	if err := f.validate(); err != nil {
		return err
	}
	w, err := bench.ParseWorkload(f.workload)
	if err != nil {
		return err
	}
	gen, err := bench.NewGenerator(bench.Spec{Workload: w, Records: f.records, ValueSize: f.valueSize, Distribution: bench.Distribution(f.distribution)})
	if err != nil {
		return err
	}
	if f.cpu && g.config != "" {
		return errors.New("--cpu measures the node processes bench starts itself: drop --config, or read your nodes' CPU time yourself")
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out, status := cmd.OutOrStdout(), newStatusLine(cmd.ErrOrStderr())

	report := &bench.Report{Command: "meridian " + strings.Join(os.Args[1:], " "), Machine: machine()}
	clientFile := g.config
	var cluster *localCluster
	if clientFile == "" {
		status.note("starting 3 node processes…")
		cluster, err = startLocalCluster(ctx, f)
		if err != nil {
			return err
		}
		defer cluster.stop()
		clientFile = cluster.clientFile
		enc := "on"
		if f.noEncryption {
			enc = "off"
		}
		report.Setup = fmt.Sprintf("3 meridian node processes on loopback, one region, 3 replicas, encryption at rest %s, client in the same machine", enc)
	} else {
		report.Setup = "the cluster of " + clientFile
	}
	cfg, err := client.LoadConfig(clientFile)
	if err != nil {
		return err
	}
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	if cluster != nil {
		if err := waitClusterUp(ctx, c, len(cluster.procs)); err != nil {
			return fmt.Errorf("%w\nnode logs: %s", err, cluster.dir)
		}
	}
	d := newMeridianDriver(c)

	var done atomic.Int64
	status.start(func() string { return fmt.Sprintf("loading %d records: %d", f.records, done.Load()) })
	err = bench.Load(ctx, d, gen.Spec(), f.loadThreads, f.consistency[0], &done)
	status.stop()
	if err != nil {
		return err
	}
	status.note(fmt.Sprintf("loaded %d records of %d bytes", f.records, f.valueSize))

	if f.calibrate {
		parent := f.dir
		if cluster != nil {
			parent = cluster.dir
		}
		report.Calibration, err = calibrate(ctx, f, status, parent, d.context(bench.Key(0)))
		if err != nil {
			return err
		}
	}

	base := bench.RunOptions{Duration: f.duration, Seed: f.seed, Done: &done}
	for _, p := range bench.Points(base, f.threads, f.rates, f.consistency) {
		done.Store(0)
		began := time.Now()
		label := fmt.Sprintf("meridian %s %s %s", w, p.Consistency, pointLabel(p))
		status.start(func() string {
			el := time.Since(began)
			return fmt.Sprintf("%s: %4.1fs/%v  %d ops  %.0f ops/s", label, el.Seconds(), f.duration, done.Load(), float64(done.Load())/el.Seconds())
		})
		var cpu0, self0 float64
		if f.cpu {
			self0 = selfCPUSeconds()
			cpu0, err = cluster.cpuSeconds()
			if err != nil {
				status.stop()
				return err
			}
		}
		res, err := bench.Run(ctx, d, gen, p)
		status.stop()
		if err != nil {
			return err
		}
		res.Target = "meridian"
		if f.cpu {
			cpu1, err := cluster.cpuSeconds()
			if err != nil {
				return err
			}
			res.SetCPU(len(cluster.procs), cpu1-cpu0, selfCPUSeconds()-self0)
		}
		status.note(fmt.Sprintf("%s: %.0f ops/s, %d errors", label, res.OpsPerSec, res.Errors))
		report.Runs = append(report.Runs, res)
	}

	if err := report.WriteMarkdown(out); err != nil {
		return err
	}
	if f.jsonOut != "" {
		if err := writeFileWith(f.jsonOut, report.WriteJSON); err != nil {
			return err
		}
	}
	if f.markdownOut != "" {
		if err := writeFileWith(f.markdownOut, report.WriteMarkdown); err != nil {
			return err
		}
	}
	return nil
}

func pointLabel(p bench.RunOptions) string {
	if p.Rate > 0 {
		return fmt.Sprintf("%g ops/s (%d in flight at most)", p.Rate, p.Threads)
	}
	return fmt.Sprintf("%d threads", p.Threads)
}

func writeFileWith(path string, write func(io.Writer) error) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(fh); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

// machine describes this host for the report.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = fmt.Sprintf(", load average %s %s %s at the start", f[0], f[1], f[2])
		}
	}
	return fmt.Sprintf("%s, %d CPUs%s, %s%s", model, runtime.NumCPU(), kernel, runtime.Version(), load)
}

// meridianDriver drives a Meridian cluster through the Go client. It keeps
// the newest causal context it has seen per key, so an update supersedes
// what this benchmark last read or wrote there instead of adding a
// sibling.
type meridianDriver struct {
	c        *client.Client
	contexts sync.Map // string(key) -> string
}

func newMeridianDriver(c *client.Client) *meridianDriver { return &meridianDriver{c: c} }

func (d *meridianDriver) context(key []byte) string {
	v, _ := d.contexts.Load(string(key))
	s, _ := v.(string)
	return s
}

func (d *meridianDriver) Read(ctx context.Context, key []byte, consistency string) error {
	res, err := d.c.Get(ctx, key, &client.ReadOptions{Consistency: consistency})
	if err != nil {
		return err
	}
	if res.Context != "" {
		d.contexts.Store(string(key), res.Context)
	}
	return nil
}

func (d *meridianDriver) Update(ctx context.Context, key, value []byte, consistency string) error {
	return d.put(ctx, key, value, consistency, d.context(key))
}

func (d *meridianDriver) ReadModifyWrite(ctx context.Context, key, value []byte, consistency string) error {
	res, err := d.c.Get(ctx, key, &client.ReadOptions{Consistency: consistency})
	if err != nil {
		return err
	}
	return d.put(ctx, key, value, consistency, res.Context)
}

func (d *meridianDriver) put(ctx context.Context, key, value []byte, consistency, causal string) error {
	res, err := d.c.Put(ctx, key, value, &client.WriteOptions{Consistency: consistency, Context: causal})
	if err != nil {
		return err
	}
	d.contexts.Store(string(key), res.Context)
	return nil
}

// localCluster is the cluster bench starts: node processes of this binary.
type localCluster struct {
	dir        string
	temp       bool
	clientFile string
	procs      []*exec.Cmd
}

func startLocalCluster(ctx context.Context, f *benchFlags) (*localCluster, error) {
	lc := &localCluster{dir: f.dir}
	if lc.dir == "" {
		dir, err := os.MkdirTemp("", "meridian-bench-")
		if err != nil {
			return nil, err
		}
		lc.dir, lc.temp = dir, true
	}
	cluster, err := devcluster.Write(devcluster.Options{
		Dir: lc.dir, Regions: []string{"east"}, NodesPerRegion: 3, Replicas: 3,
		BasePort: f.basePort, NoEncryption: f.noEncryption,
	})
	if err != nil {
		lc.stop()
		return nil, err
	}
	lc.clientFile = filepath.Join(lc.dir, "client.yaml")
	if err := writeClientConfig(lc.clientFile, cluster); err != nil {
		lc.stop()
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		lc.stop()
		return nil, err
	}
	for i, file := range cluster.NodeFiles {
		logf, err := os.Create(filepath.Join(lc.dir, cluster.Nodes[i].ID+".log"))
		if err != nil {
			lc.stop()
			return nil, err
		}
		p := exec.Command(exe, "node", "--config", file)
		p.Stdout, p.Stderr = logf, logf
		err = p.Start()
		logf.Close()
		if err != nil {
			lc.stop()
			return nil, err
		}
		lc.procs = append(lc.procs, p)
	}
	return lc, nil
}

// stop ends the node processes (SIGTERM, then SIGKILL after 10s) and
// removes a temporary directory.
func (lc *localCluster) stop() {
	var wg sync.WaitGroup
	for _, p := range lc.procs {
		wg.Go(func() {
			p.Process.Signal(syscall.SIGTERM)
			exited := make(chan struct{})
			go func() { p.Wait(); close(exited) }()
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				p.Process.Kill()
				<-exited
			}
		})
	}
	wg.Wait()
	lc.procs = nil
	if lc.temp {
		os.RemoveAll(lc.dir)
	}
}

// cpuSeconds is the user and system CPU time the node processes have used.
func (lc *localCluster) cpuSeconds() (float64, error) {
	var sum float64
	for _, p := range lc.procs {
		s, err := procCPUSeconds(p.Process.Pid)
		if err != nil {
			return 0, err
		}
		sum += s
	}
	return sum, nil
}

// waitClusterUp polls status until the node the client reaches sees n
// nodes up.
func waitClusterUp(ctx context.Context, c *client.Client, n int) error {
	deadline := time.Now().Add(60 * time.Second)
	last := "no answer"
	for {
		st, err := c.Status(ctx)
		if err == nil {
			up := 0
			for _, s := range st.Nodes {
				if s.State == "up" {
					up++
				}
			}
			if up == n {
				return nil
			}
			last = fmt.Sprintf("%d of %d nodes up", up, n)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the started cluster did not come up within a minute (%s)", last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
