package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/consistency"
	"github.com/meridian-kv/meridian/repair"
	"github.com/meridian-kv/meridian/telemetry"
	"github.com/meridian-kv/meridian/version"
	"github.com/meridian-kv/meridian/wan"
)

// readReply is one replica's answer to a read: its object, or for a
// digest read (digest set) the key hash of its object.
type readReply struct {
	node, dc string
	obj      *version.Object
	digest   *repair.Hash
	err      error
}

// get coordinates a read. It asks as many replicas as R needs (this node
// first when it holds one, then the healthy ones in preference order) and
// keeps the others as spares: a spare is asked when a replica fails, and
// when the answers are slower than the datacenter's replicas usually are
// (speculation, as Cassandra's speculative retry). The answer goes out once
// R is met, and read repair of the replicas that answered follows in the
// background.
//
// When this node reads its own copy, the other replicas it asks first send
// digests (digestRead, or relayDigests for another datacenter's): a digest
// equal to the key hash of this node's copy counts as that copy; one that
// differs, or that has no copy to be compared with because this node's
// read failed, has the read ask that replica for its object, which then
// counts instead. Spares send their objects.
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
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(telemetry.ReplicasRequired(need.PerDC)...)
	}
	asked := map[string]int{}
	total := 0
	for dc, reps := range plan.Replicas {
		asked[dc] = len(reps)
		total += len(reps)
	}
	// The tally counts every replica as pending: the spares not asked yet
	// are asked before a shortfall is final.
	tally := consistency.NewTally(need, asked)
	// Room for every reply, so that no sender ever waits: a replica
	// answers at most twice, a digest and then its object.
	replies := make(chan readReply, 2*total)
	asks := n.planRead(plan, need)
	launched := 0
	askedAt := map[string]time.Time{} // node -> when this read asked it
	launch := func(dc string, ids []string, digest bool) {
		launched += len(ids)
		now := time.Now()
		for _, id := range ids {
			askedAt[id] = now
		}
		if dc != n.cfg.DC {
			n.goBackgroundFrom(ctx, func(ctx context.Context) {
				if digest {
					ids = n.relayDigests(ctx, dc, r.Keyspace, r.Key, ids, replies)
				}
				if len(ids) > 0 {
					n.relayRead(ctx, dc, r.Keyspace, r.Key, ids, replies)
				}
			})
			return
		}
		for _, id := range ids {
			if !n.peers.usable(id) {
				replies <- readReply{node: id, dc: dc, err: errPeerDown(id)}
				continue
			}
			n.goBackgroundFrom(ctx, func(ctx context.Context) {
				replies <- n.readOrDigest(ctx, id, dc, r.Keyspace, r.Key, digest)
			})
		}
	}
	// Digests are worth asking for only against a copy of this node's own.
	digests := slices.Contains(asks.first[n.cfg.DC], n.cfg.ID)
	for dc, ids := range asks.first {
		launch(dc, ids, digests)
	}
	// spare asks one more replica to stand in for a failed or slow one in
	// dc; false when none is left that could help.
	spare := func(dc, reason string) bool {
		next, ok := asks.takeSpare(dc)
		if ok {
			n.metrics.ReadsSpares.Add(ctx, 1, metric.WithAttributes(telemetry.ReplicaDC(next.dc), telemetry.ReasonKey.String(reason)))
			launch(next.dc, []string{next.id}, false)
		}
		return ok
	}
	speculate := time.NewTimer(n.coordinator.readTimes.patience(asks.farthest, n.cfg.Limits.RequestTimeout))
	defer speculate.Stop()

	var got []readReply
	var lastErr error
	received := 0
	merged := version.New()
	// own is this node's copy once read (ownRead: read or failed); parked
	// the digests that came before it.
	var (
		own     *version.Object
		ownHash repair.Hash
		ownRead bool
		parked  []readReply
	)
	// settle counts a digest reply: as this node's copy when the digests
	// match, otherwise by asking the replica for its object.
	settle := func(rp readReply) {
		if own != nil && *rp.digest == ownHash {
			tally.Ack(rp.dc)
			rp.obj, rp.digest = own, nil
			got = append(got, rp) // own is merged already
			return
		}
		reason := "differs"
		if own == nil {
			reason = "unmatched"
		}
		n.metrics.ReadsDigestMismatches.Add(ctx, 1, metric.WithAttributes(telemetry.ReasonKey.String(reason)))
		launch(rp.dc, []string{rp.node}, false)
	}
	for !tally.Met() {
		if !tally.Possible() {
			return nil, quorumError(tally, "get", lastErr)
		}
		select {
		case rp := <-replies:
			received++
			if rp.node != n.cfg.ID && rp.err == nil {
				// Directly or through a relay: what a read there takes.
				n.coordinator.readTimes.observe(rp.dc, time.Since(askedAt[rp.node]))
			}
			if rp.node == n.cfg.ID {
				ownRead = true
				if rp.err == nil && digests {
					own, ownHash = rp.obj, repair.KeyHash(r.Key, rp.obj)
				}
			}
			if rp.err != nil {
				lastErr = fmt.Errorf("%s: %w", rp.node, rp.err)
				tally.Fail(rp.dc)
				spare(rp.dc, "failed")
			} else if rp.digest != nil {
				if ownRead {
					settle(rp)
				} else {
					parked = append(parked, rp)
				}
			} else {
				tally.Ack(rp.dc)
				got = append(got, rp)
				merged = join(merged, rp.obj)
			}
			if ownRead && len(parked) > 0 {
				for _, p := range parked {
					settle(p)
				}
				parked = nil
			}
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
	n.readRepair(ctx, r.Keyspace, r.Key, append(got, parked...), replies, launched-received)

	res := &api.GetResponse{Context: version.EncodeContext(merged.Context()), Acked: tally.Acked()}
	for _, s := range merged.Live() {
		res.Siblings = append(res.Siblings, api.Sibling{Value: s.Value, Writer: s.Dot.String()})
	}
	res.Deleted = len(res.Siblings) == 0 && len(merged.Siblings) > 0
	return res, nil
}

// readRepair waits, in the background, for the replies still outstanding,
// merges everything, and writes the merge back to each replica that lacked
// part of it. A digest that does not match this node's copy has the
// replica asked for its object. Replicas that failed to answer are left to
// hinted handoff and anti-entropy.
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
		got = n.resolveDigests(ctx, ks, key, got)
		merged := version.New()
		for _, rp := range got {
			merged = join(merged, rp.obj)
		}
		if merged.IsEmpty() {
			return
		}
		stale := map[string][]string{} // dc -> node ids
		for _, rp := range got {
			if rp.obj != merged && !version.Descends(rp.obj, merged) {
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

// join merges o, a replica's reply, into acc, the merge of the replies
// before it (empty at first). Neither is modified afterwards, so the first
// object is taken as it is, and the same object twice (a digest that
// matched this node's copy stands for it) is merged once.
func join(acc, o *version.Object) *version.Object {
	switch {
	case o == nil || o == acc:
		return acc
	case acc.IsEmpty():
		return o
	}
	return version.Merge(acc, o)
}

// resolveDigests replaces each digest reply of got by the object it stands
// for: this node's copy, among got, when the digests match, otherwise the
// replica's object read anew. A replica that fails that read is left out.
// Most reads have no digest left to resolve, and cost no hashing here.
func (n *Node) resolveDigests(ctx context.Context, ks string, key []byte, got []readReply) []readReply {
	var own *version.Object
	digests := false
	for _, rp := range got {
		if rp.node == n.cfg.ID && rp.digest == nil {
			own = rp.obj
		}
		digests = digests || rp.digest != nil
	}
	if !digests {
		return got
	}
	var ownHash repair.Hash
	if own != nil {
		ownHash = repair.KeyHash(key, own)
	}
	out := got[:0]
	for _, rp := range got {
		switch {
		case rp.digest == nil:
		case own != nil && *rp.digest == ownHash:
			rp.obj, rp.digest = own, nil
		default:
			obj, err := n.readObject(ctx, rp.node, rp.dc, ks, key)
			if err != nil {
				continue
			}
			rp.obj, rp.digest = obj, nil
		}
		out = append(out, rp)
	}
	return out
}

// readObject reads replica id's object of key: directly in this node's
// datacenter, through a relay in another (dc).
func (n *Node) readObject(ctx context.Context, id, dc, ks string, key []byte) (*version.Object, error) {
	if dc == n.cfg.DC {
		return n.readReplica(ctx, id, ks, key)
	}
	reply := make(chan readReply, 1)
	n.relayRead(ctx, dc, ks, key, []string{id}, reply)
	rp := <-reply
	return rp.obj, rp.err
}

// readOrDigest asks replica id (of this node's datacenter) for its object
// of key, or for its digest if digest and the replica, another node, takes
// digest reads.
func (n *Node) readOrDigest(ctx context.Context, id, dc, ks string, key []byte, digest bool) readReply {
	if digest && id != n.cfg.ID {
		if d, ok, err := n.digestRead(ctx, id, ks, key); ok {
			if err != nil {
				return readReply{node: id, dc: dc, err: err}
			}
			return readReply{node: id, dc: dc, digest: &d}
		}
	}
	obj, err := n.readReplica(ctx, id, ks, key)
	return readReply{node: id, dc: dc, obj: obj, err: err}
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

// relayDigests asks for the digests of the targets of a remote datacenter
// through one relay, delivering one reply per target it answers for. It
// returns the targets whose objects are to be read instead (relayRead):
// all of them when the datacenter's relays take no digest reads.
func (n *Node) relayDigests(ctx context.Context, dc, ks string, key []byte, targets []string, replies chan<- readReply) (objects []string) {
	noDigests := "relay " + dc // the batcher's refusals, by datacenter for relays
	if n.batches == nil || n.batches.digestless(noDigests) {
		return targets
	}
	unanswered, err := n.viaRelay(ctx, dc, targets, targets, typeRelayDigests,
		func(rest []string) any { return &relayRead{Keyspace: ks, Key: key, Targets: rest} },
		func(e *wan.Envelope, claim func(string) bool) error {
			var rd replicaDigest
			if err := e.Decode(&rd); err != nil {
				return err
			}
			if rd.Error == "" && len(rd.Digest) != repair.HashSize {
				return fmt.Errorf("a digest of %d bytes (want %d)", len(rd.Digest), repair.HashSize)
			}
			if !claim(rd.Node) {
				return nil
			}
			rp := readReply{node: rd.Node, dc: dc}
			if rd.Error != "" {
				rp.err = errors.New(rd.Error)
			} else {
				h := repair.Hash(rd.Digest)
				rp.digest = &h
			}
			replies <- rp
			return nil
		})
	if len(unanswered) == len(targets) && refusedBatch(err) {
		// A relay of an earlier release: it read nothing.
		n.log.Info("relay does not take digest reads; reading objects through it", "dc", dc, "for", batchRetry)
		n.batches.refuse(noDigests, batchDigests)
		return targets
	}
	for _, t := range unanswered {
		replies <- readReply{node: t, dc: dc, err: errors.New("no answer through relay")}
	}
	return nil
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
