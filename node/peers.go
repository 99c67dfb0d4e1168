package node

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/store"
	"github.com/meridian-kv/meridian/telemetry"
	"github.com/meridian-kv/meridian/wan"
)

// peers is the membership room of a node: it owns the gossip agent, the
// view (ring and member addresses) and its refresh, the books of verified
// (proven.go) and remembered (remembered.go) members, each peer's health
// and the prober that restores it, and call, the one way to send a request
// to another member.
//
// Everything else in the node reads membership through it (current,
// usable, state) and reaches peers only through call. call's side effects
// stay in this room: it proves and marks peers healthy or failed. What
// other rooms must learn of — a peer that just became usable — leaves it
// through the onUp hook, which the node wires to handoff.
type peers struct {
	// Wiring, set by newPeers (tr once the transport listens) and not
	// owned: the node's configuration, clock, store (for the books),
	// transport, telemetry and background context and WaitGroup (for the
	// gossip goroutines).
	cfg         *Config
	log         *slog.Logger
	now         func() time.Time
	store       *store.Store
	tr          *wan.Transport
	tracer      trace.Tracer
	metrics     *telemetry.Metrics
	reqs        *reqStats   // the status page's recent latencies (reqstats.go)
	onDisk      bool        // the store is on the real disk: keep a serf snapshot
	storeFailed func() bool // the node's store failed: store errors are expected, not logged
	ctx         context.Context
	bg          *sync.WaitGroup

	// onUp is called, from whichever goroutine's call proved it, when a
	// peer becomes usable again. It must not block. Set before Start
	// starts gossip; nil means nobody listens.
	onUp func(id string)

	gossipTr memberlist.NodeAwareTransport // Options.GossipTransport; nil means sockets on Config.Gossip
	// gossipBlocked, if set, says which gossip addresses and node names a
	// fence cuts off (fence.go).
	gossipBlocked func(addr string) bool
	serf          *serf.Serf
	cur           atomic.Pointer[view]
	mu            sync.Mutex // serialises refreshView
	proven        provenBook
	remembered    rememberedBook  // guarded by mu
	reaped        map[string]bool // members serf reaped, for refreshView; guarded by mu
	health        *health
	probeKick     chan struct{}
}

// newPeers returns the membership room of node n, gossiping over
// gossipTr if it is not nil; startGossip starts it.
func newPeers(n *Node, gossipTr memberlist.NodeAwareTransport) *peers {
	return &peers{
		cfg:         &n.cfg,
		log:         n.log,
		now:         n.now,
		store:       n.store,
		tracer:      n.tracer,
		metrics:     n.metrics,
		reqs:        &n.reqs,
		onDisk:      n.onDisk,
		storeFailed: n.ident.storeFailed.Load,
		ctx:         n.bgCtx,
		gossipTr:    gossipTr,
		bg:          &n.bg,
		health:      newHealth(n.cfg.ID),
		probeKick:   make(chan struct{}, 1),
	}
}

// current returns the current view.
func (p *peers) current() *view { return p.cur.Load() }

// ring returns the current ring.
func (p *peers) ring() *placement.Ring { return p.cur.Load().ring }

// usable reports whether replica traffic should be sent to id now.
func (p *peers) usable(id string) bool { return p.health.usable(id) }

// state returns a peer's state for operators: up, suspect, down, left or
// failed.
func (p *peers) state(id string) string { return p.health.state(id) }

// ids returns the ids of the members in the view, sorted.
func (p *peers) ids() []string {
	v := p.cur.Load()
	out := make([]string, 0, len(v.members))
	for id := range v.members {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// call sends one request to a member and hands each reply frame to onReply.
// Its outcome feeds the member's health: a transport failure (unreachable,
// refused handshake, timeout) marks it at once; any answer, even a refusal,
// proves it alive and verified, and if that made it usable again onUp
// hears of it.
func (p *peers) call(ctx context.Context, id string, t wan.MsgType, payload any, onReply func(*wan.Envelope) error) error {
	m, ok := p.cur.Load().members[id]
	if !ok {
		return errUnknownMember(id)
	}
	env, err := wan.NewEnvelope(t, payload)
	if err != nil {
		return err
	}
	start := time.Now()
	ctx, span := p.startCall(ctx, m, env)
	answered := false
	err = p.tr.Call(ctx, m.Addr, id, env, func(e *wan.Envelope) error {
		answered = true
		return onReply(e)
	})
	p.endCall(ctx, span, t, m.DC, start, err)
	var re *wan.RemoteError
	switch {
	// A peer that answered is up, even if the call then ran out of time:
	// a relay streams its targets' acks and may wait on a dead target
	// until the deadline, which is that target's failure, not its own.
	case err == nil || errors.As(err, &re) || answered:
		p.prove(id)
		if p.health.ok(id) {
			p.log.Info("peer is up", "peer", id)
			if p.onUp != nil {
				p.onUp(id)
			}
		}
	case isTooLarge(err):
		// A message past the size limit is a local condition (a request
		// not sent, or an answer too large to take), never a dead peer.
	case p.ctx.Err() == nil:
		p.health.fail(id)
	}
	return err
}

// markStoreFailed tells the other members, through gossip, that this
// node's store failed, so they stop sending it replica traffic.
func (p *peers) markStoreFailed() error {
	tags := p.serf.LocalMember().Tags
	tags[tagState] = stateFailedVal
	return p.serf.SetTags(tags)
}

// gossipShutdown is closed when the gossip agent shut down, by Close or
// by itself (it lost a name conflict).
func (p *peers) gossipShutdown() <-chan struct{} { return p.serf.ShutdownCh() }

// leave announces a graceful leave to the other members.
func (p *peers) leave() error { return p.serf.Leave() }

// shutdown stops gossip; it does nothing if gossip never started.
func (p *peers) shutdown() error {
	if p == nil || p.serf == nil {
		return nil
	}
	return p.serf.Shutdown()
}
