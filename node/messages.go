package node

import (
	"github.com/meridian-kv/meridian/version"
	"github.com/meridian-kv/meridian/wan"
)

// Node-to-node message types (node ALPN only). Client types live in api.
const (
	typeReplicaWrite   wan.MsgType = 32 // replicaWrite -> replicaAck
	typeRelayWrite     wan.MsgType = 33 // relayWrite -> replicaAck per target, streamed
	typeReplicaRead    wan.MsgType = 34 // replicaRead -> replicaObject
	typeRelayRead      wan.MsgType = 35 // relayRead -> replicaObject per target, streamed
	typePing           wan.MsgType = 36 // ping -> ping
	typeHintWrite      wan.MsgType = 37 // hintWrite -> replicaAck (a fallback keeps a hint)
	typeHintDeliver    wan.MsgType = 56 // hintDeliver -> replicaAck (a batch of hints for the receiver; handoffbatch.go)
	typeRepairLevel    wan.MsgType = 42 // repairLevel -> repairHashes
	typeRepairDigests  wan.MsgType = 43 // retired: one repairDiff could outgrow a frame (see typeRepairCompare)
	typeRepairPush     wan.MsgType = 44 // repairPush -> replicaAck
	typeRepairRun      wan.MsgType = 45 // repairRun -> repairStats
	typeRepairProgress wan.MsgType = 46 // repairRun (keyspace only) -> repairProgressReply
	typeRepairDone     wan.MsgType = 47 // repairDone -> replicaAck
	typeRepairCompare  wan.MsgType = 48 // repairCompare (one batch) -> repairDiffChunk..., the last marked
	typeReplicaAck     wan.MsgType = 40
	typeReplicaObj     wan.MsgType = 41
)

// replicaWrite asks a replica to merge an object into its store.
type replicaWrite struct {
	_        struct{} `cbor:",toarray"`
	V        uint8
	Keyspace string
	Key      []byte
	Object   *version.Object
}

// relayWrite asks a replica in a remote datacenter to merge an object and
// forward it to the listed replicas of its datacenter (itself included when
// listed), streaming one replicaAck per target.
type relayWrite struct {
	_        struct{} `cbor:",toarray"`
	V        uint8
	Keyspace string
	Key      []byte
	Object   *version.Object
	Targets  []string
	// Fallbacks are the datacenter's next nodes for sloppy quorum.
	Fallbacks []string
}

// replicaAck reports the outcome of one replica write.
type replicaAck struct {
	_     struct{} `cbor:",toarray"`
	V     uint8
	Node  string
	Error string // "" = durably merged (or, with Hinted, durably kept as a hint)
	// Hinted reports that the target was not reached and a hint for it was
	// stored (by a fallback or by the node that reports).
	Hinted bool
}

// hintWrite asks a fallback node to keep an object as a hint for Target
// (sloppy quorum, Dynamo §4.6).
type hintWrite struct {
	_        struct{} `cbor:",toarray"`
	V        uint8
	Target   string
	Keyspace string
	Key      []byte
	Object   *version.Object
}

// replicaRead asks a replica for its object of a key.
type replicaRead struct {
	_        struct{} `cbor:",toarray"`
	V        uint8
	Keyspace string
	Key      []byte
	// Inspect reads for an operator (meridian inspect): what the replica
	// holds, even while its read gate refuses to serve the key.
	Inspect bool
}

// relayRead asks a remote replica to read from the listed replicas of its
// datacenter, streaming one replicaObject per target.
type relayRead struct {
	_        struct{} `cbor:",toarray"`
	V        uint8
	Keyspace string
	Key      []byte
	Targets  []string
}

// replicaObject is one replica's object of a key.
type replicaObject struct {
	_      struct{} `cbor:",toarray"`
	V      uint8
	Node   string
	Object *version.Object
	Error  string
}

// ping probes a peer; the reply reports the peer's pending hints.
type ping struct {
	_         struct{} `cbor:",toarray"`
	V         uint8
	Node      string
	HintCount int
	HintBytes int64
	// ReadGated: the node is back from a long outage and still refuses
	// reads of ranges it has not repaired.
	ReadGated bool
	// Incarnation is the sender's data directory incarnation; Known the
	// incarnations the sender has seen of the receiver (identity.go).
	Incarnation string
	Known       []string
}
