package node

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

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
	if n.health.usable(id) {
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
		if fb == id || fb == n.cfg.ID || !n.health.usable(fb) {
			continue
		}
		hctx, cancel := context.WithTimeout(n.bgCtx, n.cfg.Limits.RequestTimeout)
		err := n.call(hctx, fb, typeHintWrite, &hintWrite{Target: id, Keyspace: ks, Key: key, Object: obj}, decodeAck)
		cancel()
		if err == nil {
			return ack{node: id, dc: dc, hinted: true}
		}
	}
	if err := n.keepHint(ctx, id, ks, key, obj); err != nil {
		return ack{node: id, dc: dc, err: errors.Join(cause, err)}
	}
	return ack{node: id, dc: dc, hinted: true}
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
		if m, ok := n.view.Load().members[target]; ok {
			n.markDirty(ks, m.DC, key)
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
}

// handoff timing.
const (
	handoffInterval = time.Second
	expireInterval  = time.Minute
	deliverBatch    = 256
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
				if m, ok := n.view.Load().members[d.Target]; ok {
					n.markDirtyToken(d.Keyspace, m.DC, d.Token)
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
		for target := range n.store.HintStats() {
			if n.bgCtx.Err() != nil {
				return
			}
			if _, known := n.view.Load().members[target]; !known || !n.health.usable(target) {
				continue
			}
			h.deliver(target)
		}
	}
}

// deliver sends target its hints, in batches, until none are left or a
// delivery fails. A hint is deleted only after the target acknowledged a
// synced merge, and only if it did not change meanwhile; delivery merges,
// so a hint never overwrites newer data at the target.
func (h *handoff) deliver(target string) {
	n := h.n
	start, sent := time.Now(), 0
	for n.bgCtx.Err() == nil {
		seen := 0
		err := n.store.Hints(target, deliverBatch, func(hint store.Hint) (err error) {
			seen++
			ctx, cancel := context.WithTimeout(n.bgCtx, n.cfg.Limits.RequestTimeout)
			defer cancel()
			// Each delivery is its own trace, linked to the write that left
			// the hint.
			ctx, span := n.tracer.Start(ctx, "hint.deliver "+target, trace.WithLinks(linkTo(hint.Trace)...),
				trace.WithAttributes(telemetry.HintTarget(target), telemetry.Namespace(hint.Keyspace), telemetry.Node(n.cfg.ID)))
			defer func() { spanError(span, err); span.End() }()
			if err := n.writeReplica(ctx, target, hint.Keyspace, hint.Key, hint.Object); err != nil {
				return err
			}
			deleted, err := n.store.DeleteHint(hint)
			if err != nil {
				return err
			}
			if deleted {
				h.delivered.Add(1)
				n.metrics.HintsDelivered.Add(ctx, 1, metric.WithAttributes(telemetry.HintTarget(target)))
				sent++
			}
			return nil
		})
		if err != nil {
			n.log.Info("hint delivery paused", "target", target, "delivered", sent, "err", err)
			return
		}
		if seen < deliverBatch {
			break
		}
	}
	if sent > 0 {
		n.log.Info("hints delivered", "target", target, "count", sent, "took", time.Since(start).Round(time.Millisecond))
	}
}
