package repair

import (
	"bytes"
	"context"
	"fmt"
)

// Peer is the other replica of a repair session as the tree comparison
// sees it. Level returns the digests of the given nodes of one level of the
// peer's tree (built over the same keyspace, range and depth), in the order
// asked. It blocks for one round trip; DiffWithPeer calls it from one
// goroutine, one level at a time, and does not keep the slices it is given
// or returns. *Tree implements Peer, so the responder of a session serves
// Level requests straight from its own tree.
type Peer interface {
	Level(ctx context.Context, level int, indexes []int) ([][]byte, error)
}

// DiffStats counts the cost of one tree comparison.
type DiffStats struct {
	Rounds         int // Level requests (round trips)
	IndexesSent    int // node indexes the initiator asked for
	HashesReceived int // digests the peer answered with
	// Bytes estimates the wire bytes of the comparison's payloads: the
	// CBOR size of every request (level and index array) and answer (array
	// of digests), without transport framing.
	Bytes int
}

// Differ is the initiator's side of a top-down tree comparison as a step
// function, for a node that runs the exchange itself:
//
//	d, err := repair.NewDiffer(local, 1)
//	for !d.Done() {
//		level, indexes := d.Request()
//		hashes, err := askPeer(ctx, level, indexes) // over QUIC
//		if err != nil { ... }
//		if err := d.Receive(hashes); err != nil { ... }
//	}
//	leaves := d.Leaves()
//
// The first request is the root. Each following one asks for the
// descendants, stride levels down (the last step may be shorter), of the
// nodes found to differ, so the hashes exchanged grow with the number of
// differing leaves times the depth, not with the size of the tree. Stride 1
// sends the fewest hashes; a larger stride trades hashes for fewer round
// trips on a high-latency link.
type Differ struct {
	local   *Tree
	stride  int
	level   int   // level of the pending request
	pending []int // indexes of the pending request, nil when done
	diff    []int // differing nodes found at the last answered level
	stats   DiffStats
	done    bool
}

// NewDiffer starts a comparison of local against a peer's tree. stride <= 0
// means 1.
func NewDiffer(local *Tree, stride int) *Differ {
	if stride <= 0 {
		stride = 1
	}
	return &Differ{local: local, stride: stride, level: 0, pending: []int{0}}
}

// Done reports whether the comparison has finished.
func (d *Differ) Done() bool { return d.done }

// Request returns the level and node indexes to ask the peer for next.
// The slice belongs to the Differ; it stays valid until Receive.
func (d *Differ) Request() (level int, indexes []int) { return d.level, d.pending }

// Receive takes the peer's answer to the last Request: one digest of
// HashSize bytes per index, in order.
func (d *Differ) Receive(hashes [][]byte) error {
	if d.done {
		return fmt.Errorf("%w: answer after the comparison finished", ErrPeerProtocol)
	}
	if len(hashes) != len(d.pending) {
		return fmt.Errorf("%w: %d hashes for %d indexes of level %d", ErrPeerProtocol, len(hashes), len(d.pending), d.level)
	}
	d.stats.Rounds++
	d.stats.IndexesSent += len(d.pending)
	d.stats.HashesReceived += len(hashes)
	d.stats.Bytes += cborHead(uint64(d.level)) + cborHead(uint64(len(d.pending))) + len(hashes)*(1+HashSize) + cborHead(uint64(len(hashes)))
	for _, i := range d.pending {
		d.stats.Bytes += cborHead(uint64(i))
	}
	d.diff = d.diff[:0]
	for k, i := range d.pending {
		if len(hashes[k]) != HashSize {
			return fmt.Errorf("%w: hash of %d bytes (want %d)", ErrPeerProtocol, len(hashes[k]), HashSize)
		}
		h := d.local.Hash(d.level, i)
		if !bytes.Equal(h[:], hashes[k]) {
			d.diff = append(d.diff, i)
		}
	}
	if len(d.diff) == 0 || d.level == d.local.depth {
		d.done = true
		d.pending = nil
		return nil
	}
	next := min(d.level+d.stride, d.local.depth)
	fan := 1 << (next - d.level)
	pending := make([]int, 0, len(d.diff)*fan)
	for _, i := range d.diff {
		for c := range fan {
			pending = append(pending, i*fan+c)
		}
	}
	d.level, d.pending = next, pending
	return nil
}

// Leaves returns the differing leaves, ascending, once Done.
func (d *Differ) Leaves() []int {
	if !d.done || d.level != d.local.depth {
		return nil
	}
	return append([]int(nil), d.diff...)
}

// Stats returns the cost of the comparison so far.
func (d *Differ) Stats() DiffStats { return d.stats }

// DiffWithPeer compares local with peer's tree top down, one level per
// round trip (Differ with stride 1), and returns the leaves whose digests
// differ, ascending. Both trees must cover the same keyspace, range and
// depth; the session handshake has to agree on them, since a Peer cannot
// tell.
func DiffWithPeer(ctx context.Context, local *Tree, peer Peer) ([]int, DiffStats, error) {
	return DiffWithPeerStride(ctx, local, peer, 1)
}

// DiffWithPeerStride is DiffWithPeer descending stride levels per round
// trip.
func DiffWithPeerStride(ctx context.Context, local *Tree, peer Peer, stride int) ([]int, DiffStats, error) {
	d := NewDiffer(local, stride)
	for !d.Done() {
		if err := ctx.Err(); err != nil {
			return nil, d.Stats(), err
		}
		level, indexes := d.Request()
		hashes, err := peer.Level(ctx, level, indexes)
		if err != nil {
			return nil, d.Stats(), fmt.Errorf("repair: tree level %d from peer: %w", level, err)
		}
		if err := d.Receive(hashes); err != nil {
			return nil, d.Stats(), err
		}
	}
	return d.Leaves(), d.Stats(), nil
}

// Diff compares two local trees and returns the leaves whose digests
// differ, ascending.
func Diff(a, b *Tree) ([]int, error) {
	if a.ks != b.ks || a.r != b.r || a.depth != b.depth {
		return nil, fmt.Errorf("%w: %q %s depth %d vs %q %s depth %d", ErrMismatch, a.ks, a.r, a.depth, b.ks, b.r, b.depth)
	}
	leaves, _, err := DiffWithPeer(context.Background(), a, b)
	return leaves, err
}

// cborHead returns the size of a CBOR head carrying argument v.
func cborHead(v uint64) int {
	switch {
	case v < 24:
		return 1
	case v <= 0xff:
		return 2
	case v <= 0xffff:
		return 3
	case v <= 0xffffffff:
		return 5
	}
	return 9
}
