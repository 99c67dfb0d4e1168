package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/consistency"
	"github.com/meridian-kv/meridian/telemetry"
	"github.com/meridian-kv/meridian/version"
	"github.com/meridian-kv/meridian/wan"
)

// readReply is one replica's answer to a read.
type readReply struct {
	node, dc string
	obj      *version.Object
	err      error
}

// get coordinates a read. It asks as many replicas as R needs (this node
// first when it holds one, then the healthy ones in preference order) and
// keeps the others as spares: a spare is asked when a replica fails, and
// when the answers are slower than the datacenter's replicas usually are
// (speculation, as Cassandra's speculative retry). The answer goes out once
// R is met, and read repair of the replicas that answered follows in the
// background.
func (n *Node) get(ctx context.Context, r *api.GetRequest) (*api.GetResponse, *api.ClientError) {
	ks, plan, cerr := n.planFor(r.Keyspace, r.Key)
	if cerr != nil {
		return nil, cerr
	}
	if cerr := r.Validate(); cerr != nil {
		return nil, cerr
	}
	spec, err := consistency.Parse(orDefault(r.Consistency, ks.ReadConsistency))
	if err != nil {
		return nil, api.Errorf(api.CodeConsistency, "meridian: %v", err)
	}
	need, err := spec.Resolve(ks.Replication, n.cfg.DC)
	if err != nil {
		return nil, api.Errorf(api.CodeConsistency, "meridian: %v", err)
	}
	trace.SpanFromContext(ctx).SetAttributes(telemetry.ReplicasRequired(need.PerDC)...)
	asked := map[string]int{}
	total := 0
	for dc, reps := range plan.Replicas {
		asked[dc] = len(reps)
		total += len(reps)
	}
	// The tally counts every replica as pending: the spares not asked yet
	// are asked before a shortfall is final.
	tally := consistency.NewTally(need, asked)
	replies := make(chan readReply, total)
	asks := n.planRead(plan, need)
	launched := 0
	askedAt := map[string]time.Time{} // node -> when this read asked it
	launch := func(dc string, ids []string) {
		launched += len(ids)
		now := time.Now()
		for _, id := range ids {
			askedAt[id] = now
		}
		if dc != n.cfg.DC {
			n.goBackgroundFrom(ctx, func(ctx context.Context) {
				n.relayRead(ctx, dc, r.Keyspace, r.Key, ids, replies)
			})
			return
		}
		for _, id := range ids {
			if !n.peers.usable(id) {
				replies <- readReply{node: id, dc: dc, err: errPeerDown(id)}
				continue
			}
			n.goBackgroundFrom(ctx, func(ctx context.Context) {
				obj, err := n.readReplica(ctx, id, r.Keyspace, r.Key)
				replies <- readReply{node: id, dc: dc, obj: obj, err: err}
			})
		}
	}
	for dc, ids := range asks.first {
		launch(dc, ids)
	}
	// spare asks one more replica to stand in for a failed or slow one in
	// dc; false when none is left that could help.
	spare := func(dc, reason string) bool {
		next, ok := asks.takeSpare(dc)
		if ok {
			n.metrics.ReadsSpares.Add(ctx, 1, metric.WithAttributes(telemetry.ReplicaDC(next.dc), telemetry.ReasonKey.String(reason)))
			launch(next.dc, []string{next.id})
		}
		return ok
	}
	speculate := time.NewTimer(n.coordinator.readTimes.patience(asks.farthest, n.cfg.Limits.RequestTimeout))
	defer speculate.Stop()

	var got []readReply
	var lastErr error
	received := 0
	merged := version.New()
	for !tally.Met() {
		if !tally.Possible() {
			return nil, quorumError(tally, "get", lastErr)
		}
		select {
		case rp := <-replies:
			received++
			if rp.err != nil {
				lastErr = fmt.Errorf("%s: %w", rp.node, rp.err)
				tally.Fail(rp.dc)
				spare(rp.dc, "failed")
				continue
			}
			tally.Ack(rp.dc)
			if rp.node != n.cfg.ID {
				// Directly or through a relay: what a read there takes.
				n.coordinator.readTimes.observe(rp.dc, time.Since(askedAt[rp.node]))
			}
			got = append(got, rp)
			merged = version.Merge(merged, rp.obj)
		case <-speculate.C:
			// The answers are late: one more replica wherever R still
			// waits on one.
			for _, dc := range asks.waiting(tally.Acked(), need) {
				spare(dc, "late")
			}
			speculate.Reset(n.coordinator.readTimes.patience(asks.farthest, n.cfg.Limits.RequestTimeout))
		case <-ctx.Done():
			return nil, quorumError(tally, "get", fmt.Errorf("timed out: %w", ctx.Err()))
		}
		if received == launched && !tally.Met() {
			// Every replica asked answered and R is not met (the replicas
			// a failure left to stand in were in no datacenter the tally
			// waits on): what is left of the spares decides it.
			for dc := range asks.spares {
				for spare(dc, "failed") {
				}
			}
		}
	}
	n.readRepair(ctx, r.Keyspace, r.Key, got, replies, launched-received)

	res := &api.GetResponse{Context: version.EncodeContext(merged.Context()), Acked: tally.Acked()}
	for _, s := range merged.Live() {
		res.Siblings = append(res.Siblings, api.Sibling{Value: s.Value, Writer: fmt.Sprintf("%s:%d", s.Dot.Actor, s.Dot.Counter)})
	}
	res.Deleted = len(res.Siblings) == 0 && len(merged.Siblings) > 0
	return res, nil
}

// readRepair waits, in the background, for the replies still outstanding,
// merges everything, and writes the merge back to each replica that lacked
// part of it. Replicas that failed to answer are left to hinted handoff and
// anti-entropy.
func (n *Node) readRepair(reqCtx context.Context, ks string, key []byte, got []readReply, replies <-chan readReply, outstanding int) {
	link := linkTo(traceRef(reqCtx))
	n.goBackground(func(ctx context.Context) {
	wait:
		for ; outstanding > 0; outstanding-- {
			select {
			case rp := <-replies:
				if rp.err == nil {
					got = append(got, rp)
				}
			case <-ctx.Done():
				break wait
			}
		}
		merged := version.New()
		for _, rp := range got {
			merged = version.Merge(merged, rp.obj)
		}
		if merged.IsEmpty() {
			return
		}
		stale := map[string][]string{} // dc -> node ids
		for _, rp := range got {
			if !version.Descends(rp.obj, merged) {
				stale[rp.dc] = append(stale[rp.dc], rp.node)
			}
		}
		if len(stale) == 0 {
			return
		}
		// Read repair is its own trace, linked to the read that found the
		// divergence.
		ctx, span := n.tracer.Start(ctx, "read.repair "+ks, trace.WithLinks(link...),
			trace.WithAttributes(telemetry.Namespace(ks), telemetry.Node(n.cfg.ID), telemetry.DC(n.cfg.DC)))
		defer span.End()
		for dc, ids := range stale {
			if dc == n.cfg.DC {
				for _, id := range ids {
					if err := n.writeReplica(ctx, id, ks, key, merged); err != nil {
						n.log.DebugContext(ctx, "read repair failed", "replica", id, "err", err)
					}
				}
				continue
			}
			n.relayWrite(ctx, dc, ks, key, merged, ids, nil, func(ack) {})
		}
	})
}

// readReplica reads one replica's object, which may be this node's.
func (n *Node) readReplica(ctx context.Context, id, ks string, key []byte) (*version.Object, error) {
	return n.readReplicaAs(ctx, id, ks, key, false)
}

// readReplicaAs is readReplica, for an operator's inspection if inspect.
func (n *Node) readReplicaAs(ctx context.Context, id, ks string, key []byte, inspect bool) (*version.Object, error) {
	if id == n.cfg.ID {
		return n.readLocal(ks, key, inspect)
	}
	if !inspect {
		if obj, ok, err := n.batchedRead(ctx, id, ks, key); ok {
			return obj, err
		}
	}
	var obj *version.Object
	err := n.peers.call(ctx, id, typeReplicaRead, &replicaRead{Keyspace: ks, Key: key, Inspect: inspect}, func(e *wan.Envelope) error {
		var ro replicaObject
		if err := e.Decode(&ro); err != nil {
			return err
		}
		if ro.Error != "" {
			return replicaReadError(ro.Error)
		}
		obj = ro.Object
		return obj.Validate()
	})
	if err == nil && obj == nil {
		obj = version.New()
	}
	return obj, err
}

// replicaReadError is a replica's answer that it could not serve a read
// (a store error, or its read gate): it answered, so it is up.
func replicaReadError(msg string) error {
	return &wan.RemoteError{Code: "replica_read", Message: msg}
}

// relayRead reads the targets of a remote datacenter through one relay,
// falling over to the next target if the relay is unreachable. Exactly one
// reply per target is delivered.
func (n *Node) relayRead(ctx context.Context, dc, ks string, key []byte, targets []string, replies chan<- readReply) {
	unanswered, _ := n.viaRelay(ctx, dc, targets, targets, typeRelayRead,
		func(rest []string) any { return &relayRead{Keyspace: ks, Key: key, Targets: rest} },
		func(e *wan.Envelope, claim func(string) bool) error {
			var ro replicaObject
			if err := e.Decode(&ro); err != nil {
				return err
			}
			if !claim(ro.Node) {
				return nil
			}
			rp := readReply{node: ro.Node, dc: dc, obj: ro.Object}
			if ro.Error != "" {
				rp.err = errors.New(ro.Error)
			} else if err := rp.obj.Validate(); err != nil {
				rp.err, rp.obj = err, nil
			} else if rp.obj == nil {
				rp.obj = version.New()
			}
			replies <- rp
			return nil
		})
	for _, t := range unanswered {
		replies <- readReply{node: t, dc: dc, err: errors.New("no answer through relay")}
	}
}
