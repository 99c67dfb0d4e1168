package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-kv/meridian/wan"
)

// identity is the identity room: who this node is and whether its data
// can be trusted. actor mints this node's dots; incs are the incarnations
// seen of each node; unverified is set while a fresh data directory has
// not heard from its peers; storeFailed once the store failed.
type identity struct {
	actor       string
	incs        incarnationBook
	unverified  atomic.Bool
	storeFailed atomic.Bool
}

// A node's identity over time.
//
// The actor that mints this node's version dots is its data directory's
// incarnation (store.Identity.Actor), made when the directory is created.
// A node that comes back on an empty disk is a new actor and can never
// re-mint a dot another replica holds; the dots of its earlier incarnations
// stay valid as another actor's. After a stop that was not a clean close
// the actor also carries the store's era (store.Store.Actor): a put sends
// its copies while its own syncs, and a crash in between must not let the
// node mint those dots again.
//
// Every ping carries the sender's incarnation and the incarnations the
// sender has seen of the receiver (incarnationBook, durable). That is how a
// node whose directory is new learns that it replaced an earlier
// incarnation (a replaced or wiped disk): it then gates its reads, as after
// a long outage, until repair has brought every range back from the other
// replicas. Until a majority of its peers have answered, a fresh node
// serves no reads at all, so it never answers "not found" for a key it held
// before the wipe.

// Names of the node's durable records about its identity (repair-state
// records of the store).
const (
	// freshName holds the time a fresh data directory was created while
	// the node has not yet heard from a majority of its peers.
	freshName = "identity/unverified"
	// predecessorsName lists the earlier incarnations of this node that
	// it has accounted for (gated its reads after learning of them).
	predecessorsName = "identity/predecessors"
	// maxIncarnations bounds the incarnations remembered per node.
	maxIncarnations = 16
)

// errUnverified is a fresh node's refusal of a read before it knows
// whether it replaced an earlier incarnation.
var errUnverified = errors.New("replica's data directory is new and it has not yet heard from its peers whether it replaced an earlier one")

// errNameConflict is the fatal error of a node whose id another live node
// already uses.
var errNameConflict = errors.New("node: another live node uses this node's id (serf name conflict, lost): refusing to serve; give every node its own id, or stop the other process first")

// incarnationBook remembers, per node id, the incarnations seen of it:
// peers' (from their pings) and this node's own predecessors.
type incarnationBook struct {
	mu    sync.Mutex
	seen  map[string][]string // loaded lazily from the store
	heard map[string]bool     // peers that answered a fresh node
}

func incarnationsName(id string) string { return "identity/seen/" + id }

// known returns the incarnations this node has seen of id.
func (n *Node) knownIncarnations(id string) ([]string, error) {
	n.ident.incs.mu.Lock()
	defer n.ident.incs.mu.Unlock()
	return n.loadIncarnationsLocked(incarnationsName(id))
}

func (n *Node) loadIncarnationsLocked(name string) ([]string, error) {
	if l, ok := n.ident.incs.seen[name]; ok {
		return l, nil
	}
	b, err := n.store.RepairState(name)
	if err != nil {
		return nil, err
	}
	var l []string
	if b != nil {
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, fmt.Errorf("identity record %q: %w", name, err)
		}
	}
	if n.ident.incs.seen == nil {
		n.ident.incs.seen = map[string][]string{}
	}
	n.ident.incs.seen[name] = l
	return l, nil
}

// addIncarnations records incs under name (durably) and reports which were
// new.
func (n *Node) addIncarnations(name string, incs ...string) (added []string, err error) {
	n.ident.incs.mu.Lock()
	defer n.ident.incs.mu.Unlock()
	l, err := n.loadIncarnationsLocked(name)
	if err != nil {
		return nil, err
	}
	next := slices.Clone(l)
	for _, inc := range incs {
		if inc != "" && !slices.Contains(next, inc) {
			next = append(next, inc)
			added = append(added, inc)
		}
	}
	if len(added) == 0 {
		return nil, nil
	}
	if len(next) > maxIncarnations {
		next = next[len(next)-maxIncarnations:]
	}
	b, err := json.Marshal(next)
	if err != nil {
		return nil, err
	}
	if err := n.store.PutRepairState(name, b); err != nil {
		return nil, err
	}
	n.ident.incs.seen[name] = next
	return added, nil
}

// startIdentity runs at start, after the store opened: a fresh directory
// serves no reads until its peers have said whether it had predecessors.
func (n *Node) startIdentity() error {
	n.ident.actor = n.store.Actor()
	if era := n.store.Era(); era > 0 {
		n.log.Info("version actor", "actor", n.ident.actor, "unclean_stops", era)
	}
	if n.store.Fresh() {
		if err := saveTime(n.store, freshName, n.now()); err != nil {
			return err
		}
	}
	t, err := loadTime(n.store, freshName)
	if err != nil {
		return err
	}
	if !t.IsZero() {
		n.ident.unverified.Store(true)
		n.log.Info("data directory is new: reads wait until peers confirm whether this node replaced an earlier incarnation", "incarnation", n.store.Identity().Incarnation)
	}
	return nil
}

// peerIncarnation handles what a ping (request or reply) from peer said:
// the peer's own incarnation, and the incarnations of this node the peer
// has seen.
func (n *Node) peerIncarnation(peer string, p *ping) {
	if _, err := n.addIncarnations(incarnationsName(peer), p.Incarnation); err != nil {
		n.log.Error("recording a peer's incarnation", "peer", peer, "err", err)
	}
	own := n.store.Identity().Incarnation
	var others []string
	for _, inc := range p.Known {
		if inc != own {
			others = append(others, inc)
		}
	}
	if len(others) > 0 {
		added, err := n.addIncarnations(predecessorsName, others...)
		if err != nil {
			n.log.Error("recording this node's predecessors", "err", err)
			return
		}
		if len(added) > 0 {
			n.replaced(peer, added)
		}
	}
	if n.ident.unverified.Load() {
		n.heardFrom(peer)
	}
}

// replaced gates reads: a peer knows incarnations of this node that this
// data directory does not hold. Its data is gone; until repair brought
// every range back it must not answer reads with what it lacks.
func (n *Node) replaced(peer string, earlier []string) {
	now := n.now()
	if err := n.tombstones.gateReads(now); err != nil {
		n.log.Error("gating reads after a replaced data directory", "err", err)
		return
	}
	n.log.Error("THIS NODE'S DATA DIRECTORY IS NOT THE ONE THE CLUSTER KNEW: it was wiped or replaced, and the data of the earlier incarnations is gone from this node. It serves no reads of a range until it has repaired that range with every other replica (see meridian status; meridian repair --now speeds it up)",
		"incarnation", n.store.Identity().Incarnation, "earlier", earlier, "told_by", peer)
}

// heardFrom counts a fresh node's answers; once a majority of the other
// members answered (none telling of an earlier incarnation, or the gate is
// open already), reads are decided by the read gate alone.
func (n *Node) heardFrom(peer string) {
	n.ident.incs.mu.Lock()
	if n.ident.incs.heard == nil {
		n.ident.incs.heard = map[string]bool{}
	}
	n.ident.incs.heard[peer] = true
	heard := len(n.ident.incs.heard)
	n.ident.incs.mu.Unlock()
	others := len(n.peers.current().members) - 1
	if heard*2 <= others {
		return
	}
	if err := saveTime(n.store, freshName, time.Time{}); err != nil {
		n.log.Error("recording that peers answered", "err", err)
		return
	}
	if n.ident.unverified.CompareAndSwap(true, false) {
		n.log.Info("peers answered: this node's data directory replaced no earlier incarnation that they know of", "answered", heard, "peers", others)
	}
}

// verifiedRead refuses reads while a fresh node has not heard from its
// peers (unless it has none: a cluster's first node).
func (n *Node) verifiedRead() error {
	if !n.ident.unverified.Load() || len(n.peers.current().members) <= 1 {
		return nil
	}
	return errUnverified
}

// ownPing is this node's side of a ping to or from peer.
func (n *Node) ownPing(peer string) *ping {
	known, err := n.knownIncarnations(peer)
	if err != nil && !n.ident.storeFailed.Load() {
		n.log.Error("reading a peer's incarnations", "peer", peer, "err", err)
	}
	return &ping{Node: n.cfg.ID, Incarnation: n.store.Identity().Incarnation, Known: known}
}

// watchDirectory checks, every directoryCheckInterval, that the store is
// healthy and still in its data directory. A store that failed (its
// directory lost, an fsync error, a full disk) acknowledges nothing more;
// the node then tells its peers through gossip that it has failed, so they
// stop sending it replica traffic and show it as failed.
func (n *Node) watchDirectory() {
	n.every(directoryCheckInterval, func() {
		if n.ident.storeFailed.Load() {
			return
		}
		err := n.store.CheckDirectory()
		if err == nil || n.closed.Load() {
			return
		}
		n.ident.storeFailed.Store(true)
		n.log.Error("THE STORE HAS FAILED: this node acknowledges no more writes and serves no reads; fix the disk or data directory and restart it", "err", err, "data_dir", n.cfg.DataDir)
		if err := n.peers.markStoreFailed(); err != nil {
			n.log.Error("telling peers that this node failed", "err", err)
		}
	})
}

// directoryCheckInterval is how often the data directory is checked (every
// write checks too, after its commit).
const directoryCheckInterval = time.Second

// watchName ends the node when serf shuts down by itself: it lost a name
// conflict to another live node with the same id.
func (n *Node) watchName() {
	defer n.bg.Done()
	select {
	case <-n.bgCtx.Done():
		return
	case <-n.peers.gossipShutdown():
	}
	if n.closed.Load() {
		return
	}
	n.log.Error(errNameConflict.Error())
	n.fatal(errNameConflict)
}

// fatal stops the node as a crash would and reports err on Failed.
func (n *Node) fatal(err error) {
	n.fatalOnce.Do(func() {
		n.fatalErr = err
		close(n.fatalCh)
		go n.Kill()
	})
}

// Failed is closed when the node stopped by itself on a fatal condition
// (Err tells which); meridian node then exits with an error.
func (n *Node) Failed() <-chan struct{} { return n.fatalCh }

// Err returns the fatal error once Failed is closed, and nil before.
func (n *Node) Err() error {
	select {
	case <-n.fatalCh:
		return n.fatalErr
	default:
		return nil
	}
}

// probe pings peer, for the prober: the answer carries the incarnations
// the peer knows (identity) and, through call, restores its health.
func (n *Node) probe(ctx context.Context, peer string) error {
	return n.peers.call(ctx, peer, typePing, n.ownPing(peer), func(e *wan.Envelope) error {
		var p ping
		if err := e.Decode(&p); err != nil {
			return err
		}
		n.peerIncarnation(peer, &p)
		return nil
	})
}
