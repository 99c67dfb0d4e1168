package main

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
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
	plotOut      string
	cpu          bool
	calibrate    bool
	calibDur     time.Duration
	dir          string
	basePort     int
	noEncryption bool
	targets      []string
	endpoints    []string
	etcdPids     []int
	etcdTLS      etcdTLS
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
read-modify-writes read and write back with the read's context.

--target meridian,etcd drives an etcd cluster (--endpoints) with the same
workload, threads and value size in the same invocation, the two taking
turns at each point, and prints Meridian's throughput over etcd's: Meridian
at QUORUM-like levels against etcd's linearizable reads, at ONE against its
serializable reads; etcd's writes always go through its raft quorum.`,
		Example: `  meridian bench --workload A --threads 16,64 --duration 30s --cpu --calibrate --markdown perf.md
  meridian bench --workload B --rate 500,1000 --threads 64 --duration 20s
  meridian --config client.yaml bench --workload C --consistency ONE,LOCAL_QUORUM
  deploy/etcd/start.sh && meridian bench --target meridian,etcd --endpoints $(deploy/etcd/start.sh endpoints) --threads 16,64`,
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
	fl.StringVar(&f.plotOut, "plot", "", "draw throughput against p99 latency over the sweep as a PNG in this file")
	fl.BoolVar(&f.cpu, "cpu", false, "report the node processes' CPU time per operation (only for the cluster bench starts)")
	fl.BoolVar(&f.calibrate, "calibrate", false, "also measure raw Pebble synced writes and raw QUIC request/responses at the same thread counts")
	fl.DurationVar(&f.calibDur, "calibrate-duration", 5*time.Second, "length of each calibration run")
	fl.StringVar(&f.dir, "dir", "", "directory for the started cluster's certificates, configurations, data and logs (default: a temporary directory, removed afterwards)")
	fl.IntVar(&f.basePort, "base-port", 7400, "first UDP port of the started cluster")
	fl.BoolVar(&f.noEncryption, "no-encryption", false, "start the cluster without encryption at rest")
	fl.StringSliceVar(&f.targets, "target", []string{"meridian"}, "systems to drive, taking turns at each point: meridian, etcd, or both (meridian,etcd prints their ratios)")
	fl.StringSliceVar(&f.endpoints, "endpoints", nil, "etcd client URLs for --target etcd (deploy/etcd/start.sh starts 3 members on loopback)")
	fl.IntSliceVar(&f.etcdPids, "etcd-pids", nil, "process ids of the etcd members, for --cpu (deploy/etcd/start.sh prints them)")
	fl.StringVar(&f.etcdTLS.CA, "etcd-cacert", "", "CA certificate that signed the etcd members' certificates, for https endpoints (deploy/etcd/start.sh --tls prints it)")
	fl.StringVar(&f.etcdTLS.Cert, "etcd-cert", "", "client certificate to present to etcd (with --etcd-key)")
	fl.StringVar(&f.etcdTLS.Key, "etcd-key", "", "private key of --etcd-cert")
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
	if len(f.targets) == 0 {
		errs = append(errs, errors.New("--target needs meridian, etcd or both"))
	}
	for _, t := range f.targets {
		if t != "meridian" && t != "etcd" {
			errs = append(errs, fmt.Errorf("--target %q: use meridian, etcd or both", t))
		}
	}
	if slices.Contains(f.targets, "etcd") && len(f.endpoints) == 0 {
		errs = append(errs, errors.New("--target etcd needs --endpoints (deploy/etcd/start.sh starts 3 members and prints them)"))
	}
	if err := f.etcdTLS.validate(f.endpoints); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// benchTarget is one system under load in a run.
type benchTarget struct {
	name string
	d    bench.Driver
	// cpu, if set, returns how many processes it measured and the CPU
	// seconds they have used so far.
	cpu func() (int, float64, error)
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
	useMeridian, useEtcd := slices.Contains(f.targets, "meridian"), slices.Contains(f.targets, "etcd")
	if f.cpu && useMeridian && g.config != "" {
		return errors.New("--cpu measures the node processes bench starts itself: drop --config, or read your nodes' CPU time yourself")
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out, status := cmd.OutOrStdout(), newStatusLine(cmd.ErrOrStderr())

	report := &bench.Report{Command: "meridian " + strings.Join(os.Args[1:], " "), Machine: machine()}
	var targets []benchTarget
	var setup []string
	// The load generator's garbage is short-lived, as a node's is: the
	// same collector settings keep it from taking the CPU the targets
	// share with it (both drivers run in this process).
	gc := tuneGC()
	var md *meridianDriver
	var cluster *localCluster
	if useMeridian {
		clientFile := g.config
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
			setup = append(setup, fmt.Sprintf("meridian: 3 node processes on loopback, one region, 3 replicas, encryption at rest %s", enc))
		} else {
			setup = append(setup, "meridian: the cluster of "+clientFile)
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
			if err := waitClusterUp(ctx, cfg, len(cluster.procs)); err != nil {
				return fmt.Errorf("%w\nnode logs: %s", err, cluster.dir)
			}
		}
		md = newMeridianDriver(c)
		t := benchTarget{name: "meridian", d: md}
		if f.cpu {
			t.cpu = func() (int, float64, error) {
				s, err := cluster.cpuSeconds()
				return len(cluster.procs), s, err
			}
		}
		targets = append(targets, t)
	}
	if useEtcd {
		ed, err := newEtcdDriver(f.endpoints, f.etcdTLS)
		if err != nil {
			return err
		}
		defer ed.Close()
		if err := ed.wait(ctx); err != nil {
			return err
		}
		t := benchTarget{name: "etcd", d: ed}
		if f.cpu && len(f.etcdPids) > 0 {
			t.cpu = func() (int, float64, error) {
				var sum float64
				for _, pid := range f.etcdPids {
					s, err := procCPUSeconds(pid)
					if err != nil {
						return 0, 0, err
					}
					sum += s
				}
				return len(f.etcdPids), sum, nil
			}
		}
		transport := "plain TCP"
		if f.etcdTLS.on() {
			transport = "TLS"
		}
		setup = append(setup, fmt.Sprintf("etcd: %d endpoints (%s) over %s; reads at ONE/LOCAL_ONE serializable, others linearizable; writes are plain puts", len(f.endpoints), strings.Join(f.endpoints, ","), transport))
		targets = append(targets, t)
	}
	report.Setup = strings.Join(setup, "; ") + "; the load generator on the same machine, its collector at " + gc.String()

	var done atomic.Int64
	for _, t := range targets {
		done.Store(0)
		status.start(func() string { return fmt.Sprintf("%s: loading %d records: %d", t.name, f.records, done.Load()) })
		err = bench.Load(ctx, t.d, gen.Spec(), f.loadThreads, f.consistency[0], &done)
		status.stop()
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		status.note(fmt.Sprintf("%s: loaded %d records of %d bytes", t.name, f.records, f.valueSize))
	}

	if f.calibrate {
		parent := f.dir
		if cluster != nil {
			parent = cluster.dir
		}
		causal := ""
		if md != nil {
			causal = md.context(bench.Key(0))
		}
		report.Calibration, err = calibrate(ctx, f, status, parent, causal)
		if err != nil {
			return err
		}
	}

	// Targets take turns at each point, so a change in the machine's
	// other load affects both alike.
	base := bench.RunOptions{Duration: f.duration, Seed: f.seed, Done: &done}
	for _, p := range bench.Points(base, f.threads, f.rates, f.consistency) {
		for _, t := range targets {
			res, err := runPoint(ctx, t, gen, p, status, f.duration)
			if err != nil {
				return err
			}
			report.Runs = append(report.Runs, res)
		}
	}
	if useMeridian && useEtcd {
		report.Ratios = bench.Ratios(report.Runs, "meridian", "etcd")
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
	if f.plotOut != "" {
		if err := writeFileWith(f.plotOut, report.WritePlot); err != nil {
			return err
		}
	}
	return nil
}

// runPoint runs one point of the sweep against t, with a status line and
// the CPU time of t's processes and of this one.
func runPoint(ctx context.Context, t benchTarget, gen *bench.Generator, p bench.RunOptions, status *statusLine, d time.Duration) (*bench.Result, error) {
	p.Done.Store(0)
	began := time.Now()
	label := fmt.Sprintf("%s %s %s %s", t.name, gen.Spec().Workload, p.Consistency, pointLabel(p))
	status.start(func() string {
		el := time.Since(began)
		n := p.Done.Load()
		return fmt.Sprintf("%s: %4.1fs/%v  %d ops  %.0f ops/s", label, el.Seconds(), d, n, float64(n)/el.Seconds())
	})
	var cpu0, self0 float64
	if t.cpu != nil {
		self0 = selfCPUSeconds()
		var err error
		if _, cpu0, err = t.cpu(); err != nil {
			status.stop()
			return nil, err
		}
	}
	res, err := bench.Run(ctx, t.d, gen, p)
	status.stop()
	if err != nil {
		return nil, err
	}
	res.Target = t.name
	if t.cpu != nil {
		procs, cpu1, err := t.cpu()
		if err != nil {
			return nil, err
		}
		res.SetCPU(procs, cpu1-cpu0, selfCPUSeconds()-self0)
	}
	status.note(fmt.Sprintf("%s: %.0f ops/s, %d errors", label, res.OpsPerSec, res.Errors))
	return res, nil
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
	contexts contextMap
}

func newMeridianDriver(c *client.Client) *meridianDriver {
	return &meridianDriver{c: c, contexts: contextMap{seed: maphash.MakeSeed()}}
}

func (d *meridianDriver) context(key []byte) string { return d.contexts.load(key) }

// contextMap holds a causal context per key for many workers at once:
// shards of a plain map under their own mutex. Storing a context for a
// key already held allocates nothing, where a sync.Map's Store allocates
// each time.
type contextMap struct {
	seed   maphash.Seed
	shards [64]contextShard
}

type contextShard struct {
	mu sync.Mutex
	m  map[string]*string
}

func (c *contextMap) shard(key []byte) *contextShard {
	return &c.shards[maphash.Bytes(c.seed, key)%uint64(len(c.shards))]
}

func (c *contextMap) load(key []byte) string {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if p := sh.m[string(key)]; p != nil {
		return *p
	}
	return ""
}

func (c *contextMap) store(key []byte, ctx string) {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if p := sh.m[string(key)]; p != nil {
		*p = ctx
		return
	}
	if sh.m == nil {
		sh.m = map[string]*string{}
	}
	held := ctx // a copy: taking ctx's own address would move it to the heap on every call
	sh.m[string(key)] = &held
}

func (d *meridianDriver) Read(ctx context.Context, key []byte, consistency string) error {
	res, err := d.c.Get(ctx, key, &client.ReadOptions{Consistency: consistency})
	if err != nil {
		return err
	}
	if res.Context != "" {
		d.contexts.store(key, res.Context)
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
	d.contexts.store(key, res.Context)
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

// waitClusterUp polls status on every node of cfg until each sees all n
// nodes up (its peers answered its probes: it sends them replica
// traffic), or a minute passes. One node's view is not enough: a
// coordinator that has not yet heard from a peer hints the peer's copy
// instead of writing it, and the first writes then miss their quorum.
func waitClusterUp(ctx context.Context, cfg *client.Config, n int) error {
	deadline := time.Now().Add(60 * time.Second)
	for _, node := range cfg.Nodes {
		one := *cfg
		one.Nodes, one.DC = []client.Node{node}, node.DC
		c, err := client.Dial(ctx, &one)
		if err != nil {
			return err
		}
		err = waitNodeSeesUp(ctx, c, node.ID, n, deadline)
		c.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// waitNodeSeesUp polls the status of the node c talks to until it sees n
// nodes up, or deadline passes.
func waitNodeSeesUp(ctx context.Context, c *client.Client, id string, n int, deadline time.Time) error {
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
			return fmt.Errorf("the started cluster did not come up within a minute (%s sees %s)", id, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
