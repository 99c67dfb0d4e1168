package node

import (
	"encoding/json"
	"sync"
)

// Identity-bound membership. Gossip is a hint, never an identity: anyone
// with the gossip key can announce a member with any name. A member is
// placed on the ring (and so holds data, receives hints and counts towards
// quorums) only once a call to it succeeded over mutual TLS with a node
// certificate that names it; the wan dialer refuses a certificate naming
// another node. Until then `meridian status` shows it "unverified" and the
// prober keeps calling it. The members this node has verified are kept in
// its store, so a restarted node places them on its ring at once instead
// of starting from a ring of itself.

// provenName is the store record listing the members this node verified.
const provenName = "identity/proven"

// StateUnverified: a gossip member that has not proved, over mutual TLS,
// that it holds the node certificate for its name; it gets no data.
const StateUnverified = "unverified"

// provenBook is the set of members this node has verified.
type provenBook struct {
	mu     sync.Mutex
	ids    map[string]bool
	loaded bool
}

// provenPeer reports whether id proved its identity to this node (now or
// in an earlier run).
func (p *peers) provenPeer(id string) bool {
	p.proven.mu.Lock()
	defer p.proven.mu.Unlock()
	p.loadProvenLocked()
	return p.proven.ids[id]
}

func (p *peers) loadProvenLocked() {
	if p.proven.loaded {
		return
	}
	p.proven.ids = map[string]bool{}
	b, err := p.store.RepairState(provenName)
	if err == nil && b != nil {
		var ids []string
		if err := json.Unmarshal(b, &ids); err != nil {
			p.log.Error("reading the verified members; verifying them again", "err", err)
		}
		for _, id := range ids {
			p.proven.ids[id] = true
		}
	} else if err != nil {
		p.log.Error("reading the verified members; verifying them again", "err", err)
	}
	p.proven.loaded = true
}

// prove records that a call to id succeeded over mutual TLS (its
// certificate names it) and, the first time, places it on the ring.
func (p *peers) prove(id string) {
	p.proven.mu.Lock()
	p.loadProvenLocked()
	if p.proven.ids[id] {
		p.proven.mu.Unlock()
		return
	}
	p.proven.ids[id] = true
	ids := make([]string, 0, len(p.proven.ids))
	for m := range p.proven.ids {
		ids = append(ids, m)
	}
	p.proven.mu.Unlock()
	if b, err := json.Marshal(ids); err == nil {
		if err := p.store.PutRepairState(provenName, b); err != nil && !p.storeFailed() {
			p.log.Error("recording a verified member", "peer", id, "err", err)
		}
	}
	p.log.Info("member verified: it holds the node certificate for its name", "peer", id)
	p.refreshView()
}
