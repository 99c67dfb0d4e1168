package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/consistency"
	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/telemetry"
	"github.com/meridian-kv/meridian/version"
	"github.com/meridian-kv/meridian/wan"
)

// errTooManySiblings is returned by the local update when a write would grow
// a key past the keyspace's hard sibling limit.
var errTooManySiblings = errors.New("too many siblings")

// errLearnFirst is returned by the local update, which then writes
// nothing, when this node's copy is near a limit: the coordinator learns
// the other replicas' copies first (learnReplicas) and updates again.
var errLearnFirst = errors.New("near a limit: learn the replicas' copies first")

// ack is one replica's answer to a write.
type ack struct {
	node, dc string
	err      error
	// hinted: the replica was not reached; a hint for it is durable.
	hinted bool
	// kept: hinted, and the hint is in this node's store.
	kept bool
}

// put validates a client write and coordinates it (or forwards it to a
// replica).
func (n *Node) put(ctx context.Context, r *api.PutRequest) (*api.PutResponse, *api.ClientError) {
	ks, plan, cerr := n.planFor(r.Keyspace, r.Key)
	if cerr != nil {
		return nil, cerr
	}
	ctxVec, cerr := r.ValidateContext()
	if cerr != nil {
		return nil, cerr
	}
	if len(r.Value) > n.cfg.Limits.MaxValueBytes {
		return nil, api.Errorf(api.CodeTooLarge, "meridian: value of %d bytes is larger than the %d-byte limit (limits.max_value_bytes)", len(r.Value), n.cfg.Limits.MaxValueBytes)
	}
	if r.Delete && len(r.Value) > 0 {
		return nil, api.Errorf(api.CodeBadRequest, "meridian: a delete carries no value")
	}
	spec, err := consistency.Parse(orDefault(r.Consistency, ks.WriteConsistency))
	if err != nil {
		return nil, api.Errorf(api.CodeConsistency, "meridian: %v", err)
	}
	localDC := n.cfg.DC
	if r.Forwarded && r.LocalDC != "" {
		localDC = r.LocalDC
	}
	need, err := spec.Resolve(ks.Replication, localDC)
	if err != nil {
		return nil, api.Errorf(api.CodeConsistency, "meridian: %v", err)
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(telemetry.ReplicasRequired(need.PerDC)...)
	}
	if !plan.Contains(n.cfg.ID) {
		if r.Forwarded {
			return nil, api.Errorf(api.CodeUnavailable, "meridian: forwarded put reached %s, which is not a replica (ring views differ)", n.cfg.ID)
		}
		return n.forwardPut(ctx, r, plan)
	}

	// Apply locally first: this replica mints the dot (version.Object.Update).
	// The same synced batch queues the new object as a hint for every other
	// replica (writeahead.go), so the write reaches them even if this node
	// dies before its copies leave. The copies leave as soon as the batch
	// is applied, while it syncs here (store.Queue.Applied): a dot sent
	// before this node's own copy was durable is never minted again,
	// because a node that restarts after a crash is a new actor
	// (store.Store.Actor).
	targets := n.replicaTargets(plan)
	var (
		obj      *version.Object
		dropped  []string
		landed   func()
		acks     <-chan ack // set once the copies are on their way
		learned  bool
		siblings int
		size     int
	)
	for {
		landed = n.coordinator.launch(targets, r.Keyspace, r.Key)
		q := n.queueFor(ctx, targets)
		q.Applied = func(next *version.Object) {
			acks = n.replicate(ctx, r.Keyspace, r.Key, next, plan, landed)
		}
		span := n.storeSpan(ctx, "store.update", r.Keyspace)
		obj, _, dropped, err = n.store.UpdateQueued(r.Keyspace, r.Key, func(cur *version.Object) (*version.Object, error) {
			if !learned && n.nearLimit(ks, cur, ctxVec) {
				return nil, errLearnFirst
			}
			next := n.mintBase(cur).Update(ctxVec, n.ident.actor, version.Write{Value: r.Value, Deleted: r.Delete, WrittenAt: n.now().UnixNano(), Trace: traceRef(ctx)})
			if len(next.Siblings) > ks.MaxSiblings && len(next.Siblings) > len(cur.Siblings) {
				siblings = len(cur.Siblings)
				return nil, errTooManySiblings
			}
			if size = objectBytes(next); size > n.cfg.Limits.MaxObjectBytes && size > objectBytes(cur) {
				return nil, errObjectTooLarge
			}
			return next, nil
		}, q)
		if !errors.Is(err, errLearnFirst) {
			spanError(span, err)
		}
		span.End()
		if err != nil && acks == nil {
			landed() // the copies that did leave unmark them when they end
		}
		if !errors.Is(err, errLearnFirst) {
			break
		}
		// Near a limit: check it against the replicas' merged copies, not
		// only this node's (limits.go), then write.
		learned = true
		n.learnReplicas(ctx, r.Keyspace, r.Key, plan)
	}
	if errors.Is(err, errTooManySiblings) {
		return nil, api.Errorf(api.CodeTooManySiblings, "meridian: key has %d siblings, the keyspace's max_siblings is %d: read it, merge the values and write back with the context from that read to resolve them", siblings, ks.MaxSiblings)
	}
	if errors.Is(err, errObjectTooLarge) {
		return nil, api.Errorf(api.CodeTooLarge, "meridian: the write would grow the key's siblings to %d bytes of values, past limits.max_object_bytes (%d): read it, merge the values and write back with the context from that read to resolve them", size, n.cfg.Limits.MaxObjectBytes)
	}
	if err != nil && acks != nil {
		return nil, api.Errorf(api.CodeInternal, "meridian: local write on %s failed after its copies left for the other replicas; it may have been applied there: %v", n.cfg.ID, err)
	}
	if err != nil {
		return nil, api.Errorf(api.CodeInternal, "meridian: local write on %s failed: %v", n.cfg.ID, err)
	}

	asked := map[string]int{}
	for dc, reps := range plan.Replicas {
		asked[dc] = len(reps)
	}
	tally := consistency.NewTally(need, asked)
	tally.Ack(n.cfg.DC)
	if len(dropped) > 0 {
		n.queueDropped(ctx, r.Keyspace, r.Key, dropped)
	}
	if acks == nil {
		// Nothing was queued (no other replica, or hints are off): the
		// copies leave now.
		acks = n.replicate(ctx, r.Keyspace, r.Key, obj, plan, landed)
	}

	res := &api.PutResponse{Context: version.EncodeContext(obj.Context()), Siblings: len(obj.Live()), Coordinator: n.cfg.ID}
	if len(obj.Siblings) > ks.WarnSiblings {
		res.Warning = fmt.Sprintf("key has %d siblings (warn_siblings is %d); resolve them by writing with a read's context", len(obj.Siblings), ks.WarnSiblings)
	}
	if err := n.await(ctx, tally, acks, "put", ks.HintedWritesCount); err != nil {
		return nil, err
	}
	res.Acked = tally.Acked()
	return res, nil
}

// await collects acks until the tally is met, cannot be met, or ctx ends.
// A hinted ack counts only if countHinted (the keyspace's
// hinted_writes_count).
func (n *Node) await(ctx context.Context, tally *consistency.Tally, acks <-chan ack, op string, countHinted bool) *api.ClientError {
	var lastErr error
	for !tally.Met() {
		if !tally.Possible() {
			return quorumError(tally, op, lastErr)
		}
		select {
		case a := <-acks:
			switch {
			case a.err != nil:
				lastErr = fmt.Errorf("%s: %w", a.node, a.err)
				tally.Fail(a.dc)
			case a.hinted && !countHinted:
				lastErr = fmt.Errorf("%s: unreachable, hinted", a.node)
				tally.Fail(a.dc)
			default:
				tally.Ack(a.dc)
			}
		case <-ctx.Done():
			return quorumError(tally, op, fmt.Errorf("timed out: %w", ctx.Err()))
		}
	}
	return nil
}

func quorumError(t *consistency.Tally, op string, cause error) *api.ClientError {
	c := ""
	if cause != nil {
		c = "last error: " + cause.Error()
	}
	qe := t.Err(op, c).(*consistency.QuorumError)
	return &api.ClientError{Code: api.CodeQuorum, Message: "meridian: " + qe.Error(), Quorum: qe}
}

// replicate sends obj to every replica of plan except this node: directly
// inside this datacenter, through one relay per remote datacenter. It
// returns at once; acks arrive on the channel (buffered for every replica,
// so the senders never block) and the sends outlive the request, bounded by
// the request timeout. A replica that cannot be written gets a hint. Once
// every replica answered, the write-ahead hints of those reached are
// removed and done is called (fanout).
func (n *Node) replicate(reqCtx context.Context, ks string, key []byte, obj *version.Object, plan placement.Plan, done func()) <-chan ack {
	total := 0
	for _, reps := range plan.Replicas {
		total += len(reps)
	}
	acks := make(chan ack, total)
	f := &fanout{n: n, ks: ks, key: key, obj: obj, acks: acks, done: done, left: total}
	if plan.Contains(n.cfg.ID) {
		f.left--
	}
	if f.left == 0 {
		done()
		return acks
	}
	for dc, reps := range plan.Replicas {
		fallbacks := memberIDs(plan.Fallbacks[dc])
		if dc == n.cfg.DC {
			for _, m := range reps {
				if m.ID == n.cfg.ID {
					continue
				}
				n.goBackgroundFrom(reqCtx, func(ctx context.Context) {
					f.report(n.writeOrHint(ctx, m.ID, dc, ks, key, obj, fallbacks))
				})
			}
			continue
		}
		targets := memberIDs(reps)
		n.goBackgroundFrom(reqCtx, func(ctx context.Context) {
			n.relayWrite(ctx, dc, ks, key, obj, targets, fallbacks, f.report)
		})
	}
	return acks
}

// writeReplica merges obj into one replica, which may be this node.
func (n *Node) writeReplica(ctx context.Context, id, ks string, key []byte, obj *version.Object) error {
	if id == n.cfg.ID {
		return n.mergeLocal(ctx, ks, key, obj)
	}
	if ok, err := n.batchedWrite(ctx, id, ks, key, obj); ok {
		return err
	}
	return n.peers.call(ctx, id, typeReplicaWrite, &replicaWrite{Keyspace: ks, Key: key, Object: obj}, decodeAck)
}

// decodeAck turns a replicaAck reply into an error.
func decodeAck(e *wan.Envelope) error {
	var a replicaAck
	if err := e.Decode(&a); err != nil {
		return err
	}
	if a.Error != "" {
		return errors.New(a.Error)
	}
	return nil
}

// relayWrite sends one WAN message to a relay replica of a remote
// datacenter, which writes to targets (or hints them there) and streams
// their acks. Relays are tried among the usable targets, then fallbacks,
// in order (viaRelay); targets that no relay reported on — the whole
// datacenter unreachable — get hints kept by this node, which delivers them
// when the datacenter returns.
// Exactly one ack per target is passed to report.
func (n *Node) relayWrite(ctx context.Context, dc, ks string, key []byte, obj *version.Object, targets, fallbacks []string, report func(ack)) {
	relays := append(append([]string(nil), targets...), fallbacks...)
	unanswered, lastErr := n.viaRelay(ctx, dc, relays, targets, typeRelayWrite,
		func(rest []string) any {
			return &relayWrite{Keyspace: ks, Key: key, Object: obj, Targets: rest, Fallbacks: fallbacks}
		},
		func(e *wan.Envelope, claim func(string) bool) error {
			var a replicaAck
			if err := e.Decode(&a); err != nil {
				return err
			}
			if !claim(a.Node) {
				return nil // unknown or duplicate: ignore
			}
			var aerr error
			if a.Error != "" {
				aerr = errors.New(a.Error)
			}
			report(ack{node: a.Node, dc: dc, err: aerr, hinted: a.Hinted})
			return nil
		})
	for _, t := range unanswered {
		a := ack{node: t, dc: dc, hinted: true, kept: true}
		if isTooLarge(lastErr) {
			// No relay and no hint can carry it: a local limit, not an outage.
			a = ack{node: t, dc: dc, err: lastErr}
		} else if n.cfg.Hints.Disabled {
			a = ack{node: t, dc: dc, err: fmt.Errorf("datacenter %s unreachable (%v) and hinted handoff is disabled", dc, lastErr)}
		} else if err := n.keepHint(ctx, t, ks, key, obj); err != nil {
			a = ack{node: t, dc: dc, err: err}
		}
		report(a)
	}
}

// viaRelay sends one request to a remote datacenter through a relay:
// relays are tried in order among the usable ones, each asked (request) for
// the targets still unanswered. handle decodes each streamed reply and
// calls claim with the target it is about; claim reports false for a
// target already answered or not asked, and the reply is then ignored. Once
// a relay answered for any target, no other relay is tried: what it did
// not report is returned as unanswered, in targets order, with the last
// call error.
func (n *Node) viaRelay(ctx context.Context, dc string, relays, targets []string, t wan.MsgType,
	request func(rest []string) any, handle func(e *wan.Envelope, claim func(string) bool) error) (unanswered []string, lastErr error) {
	pending := map[string]bool{}
	for _, id := range targets {
		pending[id] = true
	}
	claim := func(id string) bool {
		if !pending[id] {
			return false
		}
		delete(pending, id)
		return true
	}
	for i, relay := range relays {
		if len(pending) == 0 || ctx.Err() != nil {
			break
		}
		if !n.peers.usable(relay) {
			continue
		}
		rest := make([]string, 0, len(pending))
		for _, id := range targets {
			if pending[id] {
				rest = append(rest, id)
			}
		}
		before := len(pending)
		// A relay that died a moment ago still looks usable, and a call on
		// its dead connection waits out the deadline. While other relays
		// remain, give this one half the time left, so the next still has
		// time to carry the request.
		actx, cancel := ctx, context.CancelFunc(func() {})
		if dl, ok := ctx.Deadline(); ok && slices.ContainsFunc(relays[i+1:], n.peers.usable) {
			actx, cancel = context.WithTimeout(ctx, time.Until(dl)/2)
		}
		lastErr = n.peers.call(actx, relay, t, request(rest), func(e *wan.Envelope) error { return handle(e, claim) })
		cancel()
		if lastErr == nil || len(pending) < before {
			break
		}
		n.log.DebugContext(ctx, "relay unreachable, trying the next node", "relay", relay, "dc", dc, "err", lastErr)
	}
	for _, id := range targets {
		if pending[id] {
			unanswered = append(unanswered, id)
		}
	}
	return unanswered, lastErr
}

// forwardPut passes a put for a key this node holds no replica of to a
// replica: of this datacenter first, then of the others.
func (n *Node) forwardPut(ctx context.Context, r *api.PutRequest, plan placement.Plan) (*api.PutResponse, *api.ClientError) {
	fwd := *r
	fwd.Forwarded = true
	fwd.LocalDC = n.cfg.DC
	var lastErr error
	for _, m := range n.preferLocal(plan) {
		var res api.PutResponse
		var cerr *api.ClientError
		err := n.peers.call(ctx, m.ID, api.TypePut, &fwd, func(e *wan.Envelope) error {
			switch e.Type {
			case api.TypePutReply:
				return e.Decode(&res)
			case api.TypeClientError:
				cerr = &api.ClientError{}
				return e.Decode(cerr)
			}
			return fmt.Errorf("unexpected reply type %d", e.Type)
		})
		if err == nil {
			if cerr != nil {
				return nil, cerr
			}
			return &res, nil
		}
		lastErr = err
		var re *wan.RemoteError
		if errors.As(err, &re) && re.Code == wan.CodeNotExecuted {
			continue // refused unexecuted (its store failed): the next replica may take it
		}
		if errors.Is(err, wan.ErrOutcomeUnknown) || errors.As(err, &re) {
			// The replica took the write and did not finish answering: it
			// may have applied it, and another coordinator would mint a
			// second sibling.
			return nil, api.Errorf(api.CodeUnavailable, "meridian: the write was forwarded to %s, which did not answer; it may have been applied: %v", m.ID, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, api.Errorf(api.CodeUnavailable, "meridian: no replica of the key could coordinate the write: %v", lastErr)
}

// preferLocal orders a plan's replicas: this datacenter first, then the
// others by name.
func (n *Node) preferLocal(plan placement.Plan) []placement.Member {
	out := append([]placement.Member(nil), plan.Replicas[n.cfg.DC]...)
	for _, m := range plan.All() {
		if m.DC != n.cfg.DC {
			out = append(out, m)
		}
	}
	return out
}

func memberIDs(ms []placement.Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
