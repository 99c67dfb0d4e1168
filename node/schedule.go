package node

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/repair"
	"github.com/meridian-kv/meridian/wan"
)

// scheduleInterval is how often the repair scheduler asks repair.Plan
// what to do.
const scheduleInterval = 10 * time.Second

// runRepairScheduler carries out repair.Plan's tasks for the datacenter
// pairs this node coordinates: for each pair, the node with the smallest id
// among the usable members of the pair's first datacenter. Each task's
// progress is checkpointed, so a restart or a closing window resumes where
// it stopped.
func (n *Node) runRepairScheduler() {
	n.every(scheduleInterval, func() { n.ScheduleRound(n.bgCtx) })
}

// every runs f once per interval, the first time one interval from now,
// until the node stops; it is a background task (n.bg).
func (n *Node) every(interval time.Duration, f func()) {
	defer n.bg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-n.bgCtx.Done():
			return
		case <-t.C:
		}
		f()
	}
}

// ScheduleRound runs one round of the repair scheduler now, at the node's
// clock: it plans (repair.Plan) the tasks of the pairs this node
// coordinates whose windows are open, carries them out, and returns how
// many it planned and how many completed. The scheduler calls it every
// scheduleInterval; tests call it with an injected clock.
func (n *Node) ScheduleRound(ctx context.Context) (planned, completed int) {
	windows, background := n.repairWindows()
	if background && n.repairer.settling(n.cfg.Repair.Background.Period) {
		// A node that just started leaves the ring alone for one step of
		// the background pace (45 min by default) before its first pass:
		// a cluster being set up, or a node that restarts, gets time to
		// settle, and the next due segment comes soon enough.
		windows = nil
	}
	var progress []repair.Progress
	for ks := range n.cfg.Keyspaces {
		for _, w := range windows {
			pair := repair.CanonicalPair(w.Pair)
			if !n.coordinatesRepairOf(pair[0]) {
				continue
			}
			p, err := n.repairer.loadProgress(ks, pair)
			if err != nil {
				n.log.Error("repair checkpoint", "err", err)
				continue
			}
			progress = append(progress, p)
		}
	}
	tasks := n.repairer.plan(windows, progress, n.allUsable)
	for _, task := range tasks {
		tctx, cancel := context.WithCancel(ctx)
		if !task.WindowEnd.IsZero() {
			// The window ends on the node's clock; the context's deadline
			// is on the machine's.
			tctx, cancel = context.WithTimeout(ctx, task.WindowEnd.Sub(n.now()))
		}
		st, err := n.runTask(tctx, task)
		cancel()
		if err != nil {
			if task.Kind == repair.TaskPass {
				n.repairer.skip(task)
			}
			n.log.Warn("scheduled repair of a segment failed; the pass goes on with the next segments and retries this one later", "pair", task.Pair, "keyspace", task.Keyspace, "range", task.Range.String(), "retry_after", passSkipFor, "err", err)
			continue
		}
		completed++
		n.log.Info("scheduled repair task done", "pair", task.Pair, "keyspace", task.Keyspace, "range", task.Range.String(), "keys_fixed", st.KeysFixed, "bytes", st.BytesSent)
	}
	return len(tasks), completed
}

// repairWindows returns the windows the scheduler follows: the
// configured ones or, with none configured, the background repair's (one
// always-open window per pair of datacenters, each with itself included,
// passing once per Background.Period with its segments spread over half
// of it), reporting which.
func (n *Node) repairWindows() (ws []repair.Window, background bool) {
	bg := n.cfg.Repair.Background
	if len(n.cfg.Repair.Windows) > 0 || bg.Disabled {
		return n.cfg.Repair.windows(), false
	}
	period := bg.Period
	if period <= 0 {
		period = DefaultBackgroundPeriod
	}
	dcs := n.ring().DCs()
	for i, a := range dcs {
		for _, b := range dcs[i:] {
			ws = append(ws, repair.Window{Pair: [2]string{a, b}, BytesPerSecond: bg.BytesPerSecond, PassInterval: period, Spread: period / 2})
		}
	}
	return ws, true
}

// backgroundStep is the time between two segments of a background pass.
func backgroundStep(period time.Duration) time.Duration {
	if period <= 0 {
		period = DefaultBackgroundPeriod
	}
	return period / 2 / repairSegments
}

// allUsable reports whether every member of the pair's datacenters is
// usable (up, verified).
func (n *Node) allUsable(pair [2]string) bool {
	for _, m := range n.ring().Members() {
		if (m.DC == pair[0] || m.DC == pair[1]) && !n.peers.usable(m.ID) {
			return false
		}
	}
	return true
}

// runTask repairs one planned range and records it.
func (n *Node) runTask(ctx context.Context, task repair.Task) (repair.RangeStats, error) {
	start := n.now()
	st, err := n.repairPairRange(ctx, task.Keyspace, task.Pair, task.Range, task.BytesPerSecond)
	if err != nil {
		return st, err
	}
	if err := n.repairer.recordRepair(task, st, start); err != nil {
		return st, err
	}
	return st, n.repairer.clearDirty(task, start)
}

// dirtyName is where the set of ranges left diverging by dropped hints
// lives in the store.
const dirtyName = "dirty"

// DirtyRanges returns how many ranges dropped hints left for repair.
func (n *Node) DirtyRanges() int { return n.repairer.dirtyCount() }

// coordinatesRepairOf reports whether this node coordinates the repairs of
// pairs whose first datacenter is dc.
func (n *Node) coordinatesRepairOf(dc string) bool {
	var ids []string
	for _, m := range n.ring().Members() {
		if m.DC == dc && n.peers.usable(m.ID) {
			ids = append(ids, m.ID)
		}
	}
	sort.Strings(ids)
	return len(ids) > 0 && ids[0] == n.cfg.ID
}

func dedupe(ps []repair.Progress) []repair.Progress {
	seen := map[string]bool{}
	var out []repair.Progress
	for _, p := range ps {
		k := p.Keyspace + "|" + p.Pair[0] + "|" + p.Pair[1]
		if !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out
}

// repairBudget paces this node's repair sends per destination region.
type repairBudget struct {
	mu   sync.Mutex
	lims map[string]*repair.Limiter
}

// repairStatus merges every member's checkpoints of keyspace ks (the node
// coordinating a pair can change) into one status per datacenter pair.
// Without every member's checkpoints a pair's status could be stale, so
// if any member does not answer it fails with CodeUnavailable naming every
// member that did not and why.
func (n *Node) repairStatus(ctx context.Context, ks string) (*api.RepairStatusResponse, *api.ClientError) {
	res, missing, cerr := n.repairStatusFrom(ctx, ks)
	if cerr != nil {
		return nil, cerr
	}
	if len(missing) > 0 {
		return nil, api.Errorf(api.CodeUnavailable, "meridian: repair status needs every member's checkpoints; not from %s", strings.Join(missing, "; "))
	}
	return res, nil
}

// repairStatusFrom is repairStatus from the members that answer: missing
// says which did not, and why. Without them a pair's last full pass may be
// older than the one a missing member completed.
func (n *Node) repairStatusFrom(ctx context.Context, ks string) (res *api.RepairStatusResponse, missing []string, cerr *api.ClientError) {
	if _, cerr := n.keyspace(ks); cerr != nil {
		return nil, nil, cerr
	}
	var (
		mu  sync.Mutex
		all []repair.Progress
		g   errgroup.Group // no shared context: one failure must not cancel the other calls
	)
	add := func(ps []repair.Progress) {
		mu.Lock()
		all = append(all, ps...)
		mu.Unlock()
	}
	members := n.ring().Members()
	errs := make([]error, len(members))
	for i, m := range members {
		if m.ID == n.cfg.ID {
			ps, err := n.RepairProgress(ks)
			if err != nil {
				return nil, nil, api.Errorf(api.CodeInternal, "meridian: %v", err)
			}
			add(ps)
			continue
		}
		g.Go(func() error {
			err := n.peers.call(ctx, m.ID, typeRepairProgress, &repairRun{Keyspace: ks}, func(e *wan.Envelope) error {
				var r repairProgressReply
				if err := e.Decode(&r); err != nil {
					return err
				}
				var ps []repair.Progress
				for _, b := range r.Progress {
					p, err := repair.DecodeProgress(b)
					if err != nil {
						return err
					}
					ps = append(ps, p)
				}
				add(ps)
				return nil
			})
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", m.ID, err)
			}
			return errs[i]
		})
	}
	if g.Wait() != nil {
		for _, err := range errs {
			if err != nil {
				missing = append(missing, err.Error())
			}
		}
	}
	best := map[[2]string]repair.Progress{}
	for _, p := range all {
		b, ok := best[p.Pair]
		if !ok || p.LastFullCompleted.After(b.LastFullCompleted) || (p.LastFullCompleted.Equal(b.LastFullCompleted) && p.Total.KeysCompared > b.Total.KeysCompared) {
			best[p.Pair] = p
		}
	}
	res = &api.RepairStatusResponse{}
	now := n.now()
	for pair, p := range best {
		st := api.PairRepairStatus{Pair: pair[0] + "/" + pair[1], PassFraction: p.Fraction(),
			KeysCompared: p.Total.KeysCompared, KeysFixed: p.Total.KeysFixed, BytesSent: p.Total.BytesSent}
		if !p.LastFullCompleted.IsZero() {
			st.LastFullCompleted = p.LastFullCompleted.Unix()
		}
		windows, background := n.repairWindows()
		st.Schedule = "on demand"
		for _, w := range windows {
			if repair.CanonicalPair(w.Pair) == pair {
				st.Schedule = "windows"
				if background {
					st.Schedule = fmt.Sprintf("background: a full pass every %v, %d bytes/s", w.PassInterval, w.BytesPerSecond)
				}
				if repair.InWindow(w, now) {
					st.NextWindow = -1
				} else if start, _ := repair.NextWindow(w, now); st.NextWindow == 0 || (st.NextWindow > 0 && start.Unix() < st.NextWindow) {
					st.NextWindow = start.Unix()
				}
			}
		}
		res.Pairs = append(res.Pairs, st)
	}
	sort.Slice(res.Pairs, func(i, j int) bool { return res.Pairs[i].Pair < res.Pairs[j].Pair })
	return res, missing, nil
}

// passSkipFor is how long the scheduler leaves a segment whose repair
// failed before it tries it again.
const passSkipFor = time.Hour

// passSkips remembers, in memory, the segments of passes whose scheduled
// repair failed (a replica unreachable, an object too large to send), so
// that one bad segment does not hold up the rest of its pass: Plan sees
// them as done for passSkipFor, then they are planned again. The pass
// itself completes only once they are really repaired, so tombstone
// collection and the read gate still wait for them.
type passSkips struct {
	mu    sync.Mutex
	until map[string]passSkip
}

type passSkip struct {
	r     repair.Range
	until time.Time
}

func skipKey(pair [2]string, ks string) string { return pair[0] + "|" + pair[1] + "|" + ks }

func (s *passSkips) add(task repair.Task, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.until == nil {
		s.until = map[string]passSkip{}
	}
	s.until[skipKey(task.Pair, task.Keyspace)+"|"+task.Range.String()] = passSkip{r: task.Range, until: now.Add(passSkipFor)}
}

// apply returns p with the segments skipped at now added to its Done, for
// planning only (it is never saved).
func (s *passSkips) apply(p repair.Progress, now time.Time) repair.Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	prefix := skipKey(p.Pair, p.Keyspace) + "|"
	var extra []repair.Range
	for k, sk := range s.until {
		if !now.Before(sk.until) {
			delete(s.until, k)
			continue
		}
		if strings.HasPrefix(k, prefix) {
			extra = append(extra, sk.r)
		}
	}
	if len(extra) > 0 {
		p.Done = append(slices.Clone(p.Done), extra...)
	}
	return p
}
