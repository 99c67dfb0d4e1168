package node

import (
	"context"

	"github.com/meridian-kv/meridian/version"
)

// RefuseBatches makes n answer replica batches as a node of an earlier
// release does: as an unknown message type.
func RefuseBatches(n *Node, refuse bool) { n.refuseBatches.Store(refuse) }

// RefuseDigests makes n answer digest batches as a node of an earlier
// release does: as an unknown message type.
func RefuseDigests(n *Node, refuse bool) { n.refuseDigests.Store(refuse) }

// BatchWrite is one write of MergeBatch.
type BatchWrite struct {
	Keyspace string
	Key      []byte
	Object   *version.Object
}

// MergeBatch has n merge writes as it merges a replica batch's, and
// returns each write's error ("" once merged).
func MergeBatch(n *Node, from string, writes []BatchWrite) []string {
	bw := make([]batchWrite, len(writes))
	for i, w := range writes {
		bw[i] = batchWrite{Keyspace: w.Keyspace, Key: w.Key, Object: w.Object}
	}
	return n.mergeBatch(context.Background(), from, bw)
}

// SetUnverified marks n's data directory as not yet verified by its
// peers, as after a start on an empty directory: n then serves no
// replica reads.
func SetUnverified(n *Node, unverified bool) { n.ident.unverified.Store(unverified) }
