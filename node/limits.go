package node

import (
	"context"
	"errors"
	"time"

	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/version"
	"github.com/meridian-kv/meridian/wan"
)

// DefaultMaxObjectBytes is the default limits.max_object_bytes: 16 MiB of
// sibling values per key, sixteen values of the default 1 MiB limit.
const DefaultMaxObjectBytes = 16 << 20

// errObjectTooLarge is returned by the local update when a write would grow
// a key's object past limits.max_object_bytes.
var errObjectTooLarge = errors.New("object too large")

// objectBytes is what limits.max_object_bytes counts: the bytes of the
// values of every sibling.
func objectBytes(o *version.Object) int {
	if o == nil {
		return 0
	}
	b := 0
	for _, s := range o.Siblings {
		b += len(s.Value)
	}
	return b
}

// messageLimit is the largest message this node sends or accepts. A
// coordinator refuses writes past max_object_bytes as it knows the key, but
// replicas that each accepted writes concurrently (or across a partition)
// merge into an object larger than that: at most about one limit per
// replica that minted values. Every path that moves whole objects (replica
// reads and writes, relays, hints, read repair, inspect, repair pushes,
// the reply to a client) therefore carries up to one limit per replica of
// the largest keyspace, plus one, plus room for keys and envelopes.
func (c *Config) messageLimit() int {
	return max(wan.DefaultMaxFrame, c.Limits.MaxObjectBytes*(c.maxReplicas()+1)+(1<<20))
}

// maxReplicas is the replica count of the keyspace with the most
// replicas (at least 1).
func (c *Config) maxReplicas() int {
	replicas := 1
	for _, ks := range c.Keyspaces {
		total := 0
		for _, r := range ks.Replication {
			total += max(r, 0)
		}
		replicas = max(replicas, total)
	}
	return replicas
}

// isTooLarge reports an error from sending or receiving a message past the
// transport's limit. It is a local condition: the peer is not at fault, is
// not marked down, and no hint can carry the object either.
func isTooLarge(err error) bool { return errors.Is(err, wan.ErrFrameTooLarge) }

// nearLimit reports whether a write to a key whose local copy is cur should
// first learn the other replicas' copies (learnReplicas) before checking
// the sibling and byte limits: the copy is past warn_siblings or half of
// max_object_bytes, and the write's context does not resolve every sibling
// this node holds.
func (n *Node) nearLimit(ks Keyspace, cur *version.Object, ctxVec version.Vector) bool {
	if len(cur.Live()) < ks.WarnSiblings && objectBytes(cur) < n.cfg.Limits.MaxObjectBytes/2 {
		return false
	}
	for _, s := range cur.Siblings {
		if !ctxVec.Covers(s.Dot) {
			return true
		}
	}
	return false
}

// learnReplicas reads the key from the other replicas of plan, for at most
// half of the time the request has left, and merges what they hold into
// this node's copy (a read repair of the coordinator itself), so that the
// sibling and byte limits are checked against the merged state of every
// replica that answered, not only this node's. Replicas that do not answer
// are skipped: the limits are a bound on growth, not a quorum decision.
func (n *Node) learnReplicas(ctx context.Context, ks string, key []byte, plan placement.Plan) {
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Until(dl)/2)
		defer cancel()
	}
	total := 0
	for _, reps := range plan.Replicas {
		total += len(reps)
	}
	replies := make(chan readReply, total)
	pending := 0
	for dc, reps := range plan.Replicas {
		if dc != n.cfg.DC {
			targets := memberIDs(reps)
			pending += len(targets)
			n.goBackgroundFrom(ctx, func(bctx context.Context) {
				bctx, cancel := context.WithCancel(bctx)
				defer cancel()
				stop := context.AfterFunc(ctx, cancel)
				defer stop()
				n.relayRead(bctx, dc, ks, key, targets, replies)
			})
			continue
		}
		for _, m := range reps {
			if m.ID == n.cfg.ID || !n.peers.usable(m.ID) {
				continue
			}
			pending++
			n.goBackgroundFrom(ctx, func(bctx context.Context) {
				obj, err := n.readReplica(ctx, m.ID, ks, key)
				replies <- readReply{node: m.ID, dc: dc, obj: obj, err: err}
			})
		}
	}
	merged := version.New()
wait:
	for ; pending > 0; pending-- {
		select {
		case rp := <-replies:
			if rp.err == nil {
				merged = version.Merge(merged, rp.obj)
			}
		case <-ctx.Done():
			break wait
		}
	}
	if merged.IsEmpty() {
		return
	}
	if _, _, err := n.store.Merge(ks, key, merged); err != nil {
		n.log.WarnContext(ctx, "merging the replicas' copies before a write failed", "keyspace", ks, "err", err)
	}
}
