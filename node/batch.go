package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/repair"
	"github.com/meridian-kv/meridian/store"
	"github.com/meridian-kv/meridian/telemetry"
	"github.com/meridian-kv/meridian/version"
	"github.com/meridian-kv/meridian/wan"
)

// Replica writes and reads to one peer are coalesced, as a store's group
// commit coalesces writes into one fsync: each peer has a lane for writes
// and one for reads, and a lane sends one typeReplicaBatch at a time.
// A request that finds its lane idle goes at once, alone; requests that
// arrive while a batch is out queue, and leave together as the next batch
// when it returns. The replica merges a batch's writes in one synced
// store batch per keyspace (store.MergeMany) and answers every item in one
// reply. Under load a batch carries many requests for the packets, stream,
// handler run and fsync of one; an idle lane adds nothing to a request's
// latency but a hand-off to a background worker.
//
// A third lane carries digest reads (typeDigestBatch): a coordinator that
// reads its own copy of a key asks the other replicas of its datacenter for
// the key hash of theirs (repair.KeyHash, 16 bytes), and for the object only
// where the two differ, as Cassandra's digest reads do. A replica's reply
// then carries no value, however large the object.
//
// Each item keeps its own outcome: a write's ack is its own, a read its
// own object or error, and a batch that fails (unreachable, timed out,
// refused) fails each of its items as the single call would have. An
// item whose request ended while it was queued is dropped unsent. A peer
// that refuses the message type (a node of an earlier release, during a
// rolling upgrade) is sent single calls for batchRetry.

const (
	// maxBatchItems bounds the requests of one batch.
	maxBatchItems = 256
	// maxBatchBytes bounds the object bytes of one batch's writes.
	maxBatchBytes = 1 << 20
	// maxBatchedObject: a larger object is written by a call of its own,
	// so it neither delays nor inflates a batch.
	maxBatchedObject = 64 << 10
	// batchReplyBudget bounds the object bytes of one batch's read reply:
	// the replica answers the reads past it with Again, and the caller
	// reads those with calls of their own.
	batchReplyBudget = 1 << 20
	// batchRetry is how long a peer that refused a batch gets single calls
	// before batches are tried again.
	batchRetry = time.Minute
)

// batchKind names a lane: replica writes, replica reads or digest reads.
type batchKind uint8

const (
	batchWrites batchKind = iota
	batchReads
	batchDigests
)

// op is the operation name of the kind's requests (trace.go).
func (k batchKind) op() string {
	switch k {
	case batchWrites:
		return opName(typeReplicaWrite)
	case batchDigests:
		return "replica.digest" // no message of its own: digests travel in batches only
	}
	return opName(typeReplicaRead)
}

// batchItem is one queued replica request.
type batchItem struct {
	ctx  context.Context
	ks   string
	key  []byte
	obj  *version.Object // a write's object
	size int             // a write's object bytes
	span trace.Span      // the request's client span, ended with its result
	done chan batchResult

	sent bool // guarded by the lane's mu: taken into a batch
}

// batchResult is one item's outcome.
type batchResult struct {
	obj    *version.Object // a read's object
	digest repair.Hash     // a digest read's
	err    error
	// again: not served by the batch (a peer that does not take batches, or
	// a read reply past its budget); the caller sends a call of its own.
	again bool
}

// lane queues one kind of request to one peer.
type lane struct {
	mu    sync.Mutex
	queue []*batchItem
	busy  bool // a sender is running
}

type laneKey struct {
	peer string
	kind batchKind
}

// batcher holds a node's lanes.
type batcher struct {
	// send sends one batch to peer and delivers every item's result.
	send func(ctx context.Context, peer string, kind batchKind, items []*batchItem)
	// spawn runs f on a background worker; false if the node is closing.
	spawn  func(f func()) bool
	tracer trace.Tracer
	// base is the parent of every batch's context: the node's background
	// context, which its Close cancels.
	base context.Context

	mu      sync.Mutex
	lanes   map[laneKey]*lane
	refused map[string]time.Time // peer -> until when it gets single calls
	// noDigests: peer -> until when its reads ask for objects, the peer
	// having refused digest batches.
	noDigests map[string]time.Time
}

func newBatcher(base context.Context, tracer trace.Tracer, spawn func(func()) bool, send func(context.Context, string, batchKind, []*batchItem)) *batcher {
	return &batcher{send: send, spawn: spawn, tracer: tracer, base: base, lanes: map[laneKey]*lane{},
		refused: map[string]time.Time{}, noDigests: map[string]time.Time{}}
}

// single reports whether peer is to get single calls for now.
func (b *batcher) single(peer string) bool { return b.refusing(b.refused, peer) }

// digestless reports whether peer's reads are to ask for objects for now.
func (b *batcher) digestless(peer string) bool { return b.refusing(b.noDigests, peer) }

func (b *batcher) refusing(m map[string]time.Time, peer string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	until, ok := m[peer]
	if ok && time.Now().After(until) {
		delete(m, peer)
		return false
	}
	return ok
}

// refuse makes peer get single calls for batchRetry, or, for kind
// batchDigests, object reads instead of digest reads.
func (b *batcher) refuse(peer string, kind batchKind) {
	b.mu.Lock()
	m := b.refused
	if kind == batchDigests {
		m = b.noDigests
	}
	m[peer] = time.Now().Add(batchRetry)
	b.mu.Unlock()
}

func (b *batcher) lane(k laneKey) *lane {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.lanes[k]
	if l == nil {
		l = &lane{}
		b.lanes[k] = l
	}
	return l
}

// do queues it on peer's lane of kind and waits for its result: its
// batch's answer, or the end of its request.
func (b *batcher) do(peer string, kind batchKind, it *batchItem) batchResult {
	var ctx context.Context
	var span trace.Span
	if telemetry.Noop(b.tracer) {
		ctx, span = telemetry.StartQuiet(b.tracer, it.ctx)
	} else {
		ctx, span = b.tracer.Start(it.ctx, kind.op()+" "+peer, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(telemetry.Operation(kind.op()), telemetry.Node(peer), attribute.Bool("meridian.batched", true)))
	}
	it.ctx, it.span = ctx, span
	it.done = make(chan batchResult, 1)
	l := b.lane(laneKey{peer, kind})
	l.mu.Lock()
	l.queue = append(l.queue, it)
	start := !l.busy
	l.busy = true
	l.mu.Unlock()
	if start && !b.spawn(func() { b.drain(peer, kind, l) }) {
		b.drain(peer, kind, l) // closing: fail what is queued here
	}
	var res batchResult
	select {
	case res = <-it.done:
	case <-it.ctx.Done():
		l.mu.Lock()
		sent := it.sent
		if !sent {
			if i := indexOf(l.queue, it); i >= 0 {
				l.queue = append(l.queue[:i], l.queue[i+1:]...)
			}
		}
		l.mu.Unlock()
		select {
		case res = <-it.done: // the answer came with the end: keep it
		default:
			if sent {
				res.err = fmt.Errorf("%w: call %s: %w", wan.ErrOutcomeUnknown, peer, it.ctx.Err())
			} else {
				res.err = fmt.Errorf("wan: call %s: %w", peer, it.ctx.Err())
			}
		}
	}
	if res.err != nil {
		span.RecordError(res.err)
		span.SetStatus(codes.Error, res.err.Error())
	}
	span.End()
	return res
}

func indexOf(q []*batchItem, it *batchItem) int {
	for i, x := range q {
		if x == it {
			return i
		}
	}
	return -1
}

// drain sends l's queue as batches until it is empty.
func (b *batcher) drain(peer string, kind batchKind, l *lane) {
	for {
		items := b.take(l)
		if len(items) == 0 {
			return
		}
		ctx, cancel := batchContext(b.base, items)
		b.send(ctx, peer, kind, items)
		cancel()
	}
}

// take takes the next batch off l's queue, or marks l idle when the queue
// is empty.
func (b *batcher) take(l *lane) []*batchItem {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, bytes := 0, 0
	for n < len(l.queue) && n < maxBatchItems {
		if n > 0 && bytes+l.queue[n].size > maxBatchBytes {
			break
		}
		bytes += l.queue[n].size
		n++
	}
	if n == 0 {
		l.busy = false
		return nil
	}
	items := make([]*batchItem, n)
	copy(items, l.queue)
	l.queue = append(l.queue[:0], l.queue[n:]...)
	for _, it := range items {
		it.sent = true
	}
	return items
}

// batchContext is the context of a batch's call: base with the latest of
// its items' deadlines, none of their cancellations (an item whose request
// ends stops waiting on its own), and the first item's span as parent of
// the batch's spans.
func batchContext(base context.Context, items []*batchItem) (context.Context, context.CancelFunc) {
	var deadline time.Time
	for _, it := range items {
		d, ok := it.ctx.Deadline()
		if !ok {
			d = time.Now().Add(DefaultRequestTimeout)
		}
		if d.After(deadline) {
			deadline = d
		}
	}
	return context.WithDeadline(trace.ContextWithSpan(base, items[0].span), deadline)
}

// deliver hands each item its result.
func deliver(items []*batchItem, res func(i int) batchResult) {
	for i, it := range items {
		it.done <- res(i)
	}
}

// sendBatch is the node's batcher.send: one typeReplicaBatch call, or
// typeDigestBatch for digest reads.
func (n *Node) sendBatch(ctx context.Context, peer string, kind batchKind, items []*batchItem) {
	if kind == batchDigests {
		n.sendDigests(ctx, peer, items)
		return
	}
	req := &replicaBatch{}
	tps, links := itemTraces(items)
	for i, it := range items {
		if kind == batchWrites {
			req.Writes = append(req.Writes, batchWrite{Keyspace: it.ks, Key: it.key, Object: it.obj, Traceparent: tps[i]})
		} else {
			req.Reads = append(req.Reads, batchRead{Keyspace: it.ks, Key: it.key, Traceparent: tps[i]})
		}
	}
	ctx, span := n.batchSpan(ctx, "replica.batch", peer, links, len(items))
	defer span.End()
	n.metrics.CountBatched(ctx, kind.op(), len(items))
	var rep replicaBatchReply
	err := n.callBatch(ctx, span, peer, typeReplicaBatch, req, &rep, func() error {
		if len(rep.Writes) != len(req.Writes) || len(rep.Reads) != len(req.Reads) {
			return fmt.Errorf("a replica batch of %d writes and %d reads answered with %d and %d", len(req.Writes), len(req.Reads), len(rep.Writes), len(rep.Reads))
		}
		return nil
	})
	switch {
	case refusedBatch(err):
		// A node of an earlier release: it did nothing with the batch.
		n.log.Info("peer does not take replica batches; sending it single calls", "peer", peer, "for", batchRetry)
		n.batches.refuse(peer, kind)
		deliver(items, func(int) batchResult { return batchResult{again: true} })
	case err != nil:
		deliver(items, func(int) batchResult { return batchResult{err: err} })
	case kind == batchWrites:
		deliver(items, func(i int) batchResult {
			if msg := rep.Writes[i]; msg != "" {
				return batchResult{err: errors.New(msg)}
			}
			return batchResult{}
		})
	default:
		deliver(items, func(i int) batchResult {
			r := rep.Reads[i]
			switch {
			case r.Again:
				return batchResult{again: true}
			case r.Error != "":
				return batchResult{err: replicaReadError(r.Error)}
			}
			if err := r.Object.Validate(); err != nil {
				return batchResult{err: err}
			}
			return batchResult{obj: r.Object}
		})
	}
}

// callBatch sends a batch of type t to peer and decodes its one reply into
// rep, then checks it with check; the error, also recorded on span, is the
// call's, a decode's, check's, or a missing or second reply's.
func (n *Node) callBatch(ctx context.Context, span trace.Span, peer string, t wan.MsgType, req, rep any, check func() error) error {
	answered := false
	err := n.peers.call(ctx, peer, t, req, func(e *wan.Envelope) error {
		if answered {
			return fmt.Errorf("a second reply to a %s", opName(t))
		}
		answered = true
		if err := e.Decode(rep); err != nil {
			return err
		}
		return check()
	})
	if err == nil && !answered {
		err = fmt.Errorf("%w: %s closed a %s without an answer", wan.ErrOutcomeUnknown, peer, opName(t))
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

// itemTraces returns each item's traceparent ("" outside a trace), which
// the batch carries so that the peer's span of the item joins its trace,
// and links from the batch's span to every item's but the first (its
// parent, batchContext).
func itemTraces(items []*batchItem) (tps []string, links []trace.Link) {
	tps = make([]string, len(items))
	links = make([]trace.Link, 0, len(items)-1)
	for i, it := range items {
		if it.span.SpanContext().IsValid() {
			tps[i], _ = telemetry.Inject(it.ctx)
		}
		if i > 0 {
			links = append(links, trace.Link{SpanContext: it.span.SpanContext()})
		}
	}
	return tps, links
}

// sendDigests sends one typeDigestBatch call of digest reads to peer.
func (n *Node) sendDigests(ctx context.Context, peer string, items []*batchItem) {
	req := &digestBatch{Reads: make([]batchRead, len(items))}
	tps, links := itemTraces(items)
	for i, it := range items {
		req.Reads[i] = batchRead{Keyspace: it.ks, Key: it.key, Traceparent: tps[i]}
	}
	ctx, span := n.batchSpan(ctx, opName(typeDigestBatch), peer, links, len(items))
	defer span.End()
	n.metrics.CountBatched(ctx, batchDigests.op(), len(items))
	var rep digestBatchReply
	err := n.callBatch(ctx, span, peer, typeDigestBatch, req, &rep, func() error {
		if len(rep.Digests) != len(req.Reads) {
			return fmt.Errorf("a digest batch of %d reads answered with %d", len(req.Reads), len(rep.Digests))
		}
		for _, d := range rep.Digests {
			if d.Error == "" && len(d.Digest) != repair.HashSize {
				return fmt.Errorf("a digest of %d bytes (want %d)", len(d.Digest), repair.HashSize)
			}
		}
		return nil
	})
	switch {
	case refusedBatch(err):
		// A node of an earlier release: it read nothing.
		n.log.Info("peer does not take digest reads; reading objects from it", "peer", peer, "for", batchRetry)
		n.batches.refuse(peer, batchDigests)
		deliver(items, func(int) batchResult { return batchResult{again: true} })
	case err != nil:
		deliver(items, func(int) batchResult { return batchResult{err: err} })
	default:
		deliver(items, func(i int) batchResult {
			d := rep.Digests[i]
			if d.Error != "" {
				return batchResult{err: replicaReadError(d.Error)}
			}
			return batchResult{digest: repair.Hash(d.Digest)}
		})
	}
}

// refusedBatch reports whether err is a peer's refusal of the message
// type: it runs a release without replica batches.
func refusedBatch(err error) bool {
	var re *wan.RemoteError
	return errors.As(err, &re) && re.Code == api.CodeBadRequest && strings.Contains(re.Message, "unknown message type")
}

// batchedWrite writes obj to peer through its write lane. ok is false
// when the write is to go as a call of its own.
func (n *Node) batchedWrite(ctx context.Context, peer, ks string, key []byte, obj *version.Object) (ok bool, err error) {
	size := objectBytes(obj)
	if n.batches == nil || size > maxBatchedObject || n.batches.single(peer) {
		return false, nil
	}
	res := n.batches.do(peer, batchWrites, &batchItem{ctx: ctx, ks: ks, key: key, obj: obj, size: size})
	if res.again {
		return false, nil
	}
	return true, res.err
}

// batchedRead reads peer's copy of key through its read lane. ok is false
// when the read is to go as a call of its own.
func (n *Node) batchedRead(ctx context.Context, peer, ks string, key []byte) (obj *version.Object, ok bool, err error) {
	if n.batches == nil || n.batches.single(peer) {
		return nil, false, nil
	}
	res := n.batches.do(peer, batchReads, &batchItem{ctx: ctx, ks: ks, key: key})
	if res.again {
		return nil, false, nil
	}
	if res.err == nil && res.obj == nil {
		res.obj = version.New()
	}
	return res.obj, true, res.err
}

// digestRead asks peer for the digest of its copy of key through its
// digest lane. ok is false when the peer is to be asked for the object
// instead: there are no lanes, the peer takes no batches or no digests.
func (n *Node) digestRead(ctx context.Context, peer, ks string, key []byte) (d repair.Hash, ok bool, err error) {
	if n.batches == nil || n.batches.single(peer) || n.batches.digestless(peer) {
		return d, false, nil
	}
	res := n.batches.do(peer, batchDigests, &batchItem{ctx: ctx, ks: ks, key: key})
	if res.again {
		return d, false, nil
	}
	return res.digest, true, res.err
}

// serveDigests answers a digest batch from peer: the key hash of this
// node's copy of each key, or why it could not be read.
func (n *Node) serveDigests(ctx context.Context, from string, b *digestBatch) *digestBatchReply {
	rep := &digestBatchReply{Node: n.cfg.ID, Digests: make([]batchDigest, len(b.Reads))}
	for i, r := range b.Reads {
		span := n.itemSpan(ctx, batchDigests.op(), from, r.Traceparent)
		obj, err := n.readLocal(r.Keyspace, r.Key, false)
		spanError(span, err)
		span.End()
		if err != nil {
			rep.Digests[i].Error = err.Error()
			continue
		}
		h := repair.KeyHash(r.Key, obj)
		rep.Digests[i].Digest = h[:]
	}
	return rep
}

// serveBatch answers a replica batch from peer: its writes merged, a
// synced store batch per keyspace, and its reads, each item's outcome on
// its own. Each item has its own server span in its request's trace, as a
// call of its own would.
func (n *Node) serveBatch(ctx context.Context, from string, b *replicaBatch) *replicaBatchReply {
	rep := &replicaBatchReply{Node: n.cfg.ID}
	if len(b.Writes) > 0 {
		rep.Writes = n.mergeBatch(ctx, from, b.Writes)
	}
	if len(b.Reads) > 0 {
		rep.Reads = make([]batchObject, len(b.Reads))
		budget := batchReplyBudget
		for i, r := range b.Reads {
			if budget <= 0 {
				rep.Reads[i].Again = true
				continue
			}
			span := n.itemSpan(ctx, batchReads.op(), from, r.Traceparent)
			obj, err := n.readLocal(r.Keyspace, r.Key, false)
			spanError(span, err)
			span.End()
			if err != nil {
				rep.Reads[i].Error = err.Error()
				continue
			}
			size := objectBytes(obj)
			if size > budget {
				rep.Reads[i].Again = true
				budget = 0
				continue
			}
			budget -= size
			rep.Reads[i].Object = obj
		}
	}
	return rep
}

// itemSpan starts the server span of one request of a batch from peer,
// in the request's own trace, as a call of its own would have.
func (n *Node) itemSpan(ctx context.Context, op, from, traceparent string) trace.Span {
	_, span := n.serveSpan(ctx, op, traceparent, "", telemetry.Node(from), attribute.Bool("meridian.batched", true))
	return span
}

// mergeBatch merges a batch's writes: per keyspace, one synced store
// batch. A keyspace this node does not know fails its writes; a store
// batch that fails is retried key by key, so each write gets its own
// error.
func (n *Node) mergeBatch(ctx context.Context, from string, writes []batchWrite) []string {
	errs := make([]string, len(writes))
	spans := make([]trace.Span, len(writes))
	for i, w := range writes {
		spans[i] = n.itemSpan(ctx, batchWrites.op(), from, w.Traceparent)
	}
	byKS := map[string][]int{}
	var order []string
	for i, w := range writes {
		if _, cerr := n.keyspace(w.Keyspace); cerr != nil {
			errs[i] = cerr.Error()
			continue
		}
		if _, ok := byKS[w.Keyspace]; !ok {
			order = append(order, w.Keyspace)
		}
		byKS[w.Keyspace] = append(byKS[w.Keyspace], i)
	}
	for _, ks := range order {
		idx := byKS[ks]
		items := make([]store.KeyObject, 0, len(idx))
		for _, i := range idx {
			if writes[i].Object != nil {
				items = append(items, store.KeyObject{Key: writes[i].Key, Object: writes[i].Object})
			}
		}
		span := n.storeSpan(ctx, "store.merge_many", ks)
		_, err := n.store.MergeMany(ks, items)
		spanError(span, err)
		span.End()
		if err == nil {
			continue
		}
		if errors.Is(err, store.ErrFailed) {
			for _, i := range idx {
				errs[i] = err.Error()
			}
			continue
		}
		for _, i := range idx {
			errs[i] = errString(n.mergeLocal(ctx, ks, writes[i].Key, writes[i].Object))
		}
	}
	for i, span := range spans {
		if errs[i] != "" {
			span.SetStatus(codes.Error, errs[i])
		}
		span.End()
	}
	return errs
}
