package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/repair"
	"github.com/meridian-kv/meridian/store"
	"github.com/meridian-kv/meridian/telemetry"
	"github.com/meridian-kv/meridian/version"
)

// Tombstone collection gated on repair, and the read gate of a node back
// from a long outage.
//
// A tombstone may go only once every replica of its key has it, or a
// replica that missed the delete would hand the old value back at the next
// repair. This node knows that from its own repair sessions: a session with
// peer P over a segment, started (on this node's clock) after the
// tombstone arrived here, leaves P holding the tombstone or something
// newer. So a tombstone is collected when this node has completed such a
// session with every other replica of its key, in every datacenter, and
// the grace has passed since it arrived. Only this node's clock is
// compared with itself: there is no cross-node timestamp to skew.
//
// The same records gate reads. A node that was down longer than the grace
// may hold values whose tombstones its peers have since collected; until
// it has completed a session with every other replica of a key's segment
// after it came back, it refuses to serve reads of that key, so a
// coordinator asks the other replicas instead.

const (
	// DefaultTombstoneGrace is how long a tombstone stays at least, and the
	// outage past which a returning node gates its reads. It must cover
	// the hint window (hints.max_age): a hint older than the delete that is
	// still in flight would otherwise carry the old value past collection.
	DefaultTombstoneGrace = 3 * time.Hour
	// tombstoneSweepInterval is how often a node looks for tombstones to
	// collect and records that it is alive.
	tombstoneSweepInterval = time.Minute
	// commitMargin covers the gap between a tombstone's arrival stamp and
	// its synced commit: a session must start this much after the arrival
	// to be sure its tree scan saw the tombstone.
	commitMargin = 5 * time.Second
)

// Repair-state names of the records below.
const (
	aliveName = "alive"     // the last time this node was known to run
	gateName  = "read-gate" // set while a returning node has ranges to repair
)

// tombstones is the room of tombstone collection and the read gate. It
// owns the gate (when this node came back from a long outage or on a
// replaced data directory, or none) and the alive and gate records in the
// store; it decides from the session book of the repairer room and the
// ring of the peers room, and changes neither. The repair sessions that
// close the gate run on the node (catchUp, repairRange), which tells this
// room when one completed (closeGateIfSynced).
type tombstones struct {
	// Wiring, not owned.
	cfg      *Config
	log      *slog.Logger
	now      func() time.Time
	store    *store.Store
	metrics  *telemetry.Metrics
	peers    *peers
	repairer *repairer

	gate atomic.Int64 // unix nanos of the return from a long outage; 0 = reads open
}

// newTombstones returns the tombstone room of node n; its rooms peers and
// repairer must exist.
func newTombstones(n *Node) *tombstones {
	return &tombstones{cfg: &n.cfg, log: n.log, now: n.now, store: n.store, metrics: n.metrics, peers: n.peers, repairer: n.repairer}
}

// gated reports whether reads are gated.
func (tb *tombstones) gated() bool { return tb.gate.Load() != 0 }

// since returns when the gate was set (unix nanos), or 0 when reads are
// open.
func (tb *tombstones) since() int64 { return tb.gate.Load() }

// gateReads gates reads from now on, unless they are gated already (a
// replaced data directory, identity.go).
func (tb *tombstones) gateReads(now time.Time) error {
	if tb.gate.Load() != 0 {
		return nil
	}
	if err := saveTime(tb.store, gateName, now); err != nil {
		return err
	}
	tb.gate.Store(now.UnixNano())
	return nil
}

// markAlive records that the node runs at now, so an outage is measured
// from its last record (see openGate).
func (tb *tombstones) markAlive(now time.Time) error { return saveTime(tb.store, aliveName, now) }

// unsynced calls fn for each keyspace, peer and segment this node has not
// completed a session with since gate, stopping when fn returns false.
// Peers are the members of every datacenter holding replicas of the
// keyspace.
func (tb *tombstones) unsynced(gate int64, fn func(ks string, peer string, seg repair.Range) bool) error {
	for name, ks := range tb.cfg.Keyspaces {
		for _, m := range tb.peers.ring().Members() {
			if m.ID == tb.cfg.ID || ks.Replication[m.DC] == 0 {
				continue
			}
			for i, seg := range repair.Segments(repairSegments) {
				fresh, err := tb.repairer.syncedSince(name, m.ID, i, gate)
				if err != nil {
					return err
				}
				if !fresh && !fn(name, m.ID, seg) {
					return nil
				}
			}
		}
	}
	return nil
}

// closeGateIfSynced opens this node's reads again once it has completed a
// session with every peer over every segment since it came back.
func (tb *tombstones) closeGateIfSynced() error {
	gate := tb.gate.Load()
	if gate == 0 {
		return nil
	}
	complete := true
	if err := tb.unsynced(gate, func(string, string, repair.Range) bool {
		complete = false
		return false
	}); err != nil || !complete {
		return err
	}
	if !tb.gate.CompareAndSwap(gate, 0) {
		return nil
	}
	tb.log.Info("repaired every range since the outage: serving reads again")
	return saveTime(tb.store, gateName, time.Time{})
}

// syncedWithReplicas reports whether this node has completed a session
// started after since with every other replica of the key at tok, over the
// key's segment, and names one it has not.
func (tb *tombstones) syncedWithReplicas(ks string, rep placement.Replication, tok uint64, since time.Time) (bool, string, error) {
	plan := tb.peers.ring().Plan(tok, rep)
	var others []string
	for _, reps := range plan.Replicas {
		for _, m := range reps {
			if m.ID != tb.cfg.ID {
				others = append(others, m.ID)
			}
		}
	}
	return tb.repairer.syncedWithAll(ks, others, repair.SegmentOf(tok, repairSegments), since.UnixNano())
}

// collect collects every tombstone whose grace has passed and
// whose replicas have all been repaired with this node since it arrived.
// It returns how many it collected.
func (tb *tombstones) collect(ctx context.Context) (int, error) {
	now := tb.now()
	grace := tb.cfg.Repair.TombstoneGrace
	collected := 0
	for name, ks := range tb.cfg.Keyspaces {
		rep := placement.Replication(ks.Replication)
		err := tb.store.Tombstones(name, func(tok uint64, key []byte, arrived time.Time) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if now.Before(arrived.Add(grace)) {
				return nil
			}
			ok, _, err := tb.syncedWithReplicas(name, rep, tok, arrived.Add(commitMargin))
			if err != nil || !ok {
				return err
			}
			done, err := tb.store.CollectTombstone(name, key, arrived)
			if done {
				collected++
			}
			return err
		})
		if err != nil {
			return collected, err
		}
	}
	if collected > 0 {
		tb.metrics.TombstonesCollected.Add(ctx, int64(collected))
	}
	return collected, nil
}

// errUnrepaired is a replica's refusal to serve a read of a range it has
// not repaired since it came back from a long outage, or on a wiped or
// replaced data directory (identity.go): both open the same read gate.
var errUnrepaired = errors.New("replica has not repaired this range yet since it came back (from an outage longer than the tombstone grace, or on a wiped or replaced data directory)")

// openGate decides at start whether this node must gate its reads: it
// was down longer than the grace (by its own clock: the last time it
// recorded being alive), or a gate from before a restart is still open.
func (tb *tombstones) openGate() error {
	gate, err := loadTime(tb.store, gateName)
	if err != nil {
		return err
	}
	alive, err := loadTime(tb.store, aliveName)
	if err != nil {
		return err
	}
	now := tb.now()
	if gate.IsZero() && !alive.IsZero() && now.Sub(alive) > tb.cfg.Repair.TombstoneGrace {
		gate = now
		if err := saveTime(tb.store, gateName, gate); err != nil {
			return err
		}
		tb.log.Warn("this node was down longer than the tombstone grace: it serves no reads of a range until it has repaired it with every other replica",
			"down_for", now.Sub(alive).Round(time.Second).String(), "grace", tb.cfg.Repair.TombstoneGrace.String())
	}
	if !gate.IsZero() {
		tb.gate.Store(gate.UnixNano())
	}
	return saveTime(tb.store, aliveName, now)
}

// readAllowed reports whether this node may serve a read of key in ks.
func (tb *tombstones) readAllowed(ks string, key []byte) error {
	gate := tb.gate.Load()
	if gate == 0 {
		return nil
	}
	k, cerr := keyspaceOf(tb.cfg, ks)
	if cerr != nil {
		return cerr
	}
	ok, _, err := tb.syncedWithReplicas(ks, placement.Replication(k.Replication), placement.KeyToken(key), time.Unix(0, gate))
	if err != nil {
		return err
	}
	if !ok {
		return errUnrepaired
	}
	return nil
}

// Gated reports whether this node still refuses reads of some ranges after
// a long outage.
func (n *Node) Gated() bool { return n.tombstones.gated() }

// CollectTombstones collects every tombstone whose grace has passed and
// whose replicas have all been repaired with this node since it arrived.
// It returns how many it collected.
func (n *Node) CollectTombstones(ctx context.Context) (int, error) {
	return n.tombstones.collect(ctx)
}

// catchUp repairs, as this node's own sessions, every segment of every
// keyspace with every peer it has not completed a session with since it
// came back, then closes the read gate.
func (n *Node) catchUp(ctx context.Context) error {
	gate := n.tombstones.since()
	if gate == 0 {
		return nil
	}
	var errs []error
	failed := map[string]bool{}
	err := n.tombstones.unsynced(gate, func(ks, peer string, seg repair.Range) bool {
		if failed[peer] {
			return true // likely down; try the others
		}
		if _, err := n.repairRange(ctx, ks, seg, peer, repair.DefaultBytesPerSecond); err != nil {
			errs = append(errs, fmt.Errorf("%s with %s: %w", seg, peer, err))
			failed[peer] = true
		}
		return ctx.Err() == nil
	})
	if err := errors.Join(append(errs, err)...); err != nil {
		return err
	}
	return n.tombstones.closeGateIfSynced()
}

// runTombstoneSweeper, once per tombstoneSweepInterval, records that the
// node is alive, works towards closing the read gate by repairing, and
// collects tombstones. The first round waits one interval, so membership
// has settled before the node starts repair sessions.
func (n *Node) runTombstoneSweeper() {
	n.every(tombstoneSweepInterval, n.sweepTombstones)
}

// sweepTombstones is one round of runTombstoneSweeper.
func (n *Node) sweepTombstones() {
	if err := n.tombstones.markAlive(n.now()); err != nil {
		n.log.Error("recording liveness", "err", err)
	}
	if err := n.catchUp(n.bgCtx); err != nil && n.bgCtx.Err() == nil {
		n.log.Warn("repair after the outage is not finished; retrying", "err", err)
	}
	if _, err := n.tombstones.collect(n.bgCtx); err != nil && n.bgCtx.Err() == nil {
		n.log.Error("collecting tombstones", "err", err)
	}
}

// loadTime reads the time stored under name; none is the zero time.
func loadTime(st *store.Store, name string) (time.Time, error) {
	b, err := st.RepairState(name)
	if err != nil || b == nil {
		return time.Time{}, err
	}
	if len(b) != 8 {
		return time.Time{}, fmt.Errorf("repair state %q of %d bytes, want 8", name, len(b))
	}
	ns := int64(binary.BigEndian.Uint64(b))
	if ns == 0 {
		return time.Time{}, nil
	}
	return time.Unix(0, ns), nil
}

// saveTime stores t under name; the zero time is stored as 0.
func saveTime(st *store.Store, name string, t time.Time) error {
	var ns int64
	if !t.IsZero() {
		ns = t.UnixNano()
	}
	return st.PutRepairState(name, binary.BigEndian.AppendUint64(nil, uint64(ns)))
}

// mintBase is the object a local write of a key starts from: cur, or, for
// a key with no object, an empty clock above the store's dot floor so the
// new dot is above every counter of a collected tombstone (see store).
func (n *Node) mintBase(cur *version.Object) *version.Object {
	if !cur.IsEmpty() {
		return cur
	}
	floor := n.store.DotFloor()
	if floor == 0 {
		return cur
	}
	return &version.Object{Clock: version.Vector{n.ident.actor: floor}}
}
