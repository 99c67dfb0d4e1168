package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/serf/serf"
	"golang.org/x/sync/errgroup"
)

// Peer states as operators see them.
const (
	StateUp      = "up"
	StateSuspect = "suspect"
	StateDown    = "down"
	StateLeft    = "left"
	// StateFailed: the node reports that its store failed (its data
	// directory lost, an fsync error, a full disk); it acknowledges
	// nothing until it is fixed and restarted.
	StateFailed = "failed"
)

// downAfter is how many failed RPCs or probes in a row turn a suspect peer
// down while gossip still calls it alive.
const downAfter = 3

// health combines the two failure signals of a peer: serf's gossip view and
// the outcome of this node's own RPCs to it. RPC failures act at once, so a
// write to a node that has just died does not wait for gossip to notice; a
// peer becomes usable again only after an RPC or probe succeeded — which is
// also the mTLS handshake that proves the certificate names it.
type health struct {
	mu    sync.Mutex
	self  string
	peers map[string]*peerHealth
}

type peerHealth struct {
	serf     serf.MemberStatus
	verified bool // a QUIC call with a certificate naming the peer succeeded
	failures int  // consecutive failed calls or probes
	failed   bool // the peer reports its store failed
}

func newHealth(self string) *health {
	return &health{self: self, peers: map[string]*peerHealth{}}
}

func (h *health) peer(id string) *peerHealth {
	p := h.peers[id]
	if p == nil {
		p = &peerHealth{serf: serf.StatusAlive}
		h.peers[id] = p
	}
	return p
}

// gossip records serf's status of a peer. A transition to failed counts as
// a failure signal; a transition to alive does not clear failures (a probe
// must succeed first).
func (h *health) gossip(id string, st serf.MemberStatus, storeFailed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.peer(id)
	p.failed = storeFailed
	if (st == serf.StatusFailed || st == serf.StatusLeft || st == serf.StatusLeaving) && p.serf != st {
		// A peer that failed or left is used again only once a call to
		// it succeeded: gossip calling it alive again is not enough.
		p.failures = max(p.failures, downAfter)
	}
	p.serf = st
}

// ok records a successful call; it reports whether the peer just became
// usable.
func (h *health) ok(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.peer(id)
	was := p.usable()
	p.verified, p.failures = true, 0
	return !was && p.usable()
}

// fail records a failed call (unreachable, refused handshake, timeout).
func (h *health) fail(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.peer(id).failures++
}

// usable reports whether replica traffic should be sent to the peer now.
func (h *health) usable(id string) bool {
	if id == h.self {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peer(id).usable()
}

func (p *peerHealth) usable() bool {
	return p.verified && p.failures == 0 && !p.failed && (p.serf == serf.StatusAlive || p.serf == serf.StatusFailed)
}

// state reports the peer's state for operators.
func (h *health) state(id string) string {
	if id == h.self {
		return StateUp
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.peer(id)
	switch {
	case p.serf == serf.StatusLeft || p.serf == serf.StatusLeaving:
		return StateLeft
	case p.failed:
		return StateFailed
	case p.usable():
		return StateUp
	case p.failures >= downAfter || p.serf == serf.StatusFailed:
		return StateDown
	default:
		return StateSuspect
	}
}

// probeInterval is how often peers that are not usable are probed.
const probeInterval = 500 * time.Millisecond

// kickProber wakes the prober at once (after a membership change).
func (p *peers) kickProber() {
	select {
	case p.probeKick <- struct{}{}:
	default:
	}
}

// probers bounds the peers probed at once.
const probers = 8

// runProber calls probe on every peer that is not usable, so a peer that
// comes back is used again (and its hints delivered) within about
// probeInterval. probe's outcome reaches health through call; its error
// is logged at debug level, since a failed probe of a peer known to be
// down is the expected case.
func (p *peers) runProber(probe func(ctx context.Context, id string) error) {
	defer p.bg.Done()
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		case <-p.probeKick:
		}
		v := p.cur.Load()
		// No shared context: one failed probe must not cancel the others.
		var g errgroup.Group
		g.SetLimit(probers)
		for id, m := range v.members {
			if id == p.cfg.ID || m.Status == serf.StatusLeft || m.Status == serf.StatusLeaving || p.health.usable(id) {
				continue
			}
			g.Go(func() error {
				ctx, cancel := context.WithTimeout(p.ctx, time.Second)
				defer cancel()
				if err := probe(ctx, id); err != nil {
					return fmt.Errorf("probing %s: %w", id, err)
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil && p.ctx.Err() == nil {
			p.log.Debug("probe failed", "err", err)
		}
	}
}
