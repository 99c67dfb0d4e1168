package node

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/meridian-kv/meridian/codec"
	"github.com/meridian-kv/meridian/internal/wait"
	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/repair"
	"github.com/meridian-kv/meridian/store"
	"github.com/meridian-kv/meridian/telemetry"
)

// repairer is the repair room of a node: the state that repair sessions
// and their orchestration share. It owns the responder's tree cache, the
// slots that bound concurrent scans and sessions, the per-region byte
// budget, the checkpoints of each datacenter pair (and the lock that
// serialises their updates), the dirty set of ranges dropped hints left
// diverging, the pass segments skipped after a failure, and the book of
// completed sessions per peer that tombstone collection and the read gate
// rely on.
//
// The protocol itself — sessions (repair.go, repair_stream.go), the
// scheduler (schedule.go), repair status — runs on the node, which
// carries its messages through peers; it reaches this room's state only
// through the methods below. Handoff marks a range whose hint was dropped
// with markDirty.
type repairer struct {
	// Wiring, not owned.
	cfg     *Config
	log     *slog.Logger
	now     func() time.Time
	store   *store.Store
	metrics *telemetry.Metrics

	trees      treeCache    // repair trees built for peers' sessions
	slots      *repairSlots // bounds on concurrent repair work
	budget     repairBudget // repair bytes per destination region
	progressMu sync.Mutex   // serialises checkpoint updates
	dirtyMu    sync.Mutex
	dirty      *repair.DirtySet // ranges dropped hints left diverging
	started    time.Time        // now() at Start: background repair waits a step after it (schedule.go)
	passSkips  passSkips        // segments whose scheduled repair failed, skipped for a while (schedule.go)
	synced     syncBook         // repair sessions completed per peer (tombstones.go)
}

// newRepairer returns the repair room of node n, its dirty set read from
// the store.
func newRepairer(n *Node) (*repairer, error) {
	rp := &repairer{cfg: &n.cfg, log: n.log, now: n.now, store: n.store, metrics: n.metrics, slots: newRepairSlots(), started: n.now()}
	if err := rp.loadDirty(); err != nil {
		return nil, err
	}
	return rp, nil
}

// close releases the repair slots (see repairSlots.close).
func (rp *repairer) close() { rp.slots.close() }

// settling reports whether the node started less than one step of the
// background pace ago (see ScheduleRound).
func (rp *repairer) settling(period time.Duration) bool {
	return rp.now().Before(rp.started.Add(backgroundStep(period)))
}

// plan plans the scheduler's tasks (repair.Plan over windows and
// progress, with the skipped pass segments taken as done) and appends
// the tasks of dirty ranges whose datacenters ready says are all usable.
func (rp *repairer) plan(windows []repair.Window, progress []repair.Progress, ready func(pair [2]string) bool) []repair.Task {
	now := rp.now()
	for i, p := range progress {
		progress[i] = rp.passSkips.apply(p, now)
	}
	rp.dirtyMu.Lock()
	defer rp.dirtyMu.Unlock()
	tasks := repair.Plan(windows, dedupe(progress), rp.dirty, now)
	return append(tasks, rp.dirtyTasks(tasks, ready)...)
}

// skip leaves a pass segment whose repair failed for passSkipFor.
func (rp *repairer) skip(task repair.Task) { rp.passSkips.add(task, rp.now()) }

// dirtyCount returns how many ranges dropped hints left for repair.
func (rp *repairer) dirtyCount() int {
	rp.dirtyMu.Lock()
	defer rp.dirtyMu.Unlock()
	return rp.dirty.Len()
}

// cachedTree returns the responder's tree under key, dropping the trees
// older than treeCacheTTL (real time, now).
func (rp *repairer) cachedTree(key string, now time.Time) (*repair.Tree, bool) {
	c := &rp.trees
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.trees {
		if now.Sub(e.built) > treeCacheTTL {
			delete(c.trees, k)
		}
	}
	e, ok := c.trees[key]
	return e.t, ok
}

// keepTree caches a responder's tree built at built (real time) from a
// scan started at at (the node's clock).
func (rp *repairer) keepTree(key string, t *repair.Tree, built, at time.Time) {
	c := &rp.trees
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.trees == nil {
		c.trees = map[string]cachedTree{}
	}
	c.trees[key] = cachedTree{t: t, built: built, at: at}
}

// treeLevel reads hashes of a cached tree; trees are read one at a time.
func (rp *repairer) treeLevel(ctx context.Context, t *repair.Tree, level int, indexes []int) ([][]byte, error) {
	rp.trees.mu.Lock()
	defer rp.trees.mu.Unlock()
	return t.Level(ctx, level, indexes)
}

// treeSize returns how many keys the initiator's last tree of a session
// (keyspace, range, peer) held.
func (rp *repairer) treeSize(sizeKey string) (int, bool) {
	rp.trees.mu.Lock()
	defer rp.trees.mu.Unlock()
	size, ok := rp.trees.sizes[sizeKey]
	return size, ok
}

// setTreeSize records how many keys an initiator's tree held.
func (rp *repairer) setTreeSize(sizeKey string, size int) {
	rp.trees.mu.Lock()
	defer rp.trees.mu.Unlock()
	if rp.trees.sizes == nil {
		rp.trees.sizes = map[string]int{}
	}
	rp.trees.sizes[sizeKey] = size
}

// syncedWithAll reports whether this node completed a session started
// after since (unix nanos) with every one of peers over segment seg of
// keyspace ks, and names one it has not.
func (rp *repairer) syncedWithAll(ks string, peers []string, seg int, since int64) (bool, string, error) {
	rp.synced.mu.Lock()
	defer rp.synced.mu.Unlock()
	for _, id := range peers {
		t, err := rp.syncTimesLocked(ks, id)
		if err != nil {
			return false, id, err
		}
		if t[seg] <= since {
			return false, id, nil
		}
	}
	return true, "", nil
}

// syncedSince reports whether this node completed a session with peer
// over segment seg of keyspace ks that started after gate (unix nanos).
func (rp *repairer) syncedSince(ks, peer string, seg int, gate int64) (bool, error) {
	rp.synced.mu.Lock()
	defer rp.synced.mu.Unlock()
	t, err := rp.syncTimesLocked(ks, peer)
	if err != nil {
		return false, err
	}
	return t[seg] > gate, nil
}

// dirtyTasks returns, for each pair and keyspace with dirty ranges that
// planned has no task for, a task repairing its oldest one now: this node
// recorded them (it dropped the hints), whether or not it coordinates the
// pair's scheduled repairs and whether or not a window is open. Dirty
// ranges are small and known to diverge; waiting for a window would leave
// them silently diverging. The caller holds dirtyMu.
func (rp *repairer) dirtyTasks(planned []repair.Task, ready func(pair [2]string) bool) []repair.Task {
	type pk struct {
		pair [2]string
		ks   string
	}
	seen := map[pk]bool{}
	for _, t := range planned {
		seen[pk{t.Pair, t.Keyspace}] = true
	}
	var out []repair.Task
	for _, d := range rp.dirty.Entries() {
		k := pk{repair.CanonicalPair(d.Pair), d.Keyspace}
		if seen[k] || !ready(k.pair) {
			continue // the replica that missed the writes is not back yet
		}
		seen[k] = true
		out = append(out, repair.Task{Kind: repair.TaskDirty, Pair: k.pair, Keyspace: d.Keyspace, Range: d.Range, BytesPerSecond: repair.DefaultBytesPerSecond})
	}
	return out
}

// loadDirty reads the dirty set at start.
func (rp *repairer) loadDirty() error {
	b, err := rp.store.RepairState(dirtyName)
	if err != nil {
		return err
	}
	if b == nil {
		rp.dirty = repair.NewDirtySet(repairSegments)
		return nil
	}
	rp.dirty, err = repair.DecodeDirtySet(b)
	return err
}

// markDirty records that the write of key in keyspace ks will not reach
// its replica in datacenter dc by handoff (its hint was dropped), so the
// next repair of every pair of dc with the keyspace's datacenters covers
// the key's range first: hints degrade into targeted repair, not silent
// divergence.
func (rp *repairer) markDirty(ks, dc string, key []byte) {
	rp.markDirtyToken(ks, dc, placement.KeyToken(key))
}

// markDirtyToken is markDirty for a key known by its token.
func (rp *repairer) markDirtyToken(ks, dc string, tok uint64) {
	k, ok := rp.cfg.Keyspaces[ks]
	if !ok {
		return
	}
	r := repair.NewRange(tok, tok+1)
	if tok == ^uint64(0) {
		r = repair.NewRange(tok, 0)
	}
	now := rp.now()
	rp.dirtyMu.Lock()
	defer rp.dirtyMu.Unlock()
	for other, reps := range k.Replication {
		if reps == 0 {
			continue
		}
		if err := rp.dirty.Add(ks, [2]string{dc, other}, r, now, now); err != nil {
			rp.log.Error("recording a dirty range", "err", err)
		}
	}
	rp.saveDirtyLocked()
}

// clearDirty forgets the dirty ranges a completed task covered.
func (rp *repairer) clearDirty(task repair.Task, started time.Time) error {
	rp.dirtyMu.Lock()
	defer rp.dirtyMu.Unlock()
	if rp.dirty.Clear(task.Pair, task.Keyspace, task.Range, started) == 0 {
		return nil
	}
	return rp.saveDirtyLocked()
}

func (rp *repairer) saveDirtyLocked() error {
	b, err := repair.EncodeDirtySet(rp.dirty)
	if err == nil {
		err = rp.store.PutRepairState(dirtyName, b)
	}
	if err != nil {
		rp.log.Error("saving the dirty ranges", "err", err)
	}
	return err
}

// recordRepair checkpoints a completed task in the pair's progress.
func (rp *repairer) recordRepair(task repair.Task, st repair.RangeStats, start time.Time) error {
	rp.progressMu.Lock()
	defer rp.progressMu.Unlock()
	cp, err := rp.loadProgress(task.Keyspace, task.Pair)
	if err != nil {
		return err
	}
	if err := cp.Record(task, st, start, rp.now()); err != nil {
		return err
	}
	b, err := repair.EncodeProgress(cp)
	if err != nil {
		return err
	}
	other := metric.WithAttributes(telemetry.ReplicaDC(task.Pair[1]))
	rp.metrics.RepairRanges.Add(context.Background(), 1, other)
	rp.metrics.RepairKeysFixed.Add(context.Background(), st.KeysFixed, other)
	return rp.store.PutRepairState(progressName(task.Keyspace, task.Pair), b)
}

// pace waits until bytes may be sent to dc at rate bytes per second (0: no
// limit). Sessions to one region share its limiter; a session asking for
// another rate resets it.
func (rp *repairer) pace(ctx context.Context, dc string, bytes, rate int64) error {
	if rate <= 0 {
		return nil
	}
	rp.budget.mu.Lock()
	if rp.budget.lims == nil {
		rp.budget.lims = map[string]*repair.Limiter{}
	}
	l := rp.budget.lims[dc]
	if l == nil || l.Rate != rate {
		l = &repair.Limiter{Rate: rate}
		rp.budget.lims[dc] = l
	}
	d := l.Reserve(time.Now(), bytes)
	rp.budget.mu.Unlock()
	if d <= 0 {
		return nil
	}
	return wait.Sleep(ctx, d)
}

// scanning runs f, which scans the store for repair, within a CPU slot.
// The slot then stays taken, idle, scanIdle times as long as f ran, so
// repair leaves foreground requests most of the node's CPU however many
// sessions wait on the WAN.
func (rp *repairer) scanning(ctx context.Context, f func() error) error {
	if err := acquire(ctx, rp.slots.cpu); err != nil {
		return err
	}
	start := time.Now()
	err := f()
	rp.slots.releaseCPU(time.Since(start))
	return err
}

// dropTree forgets the responder's tree of a finished session, so the
// next session builds a fresh one, and returns when its scan started.
func (rp *repairer) dropTree(ks string, r repair.Range, depth int, peer string) (time.Time, bool) {
	key := treeKey(ks, r, depth, peer)
	rp.trees.mu.Lock()
	defer rp.trees.mu.Unlock()
	e, ok := rp.trees.trees[key]
	delete(rp.trees.trees, key)
	return e.at, ok
}

func (rp *repairer) loadProgress(ks string, pair [2]string) (repair.Progress, error) {
	b, err := rp.store.RepairState(progressName(ks, pair))
	if err != nil || b == nil {
		// A pass has repairSegments tasks, the unit of checkpoints and of
		// the session records tombstone collection relies on.
		p := repair.NewProgress(pair, ks)
		p.Segments = repairSegments
		return p, err
	}
	return repair.DecodeProgress(b)
}

// syncTimes returns the session times with peer, loading them on first use.
// The caller holds rp.synced.mu.
func (rp *repairer) syncTimesLocked(ks, peer string) ([]int64, error) {
	name := syncName(ks, peer)
	if t, ok := rp.synced.times[name]; ok {
		return t, nil
	}
	t := make([]int64, repairSegments)
	b, err := rp.store.RepairState(name)
	if err != nil {
		return nil, err
	}
	if b != nil {
		if err := codec.Unmarshal(b, &t); err != nil {
			return nil, fmt.Errorf("repair session times with %s: %w", peer, err)
		}
		if len(t) != repairSegments {
			return nil, fmt.Errorf("repair session times with %s: %d segments, want %d", peer, len(t), repairSegments)
		}
	}
	if rp.synced.times == nil {
		rp.synced.times = map[string][]int64{}
	}
	rp.synced.times[name] = t
	return t, nil
}

// recordSynced notes that a session with peer over r, started at start,
// completed: every segment r covers whole is now synced as of start.
func (rp *repairer) recordSynced(ks, peer string, r repair.Range, start time.Time) error {
	rp.synced.mu.Lock()
	defer rp.synced.mu.Unlock()
	t, err := rp.syncTimesLocked(ks, peer)
	if err != nil {
		return err
	}
	changed := false
	for i, seg := range repair.Segments(repairSegments) {
		if covers(r, seg) && start.UnixNano() > t[i] {
			t[i] = start.UnixNano()
			changed = true
		}
	}
	if !changed {
		return nil
	}
	b, err := codec.Marshal(t)
	if err != nil {
		return err
	}
	return rp.store.PutRepairState(syncName(ks, peer), b)
}

// syncName is where the session times with one peer are kept.
func syncName(ks, peer string) string { return fmt.Sprintf("synced/%s/%s", ks, peer) }

// syncBook holds, per keyspace and peer, the start time (this node's clock)
// of the last session completed with that peer over each segment.
type syncBook struct {
	mu    sync.Mutex
	times map[string][]int64 // syncName -> unix nanos per segment
}
