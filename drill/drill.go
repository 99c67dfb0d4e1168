package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/history"
	"github.com/meridian-kv/meridian/internal/wait"
	"github.com/meridian-kv/meridian/workload"
)

// Options configure a drill. Zero fields take the defaults noted.
type Options struct {
	// Client is the cluster's client configuration; its nodes are the
	// drill's, its credentials must hold the admin permission.
	Client *client.Config
	// Region is the region to lose, for Down.
	Region string
	Down   time.Duration
	// Baseline is how long the workload runs before the loss; default
	// 10 s.
	Baseline time.Duration
	// Workload names the mix: "A" (default: 50 % reads, 45 %
	// read-modify-writes, 5 % deletes), "B" (95 % reads, 4 %
	// read-modify-writes, 1 % deletes) or "W" (writes only: 90 %
	// read-modify-writes, 10 % deletes).
	Workload string
	// Rate bounds the workload's steps per second, all regions together;
	// default 200.
	Rate float64
	// WorkersPerRegion run in each region, each with a client whose home
	// is that region; default 4.
	WorkersPerRegion int
	// Keys is how many keys the workload spreads over; default 500.
	Keys int
	// Consistency of reads and writes; default LOCAL_QUORUM.
	Consistency string
	// Driver takes the region away; default the fence.
	Driver Driver
	// Dial makes the drill's clients; nil means client.Dial.
	Dial Dialer
	// ConvergeTimeout bounds the wait for convergence after the restore;
	// default 3 minutes.
	ConvergeTimeout time.Duration
	// Poll is how often the cluster's status is polled; default 1 s.
	Poll time.Duration
	// Progress, if set, receives a line per poll.
	Progress io.Writer
	// Seed drives the workload's choices.
	Seed uint64
}

// mixes are the workloads by name.
var mixes = map[string]workload.Mix{
	"A": {ReadModifyWrite: 45, Delete: 5},
	"B": {ReadModifyWrite: 4, Delete: 1},
	"W": {ReadModifyWrite: 90, Delete: 10},
}

func (o *Options) withDefaults() error {
	if o.Client == nil || len(o.Client.Nodes) == 0 {
		return errors.New("drill: the client configuration lists no nodes")
	}
	if o.Down <= 0 {
		return errors.New("drill: --down must be positive")
	}
	if o.Baseline <= 0 {
		o.Baseline = 10 * time.Second
	}
	if o.Workload == "" {
		o.Workload = "A"
	}
	o.Workload = strings.ToUpper(o.Workload)
	if _, ok := mixes[o.Workload]; !ok {
		return fmt.Errorf("drill: unknown workload %q (A, B or W)", o.Workload)
	}
	if o.Rate <= 0 {
		o.Rate = 200
	}
	if o.WorkersPerRegion <= 0 {
		o.WorkersPerRegion = 4
	}
	if o.Keys <= 0 {
		o.Keys = 500
	}
	if o.Consistency == "" {
		o.Consistency = "LOCAL_QUORUM"
	}
	if o.ConvergeTimeout <= 0 {
		o.ConvergeTimeout = 3 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	regions := regionsOf(o.Client)
	if !slices.Contains(regions, o.Region) {
		return fmt.Errorf("drill: region %q has no node in the client configuration (regions: %v)", o.Region, regions)
	}
	if len(regions) < 2 {
		return errors.New("drill: losing the only region leaves nothing to fail over to")
	}
	if o.Driver == nil {
		f := NewFence(o.Client, o.Region, o.Dial)
		f.For = o.Down + 2*time.Minute
		o.Driver = f
	}
	return nil
}

// regionsOf lists the regions of cfg's nodes in the order they appear.
func regionsOf(cfg *client.Config) []string {
	var out []string
	for _, n := range cfg.Nodes {
		if !slices.Contains(out, n.DC) {
			out = append(out, n.DC)
		}
	}
	return out
}

// status is the latest poll of the cluster's status.
type status struct {
	at       time.Time
	hints    int // -1: some node's unknown
	known    int // the hints of the nodes that answered
	up, all  int
	downList []string
	err      error
}

// Run runs the drill and returns its report. An error means the drill
// could not run or finish (the report, if not nil, holds what it
// measured); a report that is not OK means acknowledged writes were lost
// or deletes undone.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.withDefaults(); err != nil {
		return nil, err
	}
	regions := regionsOf(o.Client)
	var clients []*client.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	dialIn := func(region string) (*client.Client, error) {
		cfg := *o.Client
		cfg.DC, cfg.Regions = region, nil
		c, err := o.Dial.dial(&cfg)
		if err == nil {
			clients = append(clients, c)
		}
		return c, err
	}
	var workers []*client.Client
	for _, region := range regions {
		c, err := dialIn(region)
		if err != nil {
			return nil, err
		}
		workers = append(workers, c)
	}
	// The drill's own requests go to a region that stays.
	home := regions[0]
	if home == o.Region {
		home = regions[1]
	}
	admin, err := dialIn(home)
	if err != nil {
		return nil, err
	}
	if c, ok := o.Driver.(io.Closer); ok {
		defer c.Close()
	}

	start := time.Now()
	rep := &Report{Region: o.Region, Driver: o.Driver.Name(), Workload: o.Workload, Consistency: o.Consistency, DownSeconds: o.Down.Seconds(), Start: start}
	tag := fmt.Sprintf("drill-%d", start.Unix())
	keys := make([]string, o.Keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s/%04d", tag, i)
	}
	rec := &history.Recorder{}
	wctx, stopWorkload := context.WithCancel(ctx)
	defer stopWorkload()
	workloadDone := make(chan struct{})
	go func() {
		defer close(workloadDone)
		workload.Run(wctx, workload.Config{
			Keys: keys, Keyspace: o.Client.Keyspace, Clients: workers, Workers: o.WorkersPerRegion * len(workers), Seed: o.Seed,
			Write: []string{o.Consistency}, Read: []string{o.Consistency}, Mix: mixes[o.Workload], Rate: o.Rate, Prefix: tag + "-",
		}, rec)
	}()
	// Worker w uses workers[w % len]: its region.
	regionOf := func(w int) string { return regions[w%len(regions)] }

	// The poller: the cluster's status, and the progress display.
	var (
		mu        sync.Mutex
		last      status
		peak      int
		steady    int // the most hints pending in the baseline: writes' copies in flight
		hintsAt   = map[int]int{}
		phase     = "baseline"
		phaseAt   = start
		repairMsg string
	)
	setPhase := func(p string) {
		mu.Lock()
		phase, phaseAt = p, time.Now()
		mu.Unlock()
	}
	pollCtx, stopPoll := context.WithCancel(ctx)
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		t := time.NewTicker(o.Poll)
		defer t.Stop()
		seen := 0
		for {
			st := pollStatus(pollCtx, admin, o.Poll*3)
			ops := rec.Ops()
			var ok, bad int
			for _, op := range ops[seen:] {
				if op.Outcome == history.OK {
					ok++
				} else {
					bad++
				}
			}
			seen = len(ops)
			mu.Lock()
			last = st
			peak = max(peak, st.known)
			if phase == "baseline" && st.err == nil && st.up == st.all {
				steady = max(steady, st.hints)
			}
			if st.err == nil {
				hintsAt[int(st.at.Sub(start)/time.Second)] = st.known
			}
			if o.Progress != nil && pollCtx.Err() == nil {
				line := fmt.Sprintf("%-8s %5.1fs  ok %4d  errors %3d  hints pending %5d%s  nodes up %d/%d", phase, time.Since(phaseAt).Seconds(), ok, bad, st.known, unknownMark(st.hints), st.up, st.all)
				if repairMsg != "" {
					line += "  " + repairMsg
				}
				if st.err != nil {
					line += "  (status: " + st.err.Error() + ")"
				}
				fmt.Fprintln(o.Progress, line)
			}
			mu.Unlock()
			select {
			case <-pollCtx.Done():
				return
			case <-t.C:
			}
		}
	}()
	latest := func() status {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
	stopAll := func() {
		stopWorkload()
		<-workloadDone
		stopPoll()
		<-pollDone
	}

	// Baseline.
	if err := wait.Sleep(ctx, o.Baseline); err != nil {
		stopAll()
		return nil, err
	}
	// Loss.
	lossAt, err := o.Driver.Lose(ctx)
	if err != nil {
		o.Driver.Restore(context.WithoutCancel(ctx))
		stopAll()
		return nil, err
	}
	rep.LossAt = lossAt
	setPhase("outage")
	// What the region held at the loss: the keys with writes acknowledged
	// before it.
	var before []history.Op
	for _, op := range rec.Ops() {
		if op.Kind == history.Put && op.Outcome == history.OK && op.End.Before(lossAt) {
			before = append(before, op)
		}
	}
	heldKeys := writtenKeys(before)
	held, heldErr := o.Driver.Held(ctx, heldKeys)
	if err := wait.Sleep(ctx, time.Until(lossAt.Add(o.Down))); err != nil {
		o.Driver.Restore(context.WithoutCancel(ctx))
		stopAll()
		return nil, err
	}
	// Restore.
	if err := o.Driver.Restore(ctx); err != nil {
		stopAll()
		return nil, err
	}
	rep.RestoreAt = time.Now()
	rep.HintsPendingAtRestore = latest().known
	setPhase("recovery")

	// Convergence: every node up and the outage's hints delivered (the
	// hints pending back at the baseline's level: while the workload runs,
	// every write keeps hints for its copies in flight), then a repair of
	// every pair from now, whose completion proves every range compared
	// after the outage.
	mu.Lock()
	rep.HintsSteady = steady
	mu.Unlock()
	// Twice the baseline's peak, and at least drainedFloor, so that a
	// baseline that happened to be polled quiet does not hold the drill
	// until its timeout.
	drained := func(h int) bool { return h >= 0 && h <= max(2*rep.HintsSteady, drainedFloor) }
	deadline := rep.RestoreAt.Add(o.ConvergeTimeout)
	var repairStart time.Time
	repairDone := make(chan error, 1)
	repairRunning := false
	for {
		st := latest()
		if st.at.After(rep.RestoreAt) && st.err == nil && drained(st.hints) && st.up == st.all && !repairRunning && repairStart.IsZero() {
			repairStart, repairRunning = time.Now(), true
			mu.Lock()
			repairMsg = "repair: running"
			mu.Unlock()
			go func() {
				rctx, cancel := context.WithTimeout(ctx, time.Until(deadline))
				defer cancel()
				_, err := admin.Repair(rctx, &client.RepairOptions{Keyspace: o.Client.Keyspace}, nil)
				repairDone <- err
			}()
		}
		select {
		case err := <-repairDone:
			repairRunning = false
			mu.Lock()
			repairMsg = "repair: done"
			mu.Unlock()
			if err != nil {
				mu.Lock()
				repairMsg = "repair failed, again: " + err.Error()
				mu.Unlock()
				repairStart = time.Time{}
				continue
			}
			safe, why := failBack(ctx, admin, o.Client.Keyspace, o.Region, repairStart)
			if st := pollStatus(ctx, admin, o.Poll*3); st.err != nil || !drained(st.hints) || st.up != st.all {
				safe, why = false, fmt.Sprintf("after the repair: %d hints pending (steady level %d), %d of %d nodes up", st.hints, rep.HintsSteady, st.up, st.all)
			}
			if !safe {
				repairStart = time.Time{}
				mu.Lock()
				repairMsg = "not yet safe: " + why
				mu.Unlock()
				continue
			}
			rep.Converged, rep.ConvergedAt, rep.SafeToFailBack, rep.FailBack = true, time.Now(), true, why
		case <-time.After(o.Poll / 2):
		case <-ctx.Done():
			stopAll()
			return nil, ctx.Err()
		}
		if rep.Converged || time.Now().After(deadline) {
			break
		}
	}
	end := time.Now()
	if !rep.Converged {
		rep.ConvergedAt = end
		st := latest()
		rep.FailBack = fmt.Sprintf("not converged within %v: %d hints pending, %d of %d nodes up (down: %v)", o.ConvergeTimeout, st.hints, st.up, st.all, st.downList)
	}
	rep.ConvergeSeconds = rep.ConvergedAt.Sub(rep.RestoreAt).Seconds()
	stopAll()
	mu.Lock()
	rep.HintsPendingPeak = peak
	mu.Unlock()

	// The verdict: every key written, from every replica, once the
	// workload's last writes have settled (hints drained, a repair).
	ops := rec.Ops()
	rep.History = ops
	rep.fillPhases(ops, regionOf, end)
	mu.Lock()
	for i := range rep.Timeline {
		h, ok := hintsAt[i]
		if !ok {
			h = -1
		}
		rep.Timeline[i].HintsPend = h
	}
	mu.Unlock()
	if heldErr != nil {
		return rep, fmt.Errorf("drill: reading what region %s held at the loss: %w", o.Region, heldErr)
	}
	rpo := ComputeRPO(ops, held, lossAt)

	rep.RPOWrites, rep.RPOSeconds, rep.RPOChecked = rpo.Writes, rpo.Seconds, rpo.Checked
	if rpo.Oldest != nil {
		rep.Findings = append(rep.Findings, fmt.Sprintf("RPO: oldest write not in %s at the loss: key %q value %q acknowledged %.3f s before it", o.Region, rpo.Oldest.Key, rpo.Oldest.Value, rpo.Seconds))
	}
	states, err := settle(ctx, admin, o.Client.Keyspace, writtenKeys(ops), 2*time.Minute)
	final := pollStatus(ctx, admin, o.Poll*3)
	rep.HintsPendingEnd = max(final.hints, 0)
	rep.HintsDelivered = max(rep.HintsPendingAtRestore-rep.HintsPendingEnd, 0)
	if err != nil {
		rep.SafeToFailBack = false
		rep.FailBack = "the cluster did not settle after the workload stopped: " + err.Error()
		return rep, fmt.Errorf("drill: reading back every replica: %w", err)
	}
	hr := history.Check(ops, states)
	rep.Acked, rep.Failed, rep.Unknown, rep.Reads = hr.Acked, hr.Failed, hr.Unknown, hr.Reads
	rep.AckedLost, rep.Resurrected, rep.Phantoms = distinct(hr.Lost), distinct(hr.Resurrected), distinct(hr.Phantoms)
	rep.KeysChecked = len(writtenKeys(ops))
	for _, group := range [][]history.Finding{hr.Lost, hr.Resurrected, hr.Phantoms} {
		for i, f := range group {
			if i == 5 {
				break
			}
			rep.Findings = append(rep.Findings, f.String())
		}
	}
	return rep, nil
}

// drainedFloor is the fewest hints pending that count as the baseline's
// level (see Run).
const drainedFloor = 20

// failBack checks the repair watermark: every pair of region with another
// region fully repaired since since.
func failBack(ctx context.Context, c *client.Client, keyspace, region string, since time.Time) (bool, string) {
	rs, err := c.RepairStatus(ctx, keyspace)
	if err != nil {
		return false, "repair status: " + err.Error()
	}
	var pairs []string
	for _, p := range rs.Pairs {
		a, b, _ := strings.Cut(p.Pair, "/")
		if a != region && b != region {
			continue
		}
		if p.LastFullCompleted < since.Unix() {
			return false, fmt.Sprintf("pair %s last fully repaired %s, before the repair that followed the outage", p.Pair, time.Unix(p.LastFullCompleted, 0).UTC().Format(time.RFC3339))
		}
		pairs = append(pairs, p.Pair)
	}
	if len(pairs) == 0 {
		return false, "no repaired pair involves region " + region
	}
	return true, fmt.Sprintf("no hint pending; %s fully repaired after the outage", strings.Join(pairs, ", "))
}

// settle waits until no hint is pending, runs a repair, and reads every
// replica's state of keys (retrying while a replica cannot answer).
func settle(ctx context.Context, c *client.Client, keyspace string, keys []string, limit time.Duration) (map[string]history.State, error) {
	deadline := time.Now().Add(limit)
	for {
		st := pollStatus(ctx, c, 3*time.Second)
		if st.err == nil && st.hints == 0 && st.up == st.all {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("hints still pending (%d) or nodes down (%d of %d up) after %v", st.hints, st.up, st.all, limit)
		}
		if err := wait.Sleep(ctx, 500*time.Millisecond); err != nil {
			return nil, err
		}
	}
	var lastErr error
	for time.Now().Before(deadline) {
		rctx, cancel := context.WithTimeout(ctx, time.Until(deadline))
		_, err := c.Repair(rctx, &client.RepairOptions{Keyspace: keyspace}, nil)
		cancel()
		if err == nil {
			states, err := workload.States(ctx, c, keyspace, keys)
			if err == nil {
				return states, nil
			}
			lastErr = err
		} else {
			lastErr = err
		}
		if err := wait.Sleep(ctx, time.Second); err != nil {
			return nil, err
		}
	}
	return nil, lastErr
}

// pollStatus asks the cluster for every node's state and hints.
func pollStatus(ctx context.Context, c *client.Client, timeout time.Duration) status {
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := c.Status(sctx)
	st := status{at: time.Now(), err: err}
	if err != nil {
		st.hints = -1
		return st
	}
	for _, n := range res.Nodes {
		if n.State == "left" {
			continue
		}
		st.all++
		if n.State == "up" {
			st.up++
		} else {
			st.downList = append(st.downList, n.ID)
		}
		if n.HintsPending < 0 {
			st.hints = -1
		} else {
			st.known += n.HintsPending
			if st.hints >= 0 {
				st.hints += n.HintsPending
			}
		}
	}
	return st
}

// unknownMark flags a hint count that misses unreachable nodes' hints.
func unknownMark(h int) string {
	if h < 0 {
		return "+?"
	}
	return "  "
}

// writtenKeys lists the keys some write touched.
func writtenKeys(ops []history.Op) []string {
	seen := map[string]bool{}
	var out []string
	for _, op := range ops {
		if (op.Kind == history.Put || op.Kind == history.Delete) && !seen[op.Key] {
			seen[op.Key] = true
			out = append(out, op.Key)
		}
	}
	slices.Sort(out)
	return out
}

// distinct counts the distinct key and value pairs of findings (one per
// write, whatever the replicas it is missing from).
func distinct(fs []history.Finding) int {
	seen := map[[2]string]bool{}
	for _, f := range fs {
		seen[[2]string{f.Key, f.Value}] = true
	}
	return len(seen)
}
