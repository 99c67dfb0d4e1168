package node

import (
	"context"
	"sync"

	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/store"
	"github.com/meridian-kv/meridian/version"
)

// Write-ahead hints. A coordinator's local write commits, in the same
// synced batch as the object, a hint of the new object for every other
// replica of the key, in every datacenter (store.UpdateQueued). The copies
// then go out as before (replicate); as each replica acknowledges a synced
// merge — directly, or reported by a relay, or kept as a hint by another
// node — its hint here is no longer needed, and once every replica has
// answered the write's fan-out removes those hints in one unsynced batch
// (store.ClearHints). What is left — a replica that did not answer, or
// every copy of a write whose coordinator crashed before they left — is
// delivered by hinted handoff, across restarts. So no acknowledged write
// depends on its coordinator staying alive.

// replicaTargets returns the ids of plan's replicas other than this node:
// the replicas a write coordinated here queues hints for.
func (n *Node) replicaTargets(plan placement.Plan) []string {
	var out []string
	for _, m := range plan.All() {
		if m.ID != n.cfg.ID {
			out = append(out, m.ID)
		}
	}
	return out
}

// queueFor returns the store.Queue of a write coordinated here: hints for
// targets, unless this node keeps no hints.
func (n *Node) queueFor(ctx context.Context, targets []string) store.Queue {
	if n.cfg.Hints.Disabled {
		return store.Queue{}
	}
	return store.Queue{Targets: targets, Trace: traceRef(ctx), Now: n.now(), Limits: n.hintLimits()}
}

// queueDropped records the targets whose write-ahead hint did not fit
// their byte bound: their datacenters' ranges of the key are marked dirty
// (durably, before the write is acknowledged), so repair covers the write
// if the copy does not get there. The drop itself is counted only if the
// copy then fails too (keepHint).
func (n *Node) queueDropped(ctx context.Context, ks string, key []byte, dropped []string) {
	dcs := map[string]bool{}
	members := n.peers.current().members
	for _, t := range dropped {
		if m, ok := members[t]; ok && !dcs[m.DC] {
			dcs[m.DC] = true
			n.repairer.markDirty(ks, m.DC, key)
		}
	}
	n.log.DebugContext(ctx, "write-ahead hints over their byte bound; the key's range is marked for repair", "targets", dropped, "keyspace", ks)
}

// fanout follows one write's copies to the other replicas. Every copy
// reports exactly one ack; report passes it on to the request and, after
// the last one, removes the write-ahead hints of the replicas that were
// reached and releases the write's in-flight marks.
type fanout struct {
	n    *Node
	ks   string
	key  []byte
	obj  *version.Object
	acks chan<- ack
	done func()

	mu      sync.Mutex
	left    int
	reached []string
}

func (f *fanout) report(a ack) {
	f.acks <- a // buffered for every replica: never blocks
	f.mu.Lock()
	// A replica that acknowledged, or whose hint another node keeps, no
	// longer needs this node's hint; one whose hint this node keeps does.
	if a.err == nil && !a.kept {
		f.reached = append(f.reached, a.node)
	}
	f.left--
	last := f.left == 0
	f.mu.Unlock()
	if !last {
		return
	}
	if len(f.reached) > 0 && !f.n.cfg.Hints.Disabled {
		if _, err := f.n.store.ClearHints(f.ks, f.key, f.obj, f.reached); err != nil {
			f.n.log.Warn("removing delivered write-ahead hints failed; handoff will deliver them again", "keyspace", f.ks, "err", err)
		}
	}
	f.done()
}

// coordinator is the coordinator room: the state of the writes this node
// coordinates that outlives their requests. Today that is the in-flight
// marks of their copies (flights): put marks them, the write's fan-out
// unmarks them once every replica answered, and handoff asks inFlight to
// leave alone a write-ahead hint whose write's own copy is delivering it.
// The coordination itself — put, get, replicate, the relays, read repair
// (put.go, get.go, this file) — runs on the node, reaching peers through
// the peers room.
type coordinator struct {
	flights flights
	// readTimes is how long peer replicas take to answer reads, per
	// datacenter: the patience of speculative reads (readplan.go).
	readTimes readTimes
}

// launch marks a write's copies of key to targets in flight; the returned
// func (call it once) unmarks them.
func (c *coordinator) launch(targets []string, ks string, key []byte) (landed func()) {
	return c.flights.add(targets, ks, key)
}

// inFlight reports whether a write's copy of key to target is in flight.
func (c *coordinator) inFlight(target, ks string, key []byte) bool {
	return c.flights.has(target, ks, key)
}

// flights marks the (target, keyspace, key) whose write-ahead hints are
// being delivered by their write's own fan-out: handoff leaves those
// alone rather than send the same object a second time.
type flights struct {
	mu sync.Mutex
	m  map[string]int
}

func flightKey(target, ks string, key []byte) string {
	b := make([]byte, 0, len(target)+len(ks)+len(key)+2)
	b = append(b, target...)
	b = append(b, 0)
	b = append(b, ks...)
	b = append(b, 0)
	return string(append(b, key...))
}

// add marks a write's copies to targets in flight; the returned func
// (call it once) unmarks them.
func (f *flights) add(targets []string, ks string, key []byte) func() {
	if len(targets) == 0 {
		return func() {}
	}
	keys := make([]string, len(targets))
	for i, t := range targets {
		keys[i] = flightKey(t, ks, key)
	}
	f.mu.Lock()
	if f.m == nil {
		f.m = map[string]int{}
	}
	for _, k := range keys {
		f.m[k]++
	}
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, k := range keys {
			if f.m[k]--; f.m[k] <= 0 {
				delete(f.m, k)
			}
		}
	}
}

// has reports whether a write's copy of key to target is in flight.
func (f *flights) has(target, ks string, key []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[flightKey(target, ks, key)] > 0
}
