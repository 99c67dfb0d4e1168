package api

import (
	"errors"
	"fmt"

	"github.com/meridian-kv/meridian/consistency"
)

// MsgType values of the client protocol (wan reserves types below 16).
const (
	TypeGet               = 16 // GetRequest -> GetResponse
	TypePut               = 17 // PutRequest -> PutResponse (a delete is a put with Delete set)
	TypeStatus            = 18 // StatusRequest -> StatusResponse
	TypeRing              = 19 // RingRequest -> RingResponse
	TypeGetReply          = 20
	TypePutReply          = 21
	TypeStatusReply       = 22
	TypeRingReply         = 23
	TypeClientError       = 24 // ClientError, instead of any reply
	TypeInspect           = 25 // InspectRequest -> InspectResponse
	TypeInspectReply      = 26
	TypeRepair            = 27 // RepairRequest -> RepairProgress, streamed
	TypeRepairReply       = 28
	TypeRepairStatus      = 29 // RepairStatusRequest -> RepairStatusResponse
	TypeRepairStatusReply = 30
	// TypeReencrypt needs the cluster admin principal: it rewrites every
	// stored value of the nodes it reaches. (Types 72 and 73 are the
	// node-to-node fan-out of it.)
	TypeReencrypt      = 70 // ReencryptRequest -> ReencryptResponse
	TypeReencryptReply = 71
)

// Limits.
const (
	// MaxKeyLen is the largest key, in bytes.
	MaxKeyLen = 64 << 10
	// DefaultMaxValueLen is the default largest value, in bytes; nodes may
	// configure another.
	DefaultMaxValueLen = 1 << 20
)

// GetRequest reads one key.
type GetRequest struct {
	_           struct{} `cbor:",toarray"`
	V           uint8
	Keyspace    string
	Key         []byte
	Consistency string // "" = keyspace default
}

// Sibling is one value of a key as a client sees it.
type Sibling struct {
	_     struct{} `cbor:",toarray"`
	Value []byte
	// Writer is the dot of the write that created it, "actor:counter".
	Writer string
}

// GetResponse holds every live sibling (none when the key does not exist
// or is deleted) and the opaque causal context to pass to the next write.
type GetResponse struct {
	_        struct{} `cbor:",toarray"`
	V        uint8
	Siblings []Sibling
	Context  string
	// Deleted is true when the key exists only as a tombstone.
	Deleted bool
	Acked   map[string]int
}

// PutRequest writes (or, with Delete, deletes) one key.
type PutRequest struct {
	_           struct{} `cbor:",toarray"`
	V           uint8
	Keyspace    string
	Key         []byte
	Value       []byte
	Delete      bool
	Context     string // from a previous get; "" = blind write
	Consistency string
	// Forwarded is set when a node that holds no replica of the key passes
	// the request to one that does; LocalDC is then the datacenter whose
	// LOCAL_* levels apply (the first node's).
	Forwarded bool
	LocalDC   string
}

// PutResponse reports a successful write.
type PutResponse struct {
	_ struct{} `cbor:",toarray"`
	V uint8
	// Context supersedes exactly what this write stored.
	Context  string
	Siblings int
	Acked    map[string]int
	// Warning is set when the key has more siblings than the keyspace's
	// soft limit.
	Warning     string
	Coordinator string
}

// StatusRequest asks a node for its view of the cluster.
type StatusRequest struct {
	_ struct{} `cbor:",toarray"`
	V uint8
}

// NodeStatus is one member as the answering node sees it.
type NodeStatus struct {
	_     struct{} `cbor:",toarray"`
	ID    string   `json:"id"`
	DC    string   `json:"dc"`
	Rack  string   `json:"rack"`
	Addr  string   `json:"addr"`
	State string   `json:"state"` // up, suspect, down, failed, unverified, left
	RTTms float64  `json:"rtt_ms"`
	// HintsPending and HintBytes are the hints this node holds for others
	// (-1 when it could not be asked).
	HintsPending int   `json:"hints_pending"`
	HintBytes    int64 `json:"hint_bytes"`
	// ReadGated: the node came back from an outage longer than the
	// tombstone grace and refuses reads of ranges it has not repaired.
	ReadGated bool `json:"read_gated,omitempty"`
}

// StatusResponse lists the members.
type StatusResponse struct {
	_     struct{} `cbor:",toarray"`
	V     uint8
	Node  string
	Nodes []NodeStatus
}

// RingRequest asks for the preference list of a key.
type RingRequest struct {
	_        struct{} `cbor:",toarray"`
	V        uint8
	Keyspace string
	Key      []byte
}

// RingResponse is a key's preference list.
type RingResponse struct {
	_         struct{} `cbor:",toarray"`
	V         uint8
	Token     uint64
	Replicas  map[string][]string
	Fallbacks map[string][]string
	Short     map[string]int
}

// Error codes of ClientError.
const (
	CodeBadRequest      = "bad_request"
	CodeUnknownKeyspace = "unknown_keyspace"
	CodeTooLarge        = "too_large"
	CodeConsistency     = "bad_consistency"
	CodeQuorum          = "quorum"
	CodeTooManySiblings = "too_many_siblings"
	CodeUnavailable     = "unavailable"
	CodeInternal        = "internal"
)

// ClientError is a node's refusal of a request.
type ClientError struct {
	_       struct{} `cbor:",toarray"`
	Code    string
	Message string
	Quorum  *consistency.QuorumError
}

func (e *ClientError) Error() string { return e.Message }

// Unwrap exposes the quorum shortfall to errors.As.
func (e *ClientError) Unwrap() error {
	if e.Quorum == nil {
		return nil
	}
	return e.Quorum
}

// Errorf builds a ClientError.
func Errorf(code, format string, args ...any) *ClientError {
	return &ClientError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrKeyTooLarge and friends are the client-side checks of the limits.
var (
	ErrEmptyKey    = errors.New("meridian: empty key")
	ErrKeyTooLarge = fmt.Errorf("meridian: key longer than %d bytes", MaxKeyLen)
)

// CheckKey validates a key against the protocol limits.
func CheckKey(key []byte) error {
	if len(key) == 0 {
		return &ClientError{Code: CodeBadRequest, Message: ErrEmptyKey.Error()}
	}
	if len(key) > MaxKeyLen {
		return &ClientError{Code: CodeTooLarge, Message: fmt.Sprintf("meridian: key of %d bytes is longer than the %d-byte limit", len(key), MaxKeyLen)}
	}
	return nil
}

// InspectRequest asks every replica of a key, in every datacenter, what it
// holds.
type InspectRequest struct {
	_        struct{} `cbor:",toarray"`
	V        uint8
	Keyspace string
	Key      []byte
}

// ReplicaState is what one replica holds for a key.
type ReplicaState struct {
	_       struct{}          `cbor:",toarray"`
	Node    string            `json:"node"`
	DC      string            `json:"dc"`
	Values  []string          `json:"values"`
	Deleted bool              `json:"deleted"`
	Version map[string]uint64 `json:"version"`
	Dots    []string          `json:"dots"`
	Error   string            `json:"error,omitempty"`
}

// InspectResponse lists every replica's state.
type InspectResponse struct {
	_        struct{} `cbor:",toarray"`
	V        uint8
	Token    uint64
	Replicas []ReplicaState
}

// RepairRequest starts an anti-entropy repair now: every range of the ring,
// between every pair of replicas in the named regions (all when empty).
type RepairRequest struct {
	_        struct{} `cbor:",toarray"`
	V        uint8
	Keyspace string
	Regions  []string
	// BytesPerSecond bounds the repair's traffic to each destination
	// region (0: no limit).
	BytesPerSecond int64
}

// RepairProgress reports a running repair; the last one has Done set.
type RepairProgress struct {
	_             struct{} `cbor:",toarray"`
	V             uint8    `json:"-"`
	Pair          string   `json:"pair"` // "east/west"
	PairsDone     int      `json:"pairs_done"`
	PairsTotal    int      `json:"pairs_total"`
	RangesDone    int      `json:"ranges_done"`
	RangesTotal   int      `json:"ranges_total"`
	KeysCompared  int64    `json:"keys_compared"`
	KeysFixed     int64    `json:"keys_fixed"`
	BytesSent     int64    `json:"bytes_sent"`
	Done          bool     `json:"done"`
	ElapsedMillis int64    `json:"elapsed_ms"`
}

// RepairStatusRequest asks for the repair state of every datacenter pair.
type RepairStatusRequest struct {
	_        struct{} `cbor:",toarray"`
	V        uint8
	Keyspace string
}

// PairRepairStatus is the repair state of one datacenter pair.
type PairRepairStatus struct {
	_    struct{} `cbor:",toarray"`
	Pair string   `json:"pair"`
	// LastFullCompleted is when the last repair covering the whole ring
	// finished (Unix seconds; 0: never).
	LastFullCompleted int64 `json:"last_full_completed"`
	// PassFraction is how much of the ring the pass in progress covered.
	PassFraction float64 `json:"pass_fraction"`
	KeysCompared int64   `json:"keys_compared"`
	KeysFixed    int64   `json:"keys_fixed"`
	BytesSent    int64   `json:"bytes_sent"`
	// NextWindow is when the pair's next scheduled window opens (Unix
	// seconds; 0: no window configured, -1: a window is open now).
	NextWindow int64 `json:"next_window"`
	// Schedule says what repairs the pair unasked: "windows",
	// "background: ..." (the default low-rate pass) or "on demand".
	Schedule string `json:"schedule"`
}

// RepairStatusResponse lists every pair.
type RepairStatusResponse struct {
	_     struct{} `cbor:",toarray"`
	V     uint8
	Pairs []PairRepairStatus
}

// ReencryptRequest asks a node to re-seal, under its active encryption
// key, every value it stores sealed under another key (or not sealed),
// so that old keys can be removed from its key file.
type ReencryptRequest struct {
	_ struct{} `cbor:",toarray"`
	V uint8
	// All has the node pass the request on to every member of its ring
	// and report for each; unset, it answers for itself only.
	All bool
}

// ReencryptResult is what one node re-encrypted.
type ReencryptResult struct {
	_    struct{} `cbor:",toarray"`
	Node string   `json:"node"`
	// ActiveKey is the key id the node seals values under.
	ActiveKey string `json:"active_key"`
	// Rewritten values were sealed anew under ActiveKey; Current ones
	// already were.
	Rewritten int64 `json:"rewritten"`
	Current   int64 `json:"current"`
	// ByKey counts the rewritten values by the key id they were under;
	// "" counts values that were not sealed.
	ByKey map[string]int64 `json:"by_key"`
	// Unreadable values could not be opened (sealed under a key the node
	// lacks, or damaged) and were left as they are.
	Unreadable int64 `json:"unreadable"`
	// Error says why the node did not finish (or was not reached).
	Error string `json:"error,omitempty"`
}

// ReencryptResponse reports per node, sorted by node id.
type ReencryptResponse struct {
	_     struct{} `cbor:",toarray"`
	V     uint8
	Nodes []ReencryptResult
}
