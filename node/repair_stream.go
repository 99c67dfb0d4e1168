package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

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
// repairChunkBytes by more than one object.
// The initiator cuts the differing leaves into batches
// (repair.BatchDigests) and sends each as a typeRepairCompare request;
// the responder streams its answer as repairDiffChunks, and the
// initiator merges each chunk as it comes and pushes what the responder
// lacks in typeRepairPush messages of the same size. A message holding a
// single object larger than a frame travels in fragments; an object larger
// than a message can be (repairMaxObject) is not sent, and fails its
// session (and so its segment) with an error naming such a key once the rest
// of the session's keys are exchanged.
const (
	// repairChunkBytes bounds one message's payload: a quarter of
	// wan.DefaultMaxFrame, so messages of other sessions and quorum
	// traffic interleave with repair on a link, and pacing is smooth.
	repairChunkBytes = 1 << 20
	// repairChunkItems bounds the elements of one array in a message,
	// well within codec.MaxArrayElements.
	repairChunkItems = codec.MaxArrayElements / 4
	// repairMessageRoom is what a message keeps free for the envelope
	// (type, ids, deadline, trace) and one key beside one object.
	repairMessageRoom = 96 << 10
)

// repairMaxObject is the largest object one repair message can carry:
// messages travel in fragments up to the node's message limit
// (limits.max_object_bytes × (replicas + 1) + 1 MiB), less room for the
// envelope and a key. Objects are bounded far below it at write time, so
// only one a merge of concurrent writes made larger is set aside.
func (n *Node) repairMaxObject() int { return n.cfg.messageLimit() - repairMessageRoom }

// errRepairObjectTooLarge marks a key whose object does not fit in one message.
var errRepairObjectTooLarge = errors.New("node: repair: object larger than a message")

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

// errChunkFull stops a scan whose chunk is full; the scan resumes after
// the chunk is sent.
var errChunkFull = errors.New("node: repair: chunk full")

// serveRepairCompare answers one digest batch of a session
// (typeRepairCompare), as repair.CompareDigests would: it streams the
// objects of this node that differ from the initiator's digests or that
// the initiator lacks, then the keys it lacks, in chunks, and ends with a
// chunk marked Last. It scans its keys under the batch's leaves a chunk
// at a time, resuming after the last key sent, so it holds one chunk in
// memory however much differs, and holds the scan slot only while it
// scans, not while it sends.
func (n *Node) serveRepairCompare(ctx context.Context, req *wan.Envelope, reply wan.Replier) error {
	var m repairCompare
	if err := decodeRequest(req, &m); err != nil {
		return err
	}
	if m.BytesPerSecond < 0 {
		return fmt.Errorf("node: repair: negative rate %d", m.BytesPerSecond)
	}
	peerDC := n.peers.current().members[m.Peer].DC
	src, err := n.sharedWith(m.Keyspace, m.Peer)
	if err != nil {
		return err
	}
	runs, err := repair.LeafRuns(m.Range, m.Depth, m.Leaves)
	if err != nil {
		return err
	}
	remote := make(map[string]repair.Hash, len(m.Digests))
	for _, d := range m.Digests {
		remote[string(d.Key)] = d.Hash
	}
	seen := make(map[string]bool, len(remote))
	send := func(c *repairDiffChunk) error {
		env, err := wan.NewEnvelope(typeRepairCompare, c)
		if err != nil {
			return err
		}
		if err := n.repairer.pace(ctx, peerDC, int64(len(env.Payload)), m.BytesPerSecond); err != nil {
			return err
		}
		if err := reply.Send(env); err != nil {
			return fmt.Errorf("node: repair: sending differences to %s: %w", m.Peer, err)
		}
		return nil
	}
	var (
		chunk    []keyObject
		size     int64
		oversize [][]byte
	)
	for _, run := range runs {
		from, after := run.From, []byte(nil) // resume at token from, past key after
		for {
			full := false
			err := n.repairer.scanning(ctx, func() error {
				return src.Scan(m.Keyspace, from, run.To, func(tok uint64, key []byte, obj *version.Object) error {
					if after != nil && tok == from && bytes.Compare(key, after) <= 0 {
						return nil
					}
					if obj.IsEmpty() {
						return nil
					}
					k := string(key)
					if h, ok := remote[k]; ok {
						seen[k] = true
						if repair.KeyHash(key, obj) == h {
							return nil
						}
					}
					ko := keyObject{Key: key, Object: obj}
					s := encodedLen(ko)
					if s > int64(n.repairMaxObject()) {
						oversize = append(oversize, key)
						n.log.Warn("repair: an object is too large to send in one message; its segment stays unrepaired",
							"keyspace", m.Keyspace, "key", k, "peer", m.Peer, "bytes", s)
						return nil
					}
					chunk = append(chunk, ko)
					size += s
					if size >= repairChunkBytes || len(chunk) >= repairChunkItems {
						from, after, full = tok, key, true
						return errChunkFull
					}
					return nil
				})
			})
			if err != nil && !errors.Is(err, errChunkFull) {
				return err
			}
			if !full {
				break
			}
			if err := send(&repairDiffChunk{Objects: chunk}); err != nil {
				return err
			}
			chunk, size = nil, 0
		}
	}
	if len(chunk) > 0 {
		if err := send(&repairDiffChunk{Objects: chunk}); err != nil {
			return err
		}
	}
	var want [][]byte
	for _, d := range m.Digests {
		if !seen[string(d.Key)] {
			want = append(want, d.Key)
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
	last.Oversize = oversize[:min(len(oversize), 64)]
	return send(last)
}

// exchangeKeys runs steps 2-4 of a session in batches: for each batch of
// differing leaves it sends the digests, merges the responder's objects
// this node lacks chunk by chunk, and pushes the responder what it lacks.
// It goes on past objects too large for a message, and returns an error
// naming them once every batch was exchanged.
func (n *Node) exchangeKeys(ctx context.Context, span trace.Span, src sharedSource, ks string, r repair.Range, depth int, leaves []int, peer string, rate int64, st *repair.RangeStats) error {
	var batches []repair.DigestBatch
	if err := n.repairer.scanning(ctx, func() (err error) {
		batches, err = repair.BatchDigests(src, ks, r, depth, leaves, repairChunkBytes, repairChunkItems)
		return err
	}); err != nil {
		return err
	}
	peerDC := n.peers.current().members[peer].DC
	var oversize []string
	for _, b := range batches {
		req := &repairCompare{Keyspace: ks, Range: r, Depth: depth, Peer: n.cfg.ID, Leaves: b.Leaves, Digests: b.Digests, BytesPerSecond: rate}
		reqLen := encodedLen(req)
		if err := n.repairer.pace(ctx, peerDC, reqLen, rate); err != nil {
			return err
		}
		st.BytesSent += reqLen
		toPeer := map[string]bool{} // keys whose objects the peer lacks
		links := 0
		last := false
		err := n.peers.call(ctx, peer, typeRepairCompare, req, func(e *wan.Envelope) error {
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
			// This node's objects are read again here, not kept from the
			// scan that made the digests: memory follows one chunk.
			mine, err := n.localObjects(ks, theirs, c.Want)
			if err != nil {
				return err
			}
			send, toMe := repair.Reconcile(subset(mine, theirs), theirs)
			for k := range send {
				toPeer[k] = true
			}
			for _, k := range c.Want {
				if o := mine[string(k)]; !o.IsEmpty() {
					toPeer[string(k)] = true
					send[string(k)] = o
				}
			}
			if links < maxRepairLinks {
				linkFixed(span, send, toMe)
				links += len(send) + len(toMe)
			}
			for _, k := range c.Oversize {
				oversize = append(oversize, fmt.Sprintf("%q on %s", k, peer))
			}
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
			errRepairObjectTooLarge, n.repairMaxObject(), len(oversize), oversize[0])
	}
	return nil
}

// pushChunks reads this node's objects of keys and sends them to peer in
// typeRepairPush messages of at most repairChunkBytes, paced at rate, one
// chunk in memory at a time. It returns the objects too large for a
// message, which it did not send.
func (n *Node) pushChunks(ctx context.Context, ks, peer, peerDC string, rate int64, keys map[string]bool, st *repair.RangeStats) ([]keyObject, error) {
	sorted := slices.Sorted(maps.Keys(keys))
	var (
		chunk    []keyObject
		size     int64
		oversize []keyObject
	)
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		if err := n.repairer.pace(ctx, peerDC, size, rate); err != nil {
			return err
		}
		st.BytesSent += size
		n.metrics.RepairBytes.Add(ctx, size, metric.WithAttributes(telemetry.ReplicaDC(peerDC)))
		if err := n.peers.call(ctx, peer, typeRepairPush, &repairPush{Keyspace: ks, Objects: chunk}, decodeAck); err != nil {
			return fmt.Errorf("pushing to %s: %w", peer, err)
		}
		st.KeysFixed += int64(len(chunk))
		chunk, size = nil, 0
		return nil
	}
	for _, k := range sorted {
		o, err := n.store.Get(ks, []byte(k))
		if err != nil {
			return oversize, fmt.Errorf("node: repair: read %q: %w", k, err)
		}
		if o.IsEmpty() {
			continue
		}
		ko := keyObject{Key: []byte(k), Object: o}
		s := encodedLen(ko)
		if s > int64(n.repairMaxObject()) {
			oversize = append(oversize, ko)
			continue
		}
		if len(chunk) > 0 && (size+s > repairChunkBytes || len(chunk) == repairChunkItems) {
			if err := flush(); err != nil {
				return oversize, err
			}
		}
		chunk = append(chunk, ko)
		size += s
	}
	return oversize, flush()
}

// localObjects reads this node's objects of the keys of theirs and of
// want.
func (n *Node) localObjects(ks string, theirs map[string]*version.Object, want [][]byte) (map[string]*version.Object, error) {
	out := make(map[string]*version.Object, len(theirs)+len(want))
	read := func(k string) error {
		o, err := n.store.Get(ks, []byte(k))
		if err != nil {
			return fmt.Errorf("node: repair: read %q: %w", k, err)
		}
		out[k] = o
		return nil
	}
	for k := range theirs {
		if err := read(k); err != nil {
			return nil, err
		}
	}
	for _, k := range want {
		if err := read(string(k)); err != nil {
			return nil, err
		}
	}
	return out, nil
}
