package node

import (
	"encoding/json"
	"time"

	"github.com/hashicorp/serf/serf"
)

// Remembered members. Serf tells a node that just started only of the
// members that are alive, or whose failure its peers still gossip: a
// member that left gracefully, or failed long ago, is absent from its
// member list until it comes back. The ring of a node that restarted while
// another was away therefore lacked that one, and the writes it
// coordinated meanwhile had it in no preference list — neither a copy nor
// a hint was made for it, and once it rejoined, a replica again, only
// repair brought them. So each node keeps in its store the verified
// members it has seen (id, datacenter, rack, address, when last seen), and
// places on its ring every one that serf does not list, as a failed member
// (not usable: its copies become hints), until serf lists it again, reaps
// it, or reconnect_timeout passed since it was last seen.

// rememberedName is the store record of the remembered members.
const rememberedName = "identity/members"

// rememberedSeenStep is how stale a remembered member's last-seen time may
// get before it is written again: the record changes rarely.
const rememberedSeenStep = time.Hour

// rememberedMember is one member of the record.
type rememberedMember struct {
	DC   string `json:"dc"`
	Rack string `json:"rack"`
	Addr string `json:"addr"`
	Seen int64  `json:"seen"` // unix seconds
}

// rememberedBook is the record in memory; peers.mu guards it.
type rememberedBook struct {
	loaded bool
	m      map[string]rememberedMember
}

// loadRememberedLocked reads the record once. The caller holds peers.mu.
func (p *peers) loadRememberedLocked() {
	if p.remembered.loaded {
		return
	}
	p.remembered.loaded = true
	p.remembered.m = map[string]rememberedMember{}
	b, err := p.store.RepairState(rememberedName)
	if err != nil {
		p.log.Error("reading the remembered members", "err", err)
		return
	}
	if b != nil {
		if err := json.Unmarshal(b, &p.remembered.m); err != nil {
			p.log.Error("reading the remembered members", "err", err)
			p.remembered.m = map[string]rememberedMember{}
		}
	}
}

// rememberLocked merges the verified members serf lists into the record
// and returns the remembered members serf does not list, as failed
// members. reaped names members serf reaped: they are forgotten. The caller
// holds peers.mu.
func (p *peers) rememberLocked(listed []memberInfo, reaped map[string]bool) []memberInfo {
	p.loadRememberedLocked()
	now := p.now()
	changed := false
	seen := map[string]bool{}
	for _, m := range listed {
		seen[m.ID] = true
		if m.ID == p.cfg.ID || !p.provenPeer(m.ID) {
			continue
		}
		old, ok := p.remembered.m[m.ID]
		if ok && old.DC == m.DC && old.Rack == m.Rack && old.Addr == m.Addr && now.Sub(time.Unix(old.Seen, 0)) < rememberedSeenStep {
			continue
		}
		p.remembered.m[m.ID] = rememberedMember{DC: m.DC, Rack: m.Rack, Addr: m.Addr, Seen: now.Unix()}
		changed = true
	}
	var out []memberInfo
	for id, r := range p.remembered.m {
		if seen[id] || id == p.cfg.ID {
			continue
		}
		if reaped[id] || (p.cfg.ReconnectTimeout > 0 && now.Sub(time.Unix(r.Seen, 0)) > p.cfg.ReconnectTimeout) {
			delete(p.remembered.m, id)
			changed = true
			continue
		}
		out = append(out, memberInfo{ID: id, DC: r.DC, Rack: r.Rack, Addr: r.Addr, Status: serf.StatusFailed})
	}
	if changed {
		if b, err := json.Marshal(p.remembered.m); err == nil {
			if err := p.store.PutRepairState(rememberedName, b); err != nil && !p.storeFailed() {
				p.log.Error("recording the remembered members", "err", err)
			}
		}
	}
	return out
}
