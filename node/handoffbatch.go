package node

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-kv/meridian/store"
	"github.com/meridian-kv/meridian/telemetry"
)

// sendHints delivers batch b to target: one message, answered once the
// target has merged every object durably. Its span links to the writes
// that left the hints, as the delivery of a single hint did.
func (n *Node) sendHints(target string, b *hintBatch) (err error) {
	ctx, cancel := context.WithTimeout(n.bgCtx, n.cfg.Limits.RequestTimeout)
	defer cancel()
	var links []trace.Link
	seen := map[string]bool{}
	items := make([]hintItem, len(b.hints))
	for i, h := range b.hints {
		items[i] = hintItem{Key: h.Key, Object: h.Object}
		if len(h.Trace) > 0 && !seen[string(h.Trace)] {
			seen[string(h.Trace)] = true
			links = append(links, linkTo(h.Trace)...)
		}
	}
	ctx, span := n.tracer.Start(ctx, "hint.deliver "+target, trace.WithLinks(links...),
		trace.WithAttributes(telemetry.HintTarget(target), telemetry.Namespace(b.keyspace), telemetry.Node(n.cfg.ID),
			attribute.Int("meridian.hints.count", len(b.hints))))
	defer func() { spanError(span, err); span.End() }()
	if target == n.cfg.ID {
		return n.mergeHints(ctx, b.keyspace, items) // as writeReplica does
	}
	return n.peers.call(ctx, target, typeHintDeliver, &hintDeliver{Keyspace: b.keyspace, Items: items}, decodeAck)
}

// mergeHints merges a delivered batch of hints into this node's store, in
// one synced batch. A batch that is not well formed is refused whole.
func (n *Node) mergeHints(ctx context.Context, ks string, items []hintItem) (err error) {
	span := n.storeSpan(ctx, "store.merge_many", ks)
	defer func() { spanError(span, err); span.End() }()
	if _, cerr := n.keyspace(ks); cerr != nil {
		return cerr
	}
	kos, err := hintBatchObjects(ks, items)
	if err != nil {
		return err
	}
	_, err = n.store.MergeMany(ks, kos)
	return err
}

// hintBatchObjects checks a received batch and returns what to merge: at
// most store.MaxMergeBatch items, each with a valid object. Keys are
// checked by the store.
func hintBatchObjects(ks string, items []hintItem) ([]store.KeyObject, error) {
	if len(items) > store.MaxMergeBatch {
		return nil, fmt.Errorf("node: a hint batch of %d objects exceeds %d (the sender must split it)", len(items), store.MaxMergeBatch)
	}
	kos := make([]store.KeyObject, len(items))
	for i, it := range items {
		if it.Object == nil {
			return nil, fmt.Errorf("node: hint batch item %d of keyspace %q holds no object", i, ks)
		}
		if err := it.Object.Validate(); err != nil {
			return nil, fmt.Errorf("node: hint batch item %d of keyspace %q: %w", i, ks, err)
		}
		kos[i] = store.KeyObject{Key: it.Key, Object: it.Object}
	}
	return kos, nil
}
