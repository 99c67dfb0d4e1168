package api

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/meridian-kv/meridian/codec"
	"github.com/meridian-kv/meridian/consistency"
	"github.com/meridian-kv/meridian/internal/fuzzseed"
	"github.com/meridian-kv/meridian/version"
)

// clientMessage is one kind of message of the client protocol: the
// requests a node decodes and the replies a client decodes.
type clientMessage struct {
	name     string
	new      func() any
	validate func(any) *ClientError // nil: decoded as it is
	sample   any
}

// clientMessages lists every message kind; FuzzClientMessage picks one by
// the first byte of its input, so the order is part of the corpus.
func clientMessages() []clientMessage {
	ctx := version.EncodeContext(version.Vector{"east-1~a": 3, "west-2~b": 1})
	return []clientMessage{
		{"get", func() any { return new(GetRequest) }, func(v any) *ClientError { return v.(*GetRequest).Validate() },
			&GetRequest{Keyspace: "default", Key: []byte("k"), Consistency: "east=2,west=1"}},
		{"put", func() any { return new(PutRequest) }, func(v any) *ClientError { return v.(*PutRequest).Validate() },
			&PutRequest{Keyspace: "default", Key: []byte("k"), Value: []byte("v"), Context: ctx, Consistency: "QUORUM", Forwarded: true, LocalDC: "east"}},
		{"status", func() any { return new(StatusRequest) }, nil, &StatusRequest{}},
		{"ring", func() any { return new(RingRequest) }, func(v any) *ClientError { return v.(*RingRequest).Validate() },
			&RingRequest{Keyspace: "default", Key: []byte("k")}},
		{"inspect", func() any { return new(InspectRequest) }, func(v any) *ClientError { return v.(*InspectRequest).Validate() },
			&InspectRequest{Keyspace: "default", Key: []byte("k")}},
		{"repair", func() any { return new(RepairRequest) }, func(v any) *ClientError { return v.(*RepairRequest).Validate() },
			&RepairRequest{Keyspace: "default", Regions: []string{"east", "west"}, BytesPerSecond: 1 << 20}},
		{"repair-status", func() any { return new(RepairStatusRequest) }, nil, &RepairStatusRequest{Keyspace: "default"}},
		{"get-reply", func() any { return new(GetResponse) }, nil,
			&GetResponse{Siblings: []Sibling{{Value: []byte("v"), Writer: "east-1~a:3"}}, Context: ctx, Acked: map[string]int{"east": 2}}},
		{"put-reply", func() any { return new(PutResponse) }, nil,
			&PutResponse{Context: ctx, Siblings: 1, Acked: map[string]int{"east": 2, "west": 1}, Coordinator: "east-1"}},
		{"status-reply", func() any { return new(StatusResponse) }, nil,
			&StatusResponse{Node: "east-1", Nodes: []NodeStatus{{ID: "east-1", DC: "east", Rack: "r1", Addr: "127.0.0.1:7000", State: "up", RTTms: 0.5, HintsPending: 2, HintBytes: 100}}}},
		{"ring-reply", func() any { return new(RingResponse) }, nil,
			&RingResponse{Token: 42, Replicas: map[string][]string{"east": {"east-1", "east-2"}}, Fallbacks: map[string][]string{"east": {"east-3"}}, Short: map[string]int{"west": 1}}},
		{"client-error", func() any { return new(ClientError) }, nil,
			&ClientError{Code: CodeQuorum, Message: "meridian: quorum not met", Quorum: &consistency.QuorumError{Op: "put", Required: map[string]int{"east": 2}, Acked: map[string]int{"east": 1}}}},
		{"inspect-reply", func() any { return new(InspectResponse) }, nil,
			&InspectResponse{Token: 7, Replicas: []ReplicaState{{Node: "east-1", DC: "east", Values: []string{"v"}, Version: map[string]uint64{"east-1~a": 3}, Dots: []string{"east-1~a:3"}}}}},
		{"repair-progress", func() any { return new(RepairProgress) }, nil,
			&RepairProgress{Pair: "east/west", PairsDone: 1, PairsTotal: 3, RangesDone: 10, RangesTotal: 64, KeysCompared: 1000, KeysFixed: 3, BytesSent: 4096}},
		{"repair-status-reply", func() any { return new(RepairStatusResponse) }, nil,
			&RepairStatusResponse{Pairs: []PairRepairStatus{{Pair: "east/west", LastFullCompleted: 1700000000, PassFraction: 0.25, NextWindow: -1, Schedule: "windows"}}}},
		{"grant", func() any { return new(GrantRequest) }, nil, &GrantRequest{Principal: "alice", Permission: "write", Keyspace: "default"}},
		{"grant-reply", func() any { return new(GrantResponse) }, nil,
			&GrantResponse{Node: "east-1", Changed: true, Members: 5, Reached: 5, Effect: "read, write", Keyspace: "default"}},
		{"grants", func() any { return new(GrantsRequest) }, nil, &GrantsRequest{Principal: "alice"}},
		{"grants-reply", func() any { return new(GrantsResponse) }, nil,
			&GrantsResponse{Node: "east-1", Grants: []Grant{{Principal: "alice", Keyspace: "default", Permissions: []string{"read"}}, {Principal: "ops", Keyspace: "*", Permissions: []string{"admin"}, Superuser: true}}}},
		{"reencrypt", func() any { return new(ReencryptRequest) }, nil, &ReencryptRequest{All: true}},
		{"reencrypt-reply", func() any { return new(ReencryptResponse) }, nil,
			&ReencryptResponse{Nodes: []ReencryptResult{{Node: "east-1", ActiveKey: "k2", Rewritten: 10, Current: 3, ByKey: map[string]int64{"k1": 9, "": 1}}, {Node: "east-2", Error: "unreachable"}}}},
		// The node-to-node reply of the fan-out (node type 73).
		{"reencrypt-result", func() any { return new(ReencryptResult) }, nil,
			&ReencryptResult{Node: "west-1", ActiveKey: "k2", Rewritten: 1, Current: 1, ByKey: map[string]int64{"k1": 1}, Unreadable: 2}},
		{"fence", func() any { return new(FenceRequest) }, func(v any) *ClientError { return v.(*FenceRequest).Validate() },
			&FenceRequest{Region: "west", Millis: 30000}},
		{"fence-reply", func() any { return new(FenceResponse) }, nil,
			&FenceResponse{Node: "east-1", DC: "east", Region: "west", Until: 1700000000000, Peers: []string{"west-1", "west-2"}}},
	}
}

func clientSeeds(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{}
	for i, m := range clientMessages() {
		b, err := codec.Marshal(m.sample)
		if err != nil {
			t.Fatal(err)
		}
		seeds[m.name] = append([]byte{byte(i)}, b...)
	}
	return seeds
}

func TestSeedCorpus(t *testing.T) {
	fuzzseed.Check(t, "FuzzClientMessage", "[]byte", clientSeeds(t))
}

// FuzzClientMessage decodes arbitrary bytes as one message of the client
// protocol (the first byte picks which) as a node or a client does, and
// checks: nothing panics; a request the node's Validate refuses gets a
// *ClientError with a code and a message; whatever decodes re-encodes and
// decodes to the same value, and re-encodes to the same bytes.
func FuzzClientMessage(f *testing.F) {
	msgs := clientMessages()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		m := msgs[int(data[0])%len(msgs)]
		v := m.new()
		if _, ok := v.(message); ok {
			checkDecoding(t, data[1:]) // hand-written and reflecting decoders agree
		}
		if err := codec.Unmarshal(data[1:], v); err != nil {
			return
		}
		if m.validate != nil {
			if cerr := m.validate(v); cerr != nil && (cerr.Code == "" || cerr.Message == "") {
				t.Fatalf("%s: refusal without a code or message: %+v", m.name, cerr)
			}
		}
		b, err := codec.Marshal(v)
		if err != nil {
			t.Fatalf("%s: decoded %+v does not encode: %v", m.name, v, err)
		}
		back := m.new()
		if err := codec.Unmarshal(b, back); err != nil {
			t.Fatalf("%s: re-encoded %x does not decode: %v", m.name, b, err)
		}
		b2, err := codec.Marshal(back)
		if err != nil || string(b2) != string(b) {
			t.Fatalf("%s: encoding not stable: %x then %x (%v)", m.name, b, b2, err)
		}
		// NaN is the one value not equal to itself: with equal bytes, a
		// message holding one is the same message.
		if !reflect.DeepEqual(v, back) && !strings.Contains(fmt.Sprint(v), "NaN") {
			t.Fatalf("%s: round trip changed the message:\n got %+v\nwant %+v", m.name, back, v)
		}
	})
}
