package node

import (
	"github.com/meridian-kv/meridian/grants"
	"github.com/meridian-kv/meridian/repair"
	"github.com/meridian-kv/meridian/version"
	"github.com/meridian-kv/meridian/wan"
)

// The node-to-node wire (node ALPN only; client messages live in package
// api). Every message is a wan.Envelope whose Type names the exchange and
// whose payload is one of the structs below, encoded by package codec as a
// CBOR array of its fields in order (toarray). An array decodes only into a
// struct with exactly as many fields, so adding, removing or reordering a
// field changes the format: a node of another release fails to decode the
// message. A change that nodes of the previous release must survive during
// a rolling upgrade takes a new message type instead, which they refuse as
// unknown, as typeRepairCompare replaced typeRepairDigests and
// typeHintDeliver joined typeHintWrite.
//
// Every top-level message starts with V, the version of its format within
// its type. Every node writes 0 (senders leave V unset) and refuses any
// other value on decode (decode.go, decodeVersioned), so a later format
// that keeps a message's fields but changes their meaning can take V 1 and
// be refused clearly by older nodes instead of misread. Items nested in a
// message (hintItem, keyObject) have no V: their message's covers them.
// TestDecodeListsEveryMessage keeps every such struct in this file.

// Node-to-node message types, grouped by exchange: request -> reply.
const (
	// Replica writes and reads (messages below), and the ping that carries
	// health, hint totals and incarnations.
	typeReplicaWrite wan.MsgType = 32 // replicaWrite -> replicaAck
	typeRelayWrite   wan.MsgType = 33 // relayWrite -> replicaAck per target, streamed
	typeReplicaRead  wan.MsgType = 34 // replicaRead -> replicaObject
	typeRelayRead    wan.MsgType = 35 // relayRead -> replicaObject per target, streamed
	typePing         wan.MsgType = 36 // ping -> ping
	typeReplicaAck   wan.MsgType = 40 // the reply type of replicaAck
	typeReplicaObj   wan.MsgType = 41 // the reply type of replicaObject
	// Replica writes and reads to one peer, coalesced (batch.go).
	typeReplicaBatch      wan.MsgType = 38 // replicaBatch -> replicaBatchReply
	typeReplicaBatchReply wan.MsgType = 39 // the reply type of replicaBatchReply
	// Digest reads: a replica's key hashes instead of its objects (batch.go).
	typeDigestBatch      wan.MsgType = 50 // digestBatch -> digestBatchReply
	typeDigestBatchReply wan.MsgType = 51 // the reply type of digestBatchReply
	typeRelayDigests     wan.MsgType = 52 // relayRead -> replicaDigest per target, streamed
	typeReplicaDigest    wan.MsgType = 53 // the reply type of replicaDigest

	// Hinted handoff.
	typeHintWrite   wan.MsgType = 37 // hintWrite -> replicaAck (a fallback keeps a hint)
	typeHintDeliver wan.MsgType = 56 // hintDeliver -> replicaAck (a batch of hints for the receiver; handoffbatch.go)

	// Anti-entropy repair; replies carry their request's type.
	typeRepairLevel    wan.MsgType = 42 // repairLevel -> repairHashes
	typeRepairDigests  wan.MsgType = 43 // retired: one repairDiff could outgrow a frame (see typeRepairCompare)
	typeRepairPush     wan.MsgType = 44 // repairPush -> replicaAck
	typeRepairRun      wan.MsgType = 45 // repairRun -> repairStats
	typeRepairProgress wan.MsgType = 46 // repairRun (keyspace only) -> repairProgressReply
	typeRepairDone     wan.MsgType = 47 // repairDone -> replicaAck
	typeRepairCompare  wan.MsgType = 48 // repairCompare (one batch) -> repairDiffChunk..., the last marked

	// Grant replication (grantsync.go).
	typeGrantPush wan.MsgType = 64 // grantSet (entries to merge) -> grantSet (the receiver's digest after merging)
	typeGrantSync wan.MsgType = 65 // grantSet (digest only) -> grantSet (the receiver's digest; all its entries when the digests differ)
	typeGrantSet  wan.MsgType = 66 // the reply of both

	// `meridian reencrypt` fanned out to every node; the payloads are the
	// client protocol's (package api).
	typeReencryptNode      wan.MsgType = 72 // api.ReencryptRequest (All unset) -> typeReencryptNodeReply
	typeReencryptNodeReply wan.MsgType = 73 // api.ReencryptResult
)

// Replica writes.

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

// Hinted handoff (Dynamo §4.6).

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

// hintDeliver carries a batch of hints to the node they are for: objects
// of one keyspace, which the receiver merges in one synced batch
// (store.MergeMany) before it acknowledges with one replicaAck.
type hintDeliver struct {
	_        struct{} `cbor:",toarray"`
	V        uint8
	Keyspace string
	Items    []hintItem
}

// hintItem is one hinted key and the object to merge into it.
type hintItem struct {
	_      struct{} `cbor:",toarray"`
	Key    []byte
	Object *version.Object
}

// Replica reads.

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

// Coalesced replica traffic (batch.go).

// replicaBatch carries replica writes and reads for one peer: the writes
// to merge, a synced store batch per keyspace, and the keys to read.
// Each answers on its own in the replicaBatchReply, in order.
type replicaBatch struct {
	_      struct{} `cbor:",toarray"`
	V      uint8
	Writes []batchWrite
	Reads  []batchRead
}

// batchWrite is one replica write of a replicaBatch.
type batchWrite struct {
	_        struct{} `cbor:",toarray"`
	Keyspace string
	Key      []byte
	Object   *version.Object
	// Traceparent is the W3C trace context of the write's own call, so the
	// replica's span of it joins the write's trace ("" outside a trace).
	Traceparent string
}

// batchRead is one replica read of a replicaBatch.
type batchRead struct {
	_           struct{} `cbor:",toarray"`
	Keyspace    string
	Key         []byte
	Traceparent string // as batchWrite's
}

// replicaBatchReply answers a replicaBatch, one entry per request in its
// order: for each write, "" once durably merged or why not; for each read,
// the object or why not.
type replicaBatchReply struct {
	_      struct{} `cbor:",toarray"`
	V      uint8
	Node   string
	Writes []string
	Reads  []batchObject
}

// batchObject is one read's answer in a replicaBatchReply.
type batchObject struct {
	_      struct{} `cbor:",toarray"`
	Object *version.Object
	Error  string
	// Again: not read, the reply's objects having reached their budget;
	// the caller reads the key with a call of its own.
	Again bool
}

// digestBatch asks a replica for the digests of its copies of keys
// instead of the copies: a read's coordinator holding a copy of its own
// compares, and asks for the object only where they differ.
type digestBatch struct {
	_     struct{} `cbor:",toarray"`
	V     uint8
	Reads []batchRead
}

// digestBatchReply answers a digestBatch, one entry per read in its order.
type digestBatchReply struct {
	_       struct{} `cbor:",toarray"`
	V       uint8
	Node    string
	Digests []batchDigest
}

// batchDigest is one read's answer in a digestBatchReply: the
// repair.KeyHash of the replica's copy (repair.HashSize bytes), or why
// the replica could not read it.
type batchDigest struct {
	_      struct{} `cbor:",toarray"`
	Digest []byte
	Error  string
}

// replicaDigest is one replica's digest of a key (repair.KeyHash,
// repair.HashSize bytes), relayed from a remote datacenter, or why it
// could not be read.
type replicaDigest struct {
	_      struct{} `cbor:",toarray"`
	V      uint8
	Node   string
	Digest []byte
	Error  string
}

// Health.

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

// Anti-entropy repair: a coordinator asks the initiator of a pair to run a
// session (repairRun), which compares Merkle trees level by level with the
// responder (repairLevel), then the keys under the differing leaves
// (repairCompare), pushes what the responder lacks (repairPush) and ends
// the session (repairDone).

// repairRun asks a node to repair a range with a peer.
type repairRun struct {
	_        struct{} `cbor:",toarray"`
	V        uint8
	Keyspace string
	Range    repair.Range
	Peer     string
	// BytesPerSecond paces the initiator's sends to Peer's region (0: no
	// limit).
	BytesPerSecond int64
}

// repairStats is the initiator's answer to repairRun: what the session
// compared and fixed.
type repairStats struct {
	_     struct{} `cbor:",toarray"`
	V     uint8
	Stats repair.RangeStats
}

// repairProgressReply carries a node's checkpoints to a status request.
type repairProgressReply struct {
	_        struct{} `cbor:",toarray"`
	V        uint8
	Progress [][]byte // repair.EncodeProgress of each pair
}

// repairLevel asks the responder for hashes of its tree.
type repairLevel struct {
	_        struct{} `cbor:",toarray"`
	V        uint8
	Keyspace string
	Range    repair.Range
	Depth    int
	Peer     string // the initiator: the tree covers keys both hold
	Level    int
	Indexes  []int
}

// repairHashes answers repairLevel: the hashes of the responder's tree at
// Level of the nodes Indexes names.
type repairHashes struct {
	_      struct{} `cbor:",toarray"`
	V      uint8
	Hashes [][]byte
}

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
// repairCompare batch (typeRepairCompare): some of its objects that differ
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

// repairPush asks the responder to merge objects.
type repairPush struct {
	_        struct{} `cbor:",toarray"`
	V        uint8
	Keyspace string
	Objects  []keyObject
}

// keyObject is one key and its object.
type keyObject struct {
	_      struct{} `cbor:",toarray"`
	Key    []byte
	Object *version.Object
}

// repairDone tells the responder that the initiator (Peer) completed the
// session over Range whose trees had Depth levels.
type repairDone struct {
	_        struct{} `cbor:",toarray"`
	V        uint8
	Keyspace string
	Range    repair.Range
	Depth    int
	Peer     string
}

// Grant replication (grantsync.go).

// grantSet carries a table's digest and, when needed, entries.
type grantSet struct {
	_       struct{} `cbor:",toarray"`
	V       uint8
	Digest  []byte
	Entries []grants.Entry
}
