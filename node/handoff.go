package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"golang.org/x/sync/errgroup"

	"github.com/meridian-kv/meridian/store"
	"github.com/meridian-kv/meridian/telemetry"
	"github.com/meridian-kv/meridian/version"
)

// errHintsDisabled is the failure of a write to an unreachable replica when
// this node keeps no hints.
var errHintsDisabled = errors.New("replica unreachable and hinted handoff is disabled")

// writeOrHint writes obj to replica id, or — when id is not usable or does
// not answer — leaves a hint for it: with the first usable fallback of its
// datacenter (sloppy quorum, Dynamo §4.6), or, when there is none, in this
// node's own hint store. The ack says which happened. It never returns
// before the write or the hint is durable.
func (n *Node) writeOrHint(ctx context.Context, id, dc, ks string, key []byte, obj *version.Object, fallbacks []string) ack {
	if id == n.cfg.ID {
		return ack{node: id, dc: dc, err: n.mergeLocal(ctx, ks, key, obj)}
	}
	var cause error
	if n.peers.usable(id) {
		cause = n.writeReplica(ctx, id, ks, key, obj)
		if cause == nil {
			return ack{node: id, dc: dc}
		}
	} else {
		cause = errPeerDown(id)
	}
	if isTooLarge(cause) {
		// The object exceeds the message limit: a hint could never be
		// delivered either, and the replica is not down.
		return ack{node: id, dc: dc, err: cause}
	}
	if n.cfg.Hints.Disabled {
		return ack{node: id, dc: dc, err: errors.Join(cause, errHintsDisabled)}
	}
	for _, fb := range fallbacks {
		if fb == id || fb == n.cfg.ID || !n.peers.usable(fb) {
			continue
		}
		hctx, cancel := context.WithTimeout(n.bgCtx, n.cfg.Limits.RequestTimeout)
		err := n.peers.call(hctx, fb, typeHintWrite, &hintWrite{Target: id, Keyspace: ks, Key: key, Object: obj}, decodeAck)
		cancel()
		if err == nil {
			return ack{node: id, dc: dc, hinted: true}
		}
	}
	if err := n.keepHint(ctx, id, ks, key, obj); err != nil {
		return ack{node: id, dc: dc, err: errors.Join(cause, err)}
	}
	return ack{node: id, dc: dc, hinted: true, kept: true}
}

// keepHint stores a hint for target in this node's store.
func (n *Node) keepHint(ctx context.Context, target, ks string, key []byte, obj *version.Object) error {
	if _, cerr := n.keyspace(ks); cerr != nil {
		return cerr
	}
	stored, err := n.store.AddHint(target, ks, key, obj, traceRef(ctx), n.now(), n.hintLimits())
	if err != nil {
		return err
	}
	targetAttr := metric.WithAttributes(telemetry.HintTarget(target))
	if !stored {
		n.handoff.dropped.Add(1)
		n.metrics.HintsDropped.Add(ctx, 1, targetAttr)
		n.log.WarnContext(ctx, "hint dropped: the byte bound for its target is reached; its range is marked for repair", "target", target, "keyspace", ks)
		if m, ok := n.peers.current().members[target]; ok {
			n.repairer.markDirty(ks, m.DC, key)
		}
		return errHintDropped
	}
	n.handoff.stored.Add(1)
	n.metrics.HintsStored.Add(ctx, 1, targetAttr)
	return nil
}

var errHintDropped = errors.New("hint dropped: byte bound for the target reached")

func (n *Node) hintLimits() store.HintLimits {
	return store.HintLimits{MaxAge: n.cfg.Hints.MaxAge, MaxBytesPerTarget: n.cfg.Hints.MaxBytesPerTarget}
}

// hintTotals sums the hints this node holds for all targets.
func (n *Node) hintTotals() (count int, bytes int64) {
	for _, st := range n.store.HintStats() {
		count += st.Count
		bytes += st.Bytes
	}
	return count, bytes
}

type errPeerDown string

func (e errPeerDown) Error() string { return "replica " + string(e) + " is down" }

// HintCounters are the node's hinted-handoff totals since start.
type HintCounters struct {
	Stored, Delivered, Dropped int64
}

// Hints returns the node's hint counters.
func (n *Node) Hints() HintCounters {
	return HintCounters{Stored: n.handoff.stored.Load(), Delivered: n.handoff.delivered.Load(), Dropped: n.handoff.dropped.Load()}
}

// PendingHints returns the hints this node holds, per target.
func (n *Node) PendingHints() map[string]store.HintStat { return n.store.HintStats() }

// handoff delivers hints to their targets when they are reachable again.
type handoff struct {
	n                          *Node
	kickCh                     chan struct{}
	stored, delivered, dropped atomic.Int64
	tooLarge                   sync.Map // hints too large to send that were logged
}

// handoff timing.
const (
	handoffInterval = time.Second
	expireInterval  = time.Minute
	// handoffTargets bounds the targets delivered to at once.
	handoffTargets = 4
)

func newHandoff(n *Node) *handoff { return &handoff{n: n, kickCh: make(chan struct{}, 1)} }

// kick asks for a delivery round now (a peer just became usable).
func (h *handoff) kick() {
	select {
	case h.kickCh <- struct{}{}:
	default:
	}
}

// run delivers hints every handoffInterval (and on kick) and expires old
// ones every expireInterval.
func (h *handoff) run() {
	n := h.n
	defer n.bg.Done()
	tick := time.NewTicker(handoffInterval)
	defer tick.Stop()
	lastExpire := time.Time{}
	for {
		select {
		case <-n.bgCtx.Done():
			return
		case <-tick.C:
		case <-h.kickCh:
		}
		if now := n.now(); now.Sub(lastExpire) >= expireInterval {
			lastExpire = now
			dropped, err := n.store.ExpireHintsFunc(now, n.cfg.Hints.MaxAge, func(d store.DroppedHint) {
				if m, ok := n.peers.current().members[d.Target]; ok {
					n.repairer.markDirtyToken(d.Keyspace, m.DC, d.Token)
				}
			})
			if err != nil {
				n.log.Error("expiring hints", "err", err)
			}
			for target, c := range dropped {
				h.dropped.Add(int64(c))
				n.metrics.HintsDropped.Add(n.bgCtx, int64(c), metric.WithAttributes(telemetry.HintTarget(target)))
				n.log.Warn("hints expired before delivery; repair must cover them", "target", target, "count", c)
			}
		}
		// Targets are served concurrently (a few at a time): a node that
		// kept the hints of a whole datacenter delivers to all of it.
		// No shared context: one target's failure must not stop the others.
		var g errgroup.Group
		g.SetLimit(handoffTargets)
		for target := range n.store.HintStats() {
			if n.bgCtx.Err() != nil {
				break
			}
			if _, known := n.peers.current().members[target]; !known || !n.peers.usable(target) {
				continue
			}
			g.Go(func() error {
				h.deliver(target) // logs why a round paused; the hints wait for the next
				return nil
			})
		}
		g.Wait()
	}
}

// deliver runs one delivery round of target's hints: it reads them in
// store order into a hintDelivery, which cuts them into batches and keeps
// a window of them in flight, and deletes the hints of each batch the
// target acknowledged (in one synced batch, each only if it did not change
// meanwhile; delivery merges, so a hint never overwrites newer data at the
// target). The round stops at the first failure; what was not
// acknowledged stays for the next round. Hints stored during the round
// wait for the next one.
func (h *handoff) deliver(target string) {
	n := h.n
	start := time.Now()
	d := newHintDelivery(n.deliveryLimits())
	type answer struct {
		b   *hintBatch
		err error
	}
	// One slot per batch in flight: a sender never blocks on it.
	answers := make(chan answer, defaultDeliveryLimits.InFlight)
	delivered := 0
	send := func() {
		for {
			b, ok := d.Next()
			if !ok {
				return
			}
			go func() { answers <- answer{b, n.sendHints(target, b)} }()
		}
	}
	settle := func(a answer) {
		if a.err != nil {
			d.Failed(a.b, a.err)
			return
		}
		deleted, err := n.store.DeleteHints(d.Acked(a.b))
		if deleted > 0 {
			delivered += deleted
			h.delivered.Add(int64(deleted))
			n.metrics.HintsDelivered.Add(n.bgCtx, int64(deleted), metric.WithAttributes(telemetry.HintTarget(target)))
		}
		if err != nil {
			d.Stop(err)
		}
	}
	errStopped := errors.New("node: hint delivery round stopped")
	err := n.store.Hints(target, 0, func(hint store.Hint) error {
		if err := n.bgCtx.Err(); err != nil {
			d.Stop(err)
		}
		if n.coordinator.inFlight(target, hint.Keyspace, hint.Key) {
			return nil // a write-ahead hint its write's own copy is delivering
		}
		d.Add(hint)
		send()
		for !d.WantHints() && d.Err() == nil {
			settle(<-answers)
			send()
		}
		if d.Err() != nil {
			return errStopped
		}
		return nil
	})
	if errors.Is(err, errStopped) {
		err = nil // d holds the cause
	}
	d.End(err)
	send()
	for !d.Done() {
		settle(<-answers)
		send()
	}
	for _, hint := range d.TooLarge() {
		if _, warned := h.tooLarge.LoadOrStore(target+"\x00"+hint.Keyspace+"\x00"+string(hint.Key), true); warned {
			continue // said once per node run; each is at least a frame, so few
		}
		n.log.Warn("hint too large for one message: it waits until it expires, then repair covers its range", "target", target, "keyspace", hint.Keyspace, "key", fmt.Sprintf("%q", hint.Key), "bytes", hint.Bytes)
	}
	if err := d.Err(); err != nil {
		n.log.Info("hint delivery paused", "target", target, "delivered", delivered, "err", err)
	}
	if delivered > 0 {
		took := time.Since(start)
		n.log.Info("hints delivered", "target", target, "count", delivered, "took", took.Round(time.Millisecond),
			"per_second", int(float64(delivered)/max(took.Seconds(), 1e-3)))
	}
}

// deliveryLimits are the default delivery limits with the largest hint
// raised to what one message may carry (the node's message limit, less
// room for the envelope): a hint as large as any object a merge can make
// travels alone, in fragments.
func (n *Node) deliveryLimits() deliveryLimits {
	lim := defaultDeliveryLimits
	lim.MaxHintBytes = max(lim.MaxHintBytes, n.cfg.messageLimit()-64<<10)
	return lim
}
