package node

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/hashicorp/serf/serf"
	"golang.org/x/sync/errgroup"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/grants"
	"github.com/meridian-kv/meridian/wan"
)

// Replication of the grant table to every node of every region. A grant or
// revoke is stored by the node that took it and pushed at once to every
// member (typeGrantPush). Anti-entropy makes the push reliable: every
// grantSyncInterval each node sends one random reachable peer the digest
// of its table (typeGrantSync); a peer whose digest differs answers with
// its whole table, the caller merges it and, if the peer lacked something,
// pushes its own whole table back. The merge is a join (package grants),
// so a node that was down, partitioned or restored from an old disk
// converges within a few intervals of being reachable, in any order of
// exchanges. Only node certificates may send these messages: the gossip
// key alone changes no grant.

// grantSyncInterval is how often a node compares its table with a random
// peer's.
const grantSyncInterval = time.Second

// grantPushTimeout bounds how long a grant waits for its pushes before
// answering the client (the rest converge by anti-entropy).
const grantPushTimeout = 3 * time.Second

// digest returns the table's digest.
func (n *Node) grantDigest() []byte {
	n.auth.mu.Lock()
	defer n.auth.mu.Unlock()
	d := n.auth.table.Digest()
	return d[:]
}

// mergeGrants joins entries from a peer into the table and persists it if
// it changed; it returns the digest after the merge.
func (n *Node) mergeGrants(peer string, es []grants.Entry) ([]byte, error) {
	n.auth.mu.Lock()
	defer n.auth.mu.Unlock()
	next := n.auth.table.Clone()
	changed, err := next.MergeAll(es)
	if err != nil {
		n.log.Warn("grant table: entries from a peer refused", "peer", peer, "err", err)
	}
	if changed > 0 {
		if perr := n.persistGrantsLocked(next); perr != nil {
			d := n.auth.table.Digest()
			return d[:], fmt.Errorf("storing the grant table: %w", perr)
		}
		for _, e := range es {
			n.auth.clock.Observe(e.Stamp)
		}
		n.auth.table = next
		n.log.Info("grant table updated from a peer", "peer", peer, "changed", changed, "entries", next.Len())
	}
	d := n.auth.table.Digest()
	return d[:], nil
}

// serveGrantSync answers typeGrantPush and typeGrantSync.
func (n *Node) serveGrantSync(from string, req *wan.Envelope, reply wan.Replier) {
	var in grantSet
	if err := req.Decode(&in); err != nil {
		reply.SendError(api.CodeBadRequest, fmt.Sprintf("meridian: malformed grant message: %v", err))
		return
	}
	if len(in.Entries) > grants.MaxEntries {
		reply.SendError(api.CodeTooLarge, fmt.Sprintf("meridian: %d grant entries exceed the table's bound of %d", len(in.Entries), grants.MaxEntries))
		return
	}
	out := grantSet{}
	switch req.Type {
	case typeGrantPush:
		d, err := n.mergeGrants(from, in.Entries)
		if err != nil {
			reply.SendError(api.CodeUnavailable, "meridian: "+err.Error())
			return
		}
		out.Digest = d
	case typeGrantSync:
		n.auth.mu.Lock()
		d := n.auth.table.Digest()
		out.Digest = d[:]
		if string(in.Digest) != string(d[:]) {
			out.Entries = n.auth.table.Entries()
		}
		n.auth.mu.Unlock()
	}
	env, err := wan.NewEnvelope(typeGrantSet, &out)
	if err != nil {
		reply.SendError(api.CodeInternal, err.Error())
		return
	}
	reply.Send(env)
}

// grantPeers returns the members other than this node that have not left.
func (n *Node) grantPeers() []string {
	var out []string
	for id, m := range n.peers.current().members {
		if id == n.cfg.ID || m.Status == serf.StatusLeft || m.Status == serf.StatusLeaving {
			continue
		}
		out = append(out, id)
	}
	return out
}

// pushGrants sends entries to every member, waiting at most
// grantPushTimeout; it returns how many members there were and how many
// acknowledged.
func (n *Node) pushGrants(ctx context.Context, es []grants.Entry) (members, reached int) {
	peers := n.grantPeers()
	ctx, cancel := context.WithTimeout(ctx, grantPushTimeout)
	defer cancel()
	var ok atomic.Int64
	// No shared context: one member that fails must not cancel the others.
	var g errgroup.Group
	g.SetLimit(16)
	for _, id := range peers {
		g.Go(func() error {
			err := n.peers.call(ctx, id, typeGrantPush, &grantSet{Entries: es}, func(e *wan.Envelope) error { return nil })
			if err == nil {
				ok.Add(1)
			} else {
				n.log.Debug("grant push failed; anti-entropy will deliver it", "peer", id, "err", err)
			}
			return nil // counted and logged: a push is best effort
		})
	}
	g.Wait()
	return len(peers), int(ok.Load())
}

// runGrantSync compares the grant table with one random reachable peer
// every grantSyncInterval.
func (n *Node) runGrantSync() {
	defer n.bg.Done()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	t := time.NewTicker(grantSyncInterval)
	defer t.Stop()
	for {
		select {
		case <-n.bgCtx.Done():
			return
		case <-t.C:
		}
		var peers []string
		for _, id := range n.grantPeers() {
			if n.peers.usable(id) {
				peers = append(peers, id)
			}
		}
		if len(peers) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(n.bgCtx, 5*time.Second)
		n.syncGrantsWith(ctx, peers[r.IntN(len(peers))])
		cancel()
	}
}

// syncGrantsWith makes this node's and peer's tables equal: pull the
// peer's when the digests differ, push ours back if the peer lacks
// something.
func (n *Node) syncGrantsWith(ctx context.Context, peer string) error {
	var theirs grantSet
	err := n.peers.call(ctx, peer, typeGrantSync, &grantSet{Digest: n.grantDigest()}, func(e *wan.Envelope) error {
		if e.Type != typeGrantSet {
			return fmt.Errorf("unexpected reply type %d", e.Type)
		}
		return e.Decode(&theirs)
	})
	if err != nil {
		return err
	}
	ours := n.grantDigest()
	if len(theirs.Entries) > 0 {
		if ours, err = n.mergeGrants(peer, theirs.Entries); err != nil {
			return err
		}
	}
	if string(ours) == string(theirs.Digest) {
		return nil
	}
	n.auth.mu.Lock()
	all := n.auth.table.Entries()
	n.auth.mu.Unlock()
	return n.peers.call(ctx, peer, typeGrantPush, &grantSet{Entries: all}, func(*wan.Envelope) error { return nil })
}
