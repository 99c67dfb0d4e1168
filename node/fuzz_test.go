package node

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meridian-kv/meridian/codec"
	"github.com/meridian-kv/meridian/grants"
	"github.com/meridian-kv/meridian/internal/fuzzseed"
	"github.com/meridian-kv/meridian/repair"
	"github.com/meridian-kv/meridian/version"
)

// nodeMessage is one kind of node-to-node message: a request a node's
// handler decodes (with validate) or a reply a node decodes.
type nodeMessage struct {
	name   string
	new    func() any
	sample any
}

// nodeMessages lists every node-to-node message; FuzzNodeMessage picks
// one by the first byte of its input, so the order is part of the corpus:
// add new kinds at the end.
func nodeMessages() []nodeMessage {
	obj := version.New().Update(nil, "east-1~a", version.Write{Value: []byte("v"), WrittenAt: 1})
	obj2 := obj.Update(nil, "west-1~b", version.Write{Value: []byte("w"), WrittenAt: 2})
	rng := repair.Range{From: 1 << 60, To: 1 << 62}
	progress, err := repair.EncodeProgress(repair.Progress{Pair: [2]string{"east", "west"}, Keyspace: "default", Segments: 64,
		PassStarted: time.Unix(1700000000, 0), Done: []repair.Range{{From: 0, To: 1 << 58}}})
	if err != nil {
		panic(err)
	}
	return []nodeMessage{
		{"replica-write", func() any { return new(replicaWrite) }, &replicaWrite{Keyspace: "default", Key: []byte("k"), Object: obj2}},
		{"relay-write", func() any { return new(relayWrite) }, &relayWrite{Keyspace: "default", Key: []byte("k"), Object: obj, Targets: []string{"west-1", "west-2"}, Fallbacks: []string{"west-3"}}},
		{"replica-ack", func() any { return new(replicaAck) }, &replicaAck{Node: "west-1", Error: "node: unknown keyspace", Hinted: true}},
		{"hint-write", func() any { return new(hintWrite) }, &hintWrite{Target: "east-2", Keyspace: "default", Key: []byte("k"), Object: obj}},
		{"replica-read", func() any { return new(replicaRead) }, &replicaRead{Keyspace: "default", Key: []byte("k"), Inspect: true}},
		{"relay-read", func() any { return new(relayRead) }, &relayRead{Keyspace: "default", Key: []byte("k"), Targets: []string{"west-1"}}},
		{"replica-object", func() any { return new(replicaObject) }, &replicaObject{Node: "east-1", Object: obj2}},
		{"ping", func() any { return new(ping) }, &ping{Node: "east-1", HintCount: 3, HintBytes: 300, ReadGated: true, Incarnation: "a1b2", Known: []string{"c3d4"}}},
		{"hint-deliver", func() any { return new(hintDeliver) }, &hintDeliver{Keyspace: "default", Items: []hintItem{{Key: []byte("k"), Object: obj}, {Key: []byte("l"), Object: obj2}}}},
		{"repair-level", func() any { return new(repairLevel) }, &repairLevel{Keyspace: "default", Range: rng, Depth: 8, Peer: "west-1", Level: 3, Indexes: []int{0, 5, 7}}},
		{"repair-hashes", func() any { return new(repairHashes) }, &repairHashes{Hashes: [][]byte{make([]byte, 32), {1, 2, 3}}}},
		{"repair-done", func() any { return new(repairDone) }, &repairDone{Keyspace: "default", Range: rng, Depth: 8, Peer: "west-1"}},
		{"repair-push", func() any { return new(repairPush) }, &repairPush{Keyspace: "default", Objects: []keyObject{{Key: []byte("k"), Object: obj2}}}},
		{"repair-run", func() any { return new(repairRun) }, &repairRun{Keyspace: "default", Range: rng, Peer: "west-1", BytesPerSecond: 1 << 20}},
		{"repair-stats", func() any { return new(repairStats) }, &repairStats{Stats: repair.RangeStats{KeysCompared: 10, KeysFixed: 2, BytesSent: 999}}},
		{"repair-compare", func() any { return new(repairCompare) }, &repairCompare{Keyspace: "default", Range: rng, Depth: 4, Peer: "west-1", Leaves: []int{1, 2},
			Digests: []repair.KeyDigest{{Key: []byte("k"), Hash: repair.KeyHash([]byte("k"), obj)}}, BytesPerSecond: 4096}},
		{"repair-diff-chunk", func() any { return new(repairDiffChunk) }, &repairDiffChunk{Objects: []keyObject{{Key: []byte("k"), Object: obj}}, Want: [][]byte{[]byte("l")}, Last: true, Oversize: [][]byte{[]byte("big")}}},
		{"repair-progress-reply", func() any { return new(repairProgressReply) }, &repairProgressReply{Progress: [][]byte{progress}}},
		{"grant-set", func() any { return new(grantSet) }, &grantSet{Digest: []byte{1, 2, 3}, Entries: []grants.Entry{
			{Principal: "alice", Keyspace: "default", Permission: grants.Read, Granted: true, Stamp: grants.Stamp{Wall: 1, Writer: "east-1"}}}}},
		{"replica-batch", func() any { return new(replicaBatch) }, &replicaBatch{
			Writes: []batchWrite{{Keyspace: "default", Key: []byte("k"), Object: obj2, Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},
			Reads:  []batchRead{{Keyspace: "default", Key: []byte("l")}}}},
		{"replica-batch-reply", func() any { return new(replicaBatchReply) }, &replicaBatchReply{Node: "east-2", Writes: []string{"", "node: unknown keyspace"},
			Reads: []batchObject{{Object: obj}, {Error: "read gated"}, {Again: true}}}},
		{"digest-batch", func() any { return new(digestBatch) }, &digestBatch{
			Reads: []batchRead{{Keyspace: "default", Key: []byte("k"), Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, {Keyspace: "default", Key: []byte("l")}}}},
		{"digest-batch-reply", func() any { return new(digestBatchReply) }, &digestBatchReply{Node: "east-2",
			Digests: []batchDigest{{Digest: digestOf([]byte("k"), obj)}, {Error: "read gated"}}}},
		{"replica-digest", func() any { return new(replicaDigest) }, &replicaDigest{Node: "west-2", Digest: digestOf([]byte("k"), obj2)}},
	}
}

func digestOf(key []byte, obj *version.Object) []byte {
	h := repair.KeyHash(key, obj)
	return h[:]
}

func nodeSeeds(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{}
	for i, m := range nodeMessages() {
		b, err := codec.Marshal(m.sample)
		if err != nil {
			t.Fatal(err)
		}
		seeds[m.name] = append([]byte{byte(i)}, b...)
	}
	return seeds
}

func TestSeedCorpus(t *testing.T) {
	fuzzseed.Check(t, "FuzzNodeMessage", "[]byte", nodeSeeds(t))
}

// The samples are valid: validate accepts every real request.
func TestNodeMessageSamplesValidate(t *testing.T) {
	for _, m := range nodeMessages() {
		if r, ok := m.sample.(nodeRequest); ok {
			if err := r.validate(); err != nil {
				t.Errorf("%s: %v", m.name, err)
			}
		}
	}
}

// FuzzNodeMessage decodes arbitrary bytes as one node-to-node message (the
// first byte picks which) as the receiving node does, and checks: nothing
// panics; a request's validate returns an error or nil; every object it
// accepts is valid; whatever decodes re-encodes and decodes to the same
// value, re-encoding to the same bytes; and the batches' hand-written
// decoders agree with the reflecting ones (checkBatchDecoding).
func FuzzNodeMessage(f *testing.F) {
	msgs := nodeMessages()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		m := msgs[int(data[0])%len(msgs)]
		v := m.new()
		if _, ok := v.(batchMessage); ok {
			checkBatchDecoding(t, data[1:]) // hand-written and reflecting decoders agree
		}
		if err := codec.Unmarshal(data[1:], v); err != nil {
			return
		}
		if r, ok := v.(nodeRequest); ok && r.validate() == nil {
			for _, o := range objectsOf(v) {
				if err := o.Validate(); err != nil {
					t.Fatalf("%s: accepted an invalid object: %v", m.name, err)
				}
			}
		}
		switch r := v.(type) {
		case *replicaObject:
			_ = r.Object.Validate()
		case *replicaBatchReply:
			for _, o := range r.Reads {
				_ = o.Object.Validate()
			}
		case *repairDiffChunk:
			for _, ko := range r.Objects {
				_ = ko.Object.Validate()
			}
		case *repairProgressReply:
			for _, b := range r.Progress {
				if p, err := repair.DecodeProgress(b); err == nil {
					if _, err := repair.EncodeProgress(p); err != nil {
						t.Fatalf("decoded progress does not encode: %v", err)
					}
				}
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
		if !reflect.DeepEqual(v, back) && !strings.Contains(fmt.Sprint(v), "NaN") {
			t.Fatalf("%s: round trip changed the message:\n got %+v\nwant %+v", m.name, back, v)
		}
	})
}

// objectsOf returns the objects a request carries.
func objectsOf(v any) []*version.Object {
	switch m := v.(type) {
	case *replicaWrite:
		return []*version.Object{m.Object}
	case *relayWrite:
		return []*version.Object{m.Object}
	case *hintWrite:
		return []*version.Object{m.Object}
	case *hintDeliver:
		var out []*version.Object
		for _, it := range m.Items {
			out = append(out, it.Object)
		}
		return out
	case *repairPush:
		var out []*version.Object
		for _, ko := range m.Objects {
			out = append(out, ko.Object)
		}
		return out
	case *replicaBatch:
		var out []*version.Object
		for _, w := range m.Writes {
			out = append(out, w.Object)
		}
		return out
	}
	return nil
}
