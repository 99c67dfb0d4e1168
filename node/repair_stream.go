package node

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-kv/meridian/codec"
	"github.com/meridian-kv/meridian/repair"
	"github.com/meridian-kv/meridian/telemetry"
	"github.com/meridian-kv/meridian/version"
	"github.com/meridian-kv/meridian/wan"
)

// The key exchange of a session (repair steps 2-4) travels in chunks:
// however far two replicas diverge, no message of a session exceeds
// repairChunkBytes, except one holding a single object larger than that.
// The initiator cuts the differing leaves into batches
// (repair.BatchDigests) and sends each as a typeRepairCompare request;
// the responder streams its answer as repairDiffChunks, and the
// initiator merges each chunk as it comes and pushes what the responder
// lacks in typeRepairPush messages of the same size. An object too large
// for a frame fails its session (and so its segment) with an error naming
// the key; the rest of the session's keys are still exchanged.
const (
	// repairChunkBytes bounds one message's payload: a quarter of
	// wan.DefaultMaxFrame, so messages of other sessions and quorum
	// traffic interleave with repair on a link, and pacing is smooth.
	repairChunkBytes = 1 << 20
	// repairChunkItems bounds the elements of one array in a message,
	// well within codec.MaxArrayElements.
	repairChunkItems = codec.MaxArrayElements / 4
	// repairMaxObject is the largest payload one message can carry: the
	// frame less room for the envelope (type, ids, deadline, trace) and
	// one key.
	repairMaxObject = wan.DefaultMaxFrame - 96<<10
)

// repairCompare is one batch of the initiator's digests (typeRepairCompare):
// the keys under Leaves, with the rate at which the responder may stream
// its answer to the initiator's region.
type repairCompare struct {
	_        struct{} `cbor:",toarray"`
	V        uint8
	Keyspace string
	Range    repair.Range
	Depth    int
	Peer     string // the initiator
	Leaves   []int
	Digests  []repair.KeyDigest
	// BytesPerSecond paces the responder's chunks (0: no limit), so a
	// session's budget holds in both directions.
	BytesPerSecond int64
}

// repairDiffChunk is one message of the responder's answer to a
// repairDigests batch (typeRepairCompare): some of its objects that differ
// and some of the keys it lacks. The last chunk has Last set and lists the
// keys whose objects were too large to send.
type repairDiffChunk struct {
	_        struct{} `cbor:",toarray"`
	V        uint8
	Objects  []keyObject
	Want     [][]byte
	Last     bool
	Oversize [][]byte
}

// errObjectTooLarge marks a key whose object does not fit in one message.
var errObjectTooLarge = errors.New("node: repair: object larger than a message")

// objectChunks cuts objs into runs of at most repairChunkBytes and
// repairChunkItems each (an object larger than that is a run of its own),
// leaving out objects larger than repairMaxObject, which it returns.
func objectChunks(objs []keyObject) (chunks [][]keyObject, sizes []int64, oversize []keyObject) {
	var (
		cur  []keyObject
		size int64
	)
	for _, ko := range objs {
		s := encodedLen(ko)
		if s > repairMaxObject {
			oversize = append(oversize, ko)
			continue
		}
		if len(cur) > 0 && (size+s > repairChunkBytes || len(cur) == repairChunkItems) {
			chunks, sizes = append(chunks, cur), append(sizes, size)
			cur, size = nil, 0
		}
		cur = append(cur, ko)
		size += s
	}
	if len(cur) > 0 {
		chunks, sizes = append(chunks, cur), append(sizes, size)
	}
	return chunks, sizes, oversize
}

// keyChunks cuts keys into runs of at most repairChunkBytes and
// repairChunkItems each.
func keyChunks(keys [][]byte) [][][]byte {
	var (
		out  [][][]byte
		cur  [][]byte
		size int
	)
	for _, k := range keys {
		s := len(k) + 5
		if len(cur) > 0 && (size+s > repairChunkBytes || len(cur) == repairChunkItems) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, k)
		size += s
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// serveRepairCompare answers one digest batch of a session
// (typeRepairCompare): it streams the objects of this node that differ
// from the initiator's digests and the keys it lacks, in chunks, and ends
// with a chunk marked Last.
func (n *Node) serveRepairCompare(ctx context.Context, req *wan.Envelope, reply wan.Replier) error {
	var m repairCompare
	if err := req.Decode(&m); err != nil {
		return err
	}
	if m.BytesPerSecond < 0 {
		return fmt.Errorf("node: repair: negative rate %d", m.BytesPerSecond)
	}
	peerDC := n.view.Load().members[m.Peer].DC
	src, err := n.sharedWith(m.Keyspace, m.Peer)
	if err != nil {
		return err
	}
	var local map[string]*version.Object
	if err := n.scanning(ctx, func() (err error) {
		local, err = repair.KeysInLeaves(src, m.Keyspace, m.Range, m.Depth, m.Leaves)
		return err
	}); err != nil {
		return err
	}
	objs, want := repair.CompareDigests(local, m.Digests)
	chunks, _, oversize := objectChunks(sortedObjects(objs))
	send := func(c *repairDiffChunk) error {
		env, err := wan.NewEnvelope(typeRepairCompare, c)
		if err != nil {
			return err
		}
		if err := n.pace(ctx, peerDC, int64(len(env.Payload)), m.BytesPerSecond); err != nil {
			return err
		}
		if err := reply.Send(env); err != nil {
			return fmt.Errorf("node: repair: sending differences to %s: %w", m.Peer, err)
		}
		return nil
	}
	for _, c := range chunks {
		if err := send(&repairDiffChunk{Objects: c}); err != nil {
			return err
		}
	}
	wants := keyChunks(want)
	last := &repairDiffChunk{Last: true}
	if len(wants) > 0 {
		last.Want = wants[len(wants)-1]
		for _, w := range wants[:len(wants)-1] {
			if err := send(&repairDiffChunk{Want: w}); err != nil {
				return err
			}
		}
	}
	for _, ko := range oversize {
		if len(last.Oversize) < 64 {
			last.Oversize = append(last.Oversize, ko.Key)
		}
		n.log.Warn("repair: an object is too large to send in one message; its segment stays unrepaired",
			"keyspace", m.Keyspace, "key", string(ko.Key), "peer", m.Peer, "bytes", encodedLen(ko))
	}
	return send(last)
}

// exchangeKeys runs steps 2-4 of a session in batches: for each batch of
// differing leaves it sends the digests, merges the responder's objects
// this node lacks chunk by chunk, and pushes the responder what it lacks.
// It goes on past objects too large for a message, and returns an error
// naming them once every batch was exchanged.
func (n *Node) exchangeKeys(ctx context.Context, span trace.Span, src sharedSource, ks string, r repair.Range, depth int, leaves []int, peer string, rate int64, st *repair.RangeStats) error {
	var (
		mine    map[string]*version.Object
		batches []repair.DigestBatch
	)
	if err := n.scanning(ctx, func() (err error) {
		mine, batches, err = repair.BatchDigests(src, ks, r, depth, leaves, repairChunkBytes, repairChunkItems)
		return err
	}); err != nil {
		return err
	}
	peerDC := n.view.Load().members[peer].DC
	var oversize []string
	for _, b := range batches {
		req := &repairCompare{Keyspace: ks, Range: r, Depth: depth, Peer: n.cfg.ID, Leaves: b.Leaves, Digests: b.Digests, BytesPerSecond: rate}
		reqLen := encodedLen(req)
		if err := n.pace(ctx, peerDC, reqLen, rate); err != nil {
			return err
		}
		st.BytesSent += reqLen
		toPeer := map[string]*version.Object{}
		last := false
		err := n.call(ctx, peer, typeRepairCompare, req, func(e *wan.Envelope) error {
			st.BytesSent += int64(len(e.Payload))
			if last {
				return fmt.Errorf("node: repair: %s sent differences after its last chunk", peer)
			}
			var c repairDiffChunk
			if err := e.Decode(&c); err != nil {
				return err
			}
			theirs := make(map[string]*version.Object, len(c.Objects))
			for _, ko := range c.Objects {
				if err := ko.Object.Validate(); err != nil {
					return fmt.Errorf("node: repair: object from %s: %w", peer, err)
				}
				theirs[string(ko.Key)] = ko.Object
			}
			send, toMe := repair.Reconcile(subset(mine, theirs), theirs)
			for k, o := range send {
				toPeer[k] = o
			}
			for _, k := range c.Want {
				if o, ok := mine[string(k)]; ok {
					toPeer[string(k)] = o
				}
			}
			for _, k := range c.Oversize {
				oversize = append(oversize, fmt.Sprintf("%q on %s", k, peer))
			}
			linkFixed(span, toMe)
			if err := n.mergeMany(ctx, ks, sortedObjects(toMe)); err != nil {
				return err
			}
			st.KeysFixed += int64(len(toMe))
			last = c.Last
			return nil
		})
		if err == nil && !last {
			err = fmt.Errorf("node: repair: %s ended its differences without the last chunk", peer)
		}
		if err != nil {
			return fmt.Errorf("exchanging digests with %s: %w", peer, err)
		}
		linkFixed(span, toPeer)
		big, err := n.pushChunks(ctx, ks, peer, peerDC, rate, toPeer, st)
		for _, ko := range big {
			oversize = append(oversize, fmt.Sprintf("%q on %s", ko.Key, n.cfg.ID))
			n.log.Warn("repair: an object is too large to send in one message; its segment stays unrepaired",
				"keyspace", ks, "key", string(ko.Key), "peer", peer, "bytes", encodedLen(ko))
		}
		if err != nil {
			return err
		}
	}
	if len(oversize) > 0 {
		return fmt.Errorf("%w (%d bytes at most): keys not repaired: %d, e.g. %s; lower the key's siblings or max_value_bytes, or resolve the key",
			errObjectTooLarge, repairMaxObject, len(oversize), oversize[0])
	}
	return nil
}

// pushChunks sends objs to peer in typeRepairPush messages of at most
// repairChunkBytes, paced at rate, and returns the objects too large for a
// message, which it did not send.
func (n *Node) pushChunks(ctx context.Context, ks, peer, peerDC string, rate int64, objs map[string]*version.Object, st *repair.RangeStats) ([]keyObject, error) {
	chunks, sizes, oversize := objectChunks(sortedObjects(objs))
	for i, c := range chunks {
		if err := n.pace(ctx, peerDC, sizes[i], rate); err != nil {
			return oversize, err
		}
		push := &repairPush{Keyspace: ks, Objects: c}
		st.BytesSent += sizes[i]
		n.metrics.RepairBytes.Add(ctx, sizes[i], metric.WithAttributes(telemetry.ReplicaDC(peerDC)))
		if err := n.call(ctx, peer, typeRepairPush, push, decodeAck); err != nil {
			return oversize, fmt.Errorf("pushing to %s: %w", peer, err)
		}
		st.KeysFixed += int64(len(c))
	}
	return oversize, nil
}
