package node

import (
	"context"
	"fmt"

	"github.com/meridian-kv/meridian/repair"
	"github.com/meridian-kv/meridian/store"
	"github.com/meridian-kv/meridian/version"
	"github.com/meridian-kv/meridian/wan"
)

// serveReplica handles node-to-node traffic: replica writes and reads, and
// their relayed forms from a coordinator in another datacenter.
func (n *Node) serveReplica(ctx context.Context, from string, req *wan.Envelope, reply wan.Replier) {
	// emit sends one reply; the last reply of a request (last) goes out
	// with the end of its replies (wan.SendLast).
	emit := func(last bool, t wan.MsgType, v any) {
		env, err := wan.NewEnvelope(t, v)
		if err == nil {
			if last {
				err = wan.SendLast(reply, env)
			} else {
				err = reply.Send(env)
			}
		}
		if err != nil && isTooLarge(err) {
			// Too large to send is an answer the caller must get, or it
			// would take the silence for an empty copy. A relay's reply
			// about one target fails that target only.
			msg := fmt.Sprintf("meridian: %s cannot send its reply: %v", n.cfg.ID, err)
			if ro, ok := v.(*replicaObject); ok {
				env, eerr := wan.NewEnvelope(t, &replicaObject{Node: ro.Node, Error: msg})
				if err = eerr; err == nil {
					err = reply.Send(env)
				}
			} else {
				err = reply.SendError("too_large", msg)
			}
		}
		if err != nil {
			n.log.Debug("replica reply failed", "err", err)
		}
	}
	send := func(t wan.MsgType, v any) { emit(false, t, v) }
	sendLast := func(t wan.MsgType, v any) { emit(true, t, v) }
	switch req.Type {
	case typeRepairCompare:
		if err := n.serveRepairCompare(ctx, req, reply); err != nil {
			reply.SendError("repair", err.Error())
		}
	case typeRepairLevel, typeRepairDigests, typeRepairPush, typeRepairRun, typeRepairProgress, typeRepairDone:
		if err := n.serveRepair(ctx, from, req, send); err != nil {
			reply.SendError("repair", err.Error())
		}
	case typePing:
		var p ping
		if err := decodeRequest(req, &p); err != nil {
			reply.SendError("bad_request", err.Error())
			return
		}
		n.peerIncarnation(from, &p)
		res := n.ownPing(from)
		res.HintCount, res.HintBytes = n.hintTotals()
		res.ReadGated = n.Gated()
		send(typePing, res)
	case typeHintWrite:
		var w hintWrite
		if err := decodeRequest(req, &w); err != nil {
			reply.SendError("bad_request", err.Error())
			return
		}
		err := w.Object.Validate()
		if err == nil {
			err = n.keepHint(ctx, w.Target, w.Keyspace, w.Key, w.Object)
		}
		send(typeReplicaAck, &replicaAck{Node: n.cfg.ID, Error: errString(err), Hinted: true})
	case typeHintDeliver:
		var m hintDeliver
		if err := decodeRequest(req, &m); err != nil {
			reply.SendError("bad_request", err.Error())
			return
		}
		send(typeReplicaAck, &replicaAck{Node: n.cfg.ID, Error: errString(n.mergeHints(ctx, m.Keyspace, m.Items))})
	case typeReplicaWrite:
		var w replicaWrite
		if err := decodeRequest(req, &w); err != nil {
			reply.SendError("bad_request", err.Error())
			return
		}
		sendLast(typeReplicaAck, &replicaAck{Node: n.cfg.ID, Error: errString(n.mergeLocal(ctx, w.Keyspace, w.Key, w.Object))})
	case typeReplicaRead:
		var rr replicaRead
		if err := decodeRequest(req, &rr); err != nil {
			reply.SendError("bad_request", err.Error())
			return
		}
		obj, err := n.readLocal(rr.Keyspace, rr.Key, rr.Inspect)
		sendLast(typeReplicaObj, &replicaObject{Node: n.cfg.ID, Object: obj, Error: errString(err)})
	case typeReplicaBatch:
		var b replicaBatch
		if err := decodeRequest(req, &b); err != nil {
			reply.SendError("bad_request", err.Error())
			return
		}
		sendLast(typeReplicaBatchReply, n.serveBatch(ctx, from, &b))
	case typeDigestBatch:
		var b digestBatch
		if err := decodeRequest(req, &b); err != nil {
			reply.SendError("bad_request", err.Error())
			return
		}
		sendLast(typeDigestBatchReply, n.serveDigests(ctx, from, &b))
	case typeRelayWrite:
		var w relayWrite
		if err := decodeRequest(req, &w); err != nil {
			reply.SendError("bad_request", err.Error())
			return
		}
		if _, cerr := n.keyspace(w.Keyspace); cerr != nil {
			reply.SendError(cerr.Code, cerr.Message)
			return
		}
		if err := w.Object.Validate(); err != nil {
			reply.SendError("bad_request", err.Error())
			return
		}
		acks := make(chan ack, len(w.Targets))
		for _, id := range w.Targets {
			n.goBackground(func(bctx context.Context) {
				// The relay's own deadline is the coordinator's; a target
				// that does not answer in time gets a hint kept here, in its
				// own datacenter.
				acks <- n.writeOrHint(ctx, id, n.cfg.DC, w.Keyspace, w.Key, w.Object, w.Fallbacks)
			})
		}
		for range w.Targets {
			select {
			case a := <-acks:
				send(typeReplicaAck, &replicaAck{Node: a.node, Error: errString(a.err), Hinted: a.hinted})
			case <-ctx.Done():
				return
			}
		}
	case typeRelayRead:
		var rr relayRead
		if err := decodeRequest(req, &rr); err != nil {
			reply.SendError("bad_request", err.Error())
			return
		}
		n.relayTargets(ctx, rr.Targets, func(id string) readReply {
			obj, err := n.readReplica(ctx, id, rr.Keyspace, rr.Key)
			return readReply{node: id, obj: obj, err: err}
		}, func(rp readReply) {
			send(typeReplicaObj, &replicaObject{Node: rp.node, Object: rp.obj, Error: errString(rp.err)})
		})
	case typeRelayDigests:
		var rr relayRead
		if err := decodeRequest(req, &rr); err != nil {
			reply.SendError("bad_request", err.Error())
			return
		}
		n.relayTargets(ctx, rr.Targets, func(id string) readReply {
			return n.readOrDigest(ctx, id, n.cfg.DC, rr.Keyspace, rr.Key, true)
		}, func(rp readReply) {
			d := &replicaDigest{Node: rp.node, Error: errString(rp.err)}
			switch {
			case rp.err != nil:
			case rp.digest != nil:
				d.Digest = rp.digest[:]
			default: // this node's copy, or a replica that sent its object
				h := repair.KeyHash(rr.Key, rp.obj)
				d.Digest = h[:]
			}
			send(typeReplicaDigest, d)
		})
	}
}

// relayTargets serves a relay read: read runs for each target on a
// background worker, and answer gets each reply as it comes, until every
// target has answered or ctx ends.
func (n *Node) relayTargets(ctx context.Context, targets []string, read func(id string) readReply, answer func(readReply)) {
	replies := make(chan readReply, len(targets))
	for _, id := range targets {
		n.goBackground(func(context.Context) { replies <- read(id) })
	}
	for range targets {
		select {
		case rp := <-replies:
			answer(rp)
		case <-ctx.Done():
			return
		}
	}
}

// mergeLocal merges a replicated object into this node's store.
func (n *Node) mergeLocal(ctx context.Context, ks string, key []byte, obj *version.Object) (err error) {
	span := n.storeSpan(ctx, "store.merge", ks)
	defer func() { spanError(span, err); span.End() }()
	if _, cerr := n.keyspace(ks); cerr != nil {
		return cerr
	}
	if obj == nil {
		return nil
	}
	if err := obj.Validate(); err != nil {
		return err
	}
	_, _, err = n.store.Merge(ks, key, obj)
	return err
}

// mergeMany merges many keys' objects into this node's store, a synced
// batch (one fsync) per store.MaxMergeBatch keys.
func (n *Node) mergeMany(ctx context.Context, ks string, objs []keyObject) (err error) {
	span := n.storeSpan(ctx, "store.merge_many", ks)
	defer func() { spanError(span, err); span.End() }()
	if _, cerr := n.keyspace(ks); cerr != nil {
		return cerr
	}
	items := make([]store.KeyObject, 0, min(len(objs), store.MaxMergeBatch))
	flush := func() error {
		_, err := n.store.MergeMany(ks, items)
		items = items[:0]
		return err
	}
	for _, ko := range objs {
		if ko.Object == nil {
			continue
		}
		if err := ko.Object.Validate(); err != nil {
			return err
		}
		items = append(items, store.KeyObject{Key: ko.Key, Object: ko.Object})
		if len(items) == store.MaxMergeBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// readLocal reads this node's copy of a key. Unless inspect, it refuses
// every key while a fresh node has not yet heard from its peers
// (verifiedRead, identity.go), and, after the node was down longer than the
// tombstone grace, the keys of ranges it has not yet repaired with every
// other replica (tombstones.readAllowed).
func (n *Node) readLocal(ks string, key []byte, inspect bool) (*version.Object, error) {
	if _, cerr := n.keyspace(ks); cerr != nil {
		return nil, cerr
	}
	if !inspect {
		if err := n.verifiedRead(); err != nil {
			return nil, err
		}
		if err := n.tombstones.readAllowed(ks, key); err != nil {
			return nil, err
		}
	}
	return n.store.Get(ks, key)
}

type errUnknownMember string

func (e errUnknownMember) Error() string { return "node: unknown member " + string(e) }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
