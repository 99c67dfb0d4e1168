package node

import (
	"errors"
	"fmt"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/codec"
	"github.com/meridian-kv/meridian/repair"
	"github.com/meridian-kv/meridian/wan"
)

// nodeRequest is a node-to-node request that can check itself: what a
// node can check of it before it looks at its own state. Every handler
// decodes its request with decodeRequest, so a request that is not well
// formed is refused whole, with an error, before it touches anything.
type nodeRequest interface{ validate() error }

// decodeRequest decodes req's payload into m and validates it. Errors
// wrap wan.ErrMalformed.
func decodeRequest(req *wan.Envelope, m nodeRequest) error {
	if err := req.Decode(m); err != nil {
		return err
	}
	if err := m.validate(); err != nil {
		return fmt.Errorf("%w: message type %d: %w", wan.ErrMalformed, req.Type, err)
	}
	return nil
}

// msgVersion is the format version of every node-to-node message
// (messages.go) this node writes and reads: 0, which every node has
// written so far by leaving V unset.
const msgVersion uint8 = 0

// errMessageVersion marks a node-to-node message of a format version this
// node does not read.
var errMessageVersion = errors.New("node: unknown message format version")

// decodeVersioned decodes b into plain, a message's type without its
// UnmarshalCBOR method, and refuses the message unless *v, its V once
// decoded, is msgVersion. Each message's UnmarshalCBOR calls it, so every
// decode of a node message checks its version: a handler's request
// (decodeRequest) as well as a caller's reply.
func decodeVersioned(b []byte, plain any, v *uint8) error {
	if err := codec.Unmarshal(b, plain); err != nil {
		// The decode that called UnmarshalCBOR adds codec's prefix again.
		if inner := errors.Unwrap(err); inner != nil {
			return inner
		}
		return err
	}
	if *v != msgVersion {
		return fmt.Errorf("%w %d (this node reads version %d): the sender runs a newer release; upgrade this node", errMessageVersion, *v, msgVersion)
	}
	return nil
}

// Each node message decodes through decodeVersioned.

func (m *replicaWrite) UnmarshalCBOR(b []byte) error {
	type plain replicaWrite
	return decodeVersioned(b, (*plain)(m), &m.V)
}

func (m *relayWrite) UnmarshalCBOR(b []byte) error {
	type plain relayWrite
	return decodeVersioned(b, (*plain)(m), &m.V)
}

func (m *replicaAck) UnmarshalCBOR(b []byte) error {
	type plain replicaAck
	return decodeVersioned(b, (*plain)(m), &m.V)
}

func (m *hintWrite) UnmarshalCBOR(b []byte) error {
	type plain hintWrite
	return decodeVersioned(b, (*plain)(m), &m.V)
}

func (m *hintDeliver) UnmarshalCBOR(b []byte) error {
	type plain hintDeliver
	return decodeVersioned(b, (*plain)(m), &m.V)
}

func (m *replicaBatch) UnmarshalCBOR(b []byte) error {
	type plain replicaBatch
	return decodeVersioned(b, (*plain)(m), &m.V)
}

func (m *replicaBatchReply) UnmarshalCBOR(b []byte) error {
	type plain replicaBatchReply
	return decodeVersioned(b, (*plain)(m), &m.V)
}

func (m *digestBatch) UnmarshalCBOR(b []byte) error {
	type plain digestBatch
	return decodeVersioned(b, (*plain)(m), &m.V)
}

func (m *digestBatchReply) UnmarshalCBOR(b []byte) error {
	type plain digestBatchReply
	return decodeVersioned(b, (*plain)(m), &m.V)
}

func (m *replicaDigest) UnmarshalCBOR(b []byte) error {
	type plain replicaDigest
	return decodeVersioned(b, (*plain)(m), &m.V)
}

func (m *replicaRead) UnmarshalCBOR(b []byte) error {
	type plain replicaRead
	return decodeVersioned(b, (*plain)(m), &m.V)
}

func (m *relayRead) UnmarshalCBOR(b []byte) error {
	type plain relayRead
	return decodeVersioned(b, (*plain)(m), &m.V)
}

func (m *replicaObject) UnmarshalCBOR(b []byte) error {
	type plain replicaObject
	return decodeVersioned(b, (*plain)(m), &m.V)
}

func (m *ping) UnmarshalCBOR(b []byte) error {
	type plain ping
	return decodeVersioned(b, (*plain)(m), &m.V)
}

func (m *repairRun) UnmarshalCBOR(b []byte) error {
	type plain repairRun
	return decodeVersioned(b, (*plain)(m), &m.V)
}

func (m *repairStats) UnmarshalCBOR(b []byte) error {
	type plain repairStats
	return decodeVersioned(b, (*plain)(m), &m.V)
}

func (m *repairProgressReply) UnmarshalCBOR(b []byte) error {
	type plain repairProgressReply
	return decodeVersioned(b, (*plain)(m), &m.V)
}

func (m *repairLevel) UnmarshalCBOR(b []byte) error {
	type plain repairLevel
	return decodeVersioned(b, (*plain)(m), &m.V)
}

func (m *repairHashes) UnmarshalCBOR(b []byte) error {
	type plain repairHashes
	return decodeVersioned(b, (*plain)(m), &m.V)
}

func (m *repairCompare) UnmarshalCBOR(b []byte) error {
	type plain repairCompare
	return decodeVersioned(b, (*plain)(m), &m.V)
}

func (m *repairDiffChunk) UnmarshalCBOR(b []byte) error {
	type plain repairDiffChunk
	return decodeVersioned(b, (*plain)(m), &m.V)
}

func (m *repairPush) UnmarshalCBOR(b []byte) error {
	type plain repairPush
	return decodeVersioned(b, (*plain)(m), &m.V)
}

func (m *repairDone) UnmarshalCBOR(b []byte) error {
	type plain repairDone
	return decodeVersioned(b, (*plain)(m), &m.V)
}

func (m *grantSet) UnmarshalCBOR(b []byte) error {
	type plain grantSet
	return decodeVersioned(b, (*plain)(m), &m.V)
}

// maxRelayTargets bounds the replicas one relay names: far more than a
// datacenter holds replicas of a key.
const maxRelayTargets = 1024

func checkKey(key []byte) error {
	switch {
	case len(key) == 0:
		return errors.New("empty key")
	case len(key) > api.MaxKeyLen:
		return fmt.Errorf("key of %d bytes, longer than %d", len(key), api.MaxKeyLen)
	}
	return nil
}

func checkTargets(ids []string) error {
	if len(ids) > maxRelayTargets {
		return fmt.Errorf("%d relay targets, more than %d", len(ids), maxRelayTargets)
	}
	for _, id := range ids {
		if id == "" {
			return errors.New("an empty relay target")
		}
	}
	return nil
}

func checkDepth(depth int) error {
	if depth < 0 || depth > repair.MaxDepth {
		return fmt.Errorf("%w: %d", repair.ErrBadDepth, depth)
	}
	return nil
}

func checkRate(bps int64) error {
	if bps < 0 {
		return fmt.Errorf("negative rate %d bytes per second", bps)
	}
	return nil
}

func (m *replicaWrite) validate() error {
	if err := checkKey(m.Key); err != nil {
		return err
	}
	return m.Object.Validate()
}

func (m *relayWrite) validate() error {
	if err := checkKey(m.Key); err != nil {
		return err
	}
	if m.Object == nil {
		return errors.New("a relayed write without an object")
	}
	if err := m.Object.Validate(); err != nil {
		return err
	}
	if err := checkTargets(m.Targets); err != nil {
		return err
	}
	return checkTargets(m.Fallbacks)
}

func (m *hintWrite) validate() error {
	if m.Target == "" {
		return errors.New("a hint for no target")
	}
	if err := checkKey(m.Key); err != nil {
		return err
	}
	if m.Object == nil {
		return errors.New("a hint without an object")
	}
	return m.Object.Validate()
}

func (m *hintDeliver) validate() error {
	_, err := hintBatchObjects(m.Keyspace, m.Items)
	return err
}

func (m *replicaRead) validate() error { return checkKey(m.Key) }

func (m *replicaBatch) validate() error {
	if n := len(m.Writes) + len(m.Reads); n == 0 || n > maxBatchItems {
		return fmt.Errorf("a replica batch of %d requests (1 to %d)", n, maxBatchItems)
	}
	for _, w := range m.Writes {
		if err := checkKey(w.Key); err != nil {
			return err
		}
		if err := w.Object.Validate(); err != nil {
			return err
		}
	}
	return checkReads(m.Reads)
}

func (m *digestBatch) validate() error {
	if n := len(m.Reads); n == 0 || n > maxBatchItems {
		return fmt.Errorf("a digest batch of %d reads (1 to %d)", n, maxBatchItems)
	}
	return checkReads(m.Reads)
}

// checkReads checks the keys of a batch's reads.
func checkReads(reads []batchRead) error {
	for _, r := range reads {
		if err := checkKey(r.Key); err != nil {
			return err
		}
	}
	return nil
}

func (m *relayRead) validate() error {
	if err := checkKey(m.Key); err != nil {
		return err
	}
	return checkTargets(m.Targets)
}

func (m *ping) validate() error { return nil }

func (m *repairLevel) validate() error {
	if err := m.Range.Validate(); err != nil {
		return err
	}
	if m.Level < 0 {
		return fmt.Errorf("negative tree level %d", m.Level)
	}
	return checkDepth(m.Depth)
}

func (m *repairDone) validate() error {
	if err := m.Range.Validate(); err != nil {
		return err
	}
	return checkDepth(m.Depth)
}

func (m *repairPush) validate() error {
	for i, ko := range m.Objects {
		if err := checkKey(ko.Key); err != nil {
			return fmt.Errorf("object %d: %w", i, err)
		}
		if err := ko.Object.Validate(); err != nil {
			return fmt.Errorf("object %d: %w", i, err)
		}
	}
	return nil
}

// validate checks a repairRun, or a progress request (typeRepairProgress),
// which names only the keyspace.
func (m *repairRun) validate() error {
	if err := m.Range.Validate(); err != nil {
		return err
	}
	return checkRate(m.BytesPerSecond)
}

func (m *repairCompare) validate() error {
	if err := checkRate(m.BytesPerSecond); err != nil {
		return err
	}
	_, err := repair.LeafRuns(m.Range, m.Depth, m.Leaves)
	return err
}
