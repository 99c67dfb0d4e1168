package node

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/meridian-kv/meridian/codec"
	"github.com/meridian-kv/meridian/version"
)

// batchMessage is one of the self-coding batch messages.
type batchMessage interface {
	codec.Appender
	codec.Parser
	UnmarshalCBOR([]byte) error
}

// batchKinds return a new message of each self-coding batch type.
var batchKinds = []func() batchMessage{
	func() batchMessage { return &replicaBatch{} },
	func() batchMessage { return &replicaBatchReply{} },
	func() batchMessage { return &digestBatch{} },
	func() batchMessage { return &digestBatchReply{} },
}

// plainBatch returns m as a type without methods, for the reflecting
// encoder.
func plainBatch(m batchMessage) any {
	type (
		rb  replicaBatch
		rbr replicaBatchReply
		db  digestBatch
		dbr digestBatchReply
	)
	switch m := m.(type) {
	case *replicaBatch:
		return (*rb)(m)
	case *replicaBatchReply:
		return (*rbr)(m)
	case *digestBatch:
		return (*db)(m)
	case *digestBatchReply:
		return (*dbr)(m)
	}
	panic("not a batch message")
}

func sampleBatches() []batchMessage {
	obj := version.New().Update(nil, "east-1", version.Write{Value: bytes.Repeat([]byte("v"), 1000), WrittenAt: 42, Trace: make([]byte, 24)})
	two := version.Merge(obj, version.New().Update(nil, "west-2", version.Write{Deleted: true, WrittenAt: -1}))
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	long := strings.Repeat("ü", 300)
	return []batchMessage{
		&replicaBatch{},
		&replicaBatch{Writes: []batchWrite{{Keyspace: "default", Key: []byte("k1"), Object: obj, Traceparent: tp}, {Keyspace: long, Key: []byte{}, Object: two}, {}}},
		&replicaBatch{Writes: []batchWrite{}, Reads: []batchRead{{Keyspace: "default", Key: []byte("k"), Traceparent: tp}, {}}},
		&replicaBatchReply{},
		&replicaBatchReply{Node: "east-2", Writes: []string{"", "store: failed", long}, Reads: []batchObject{{Object: obj}, {Error: "no"}, {Again: true}, {Object: two}}},
		&replicaBatchReply{Writes: []string{}, Reads: []batchObject{}},
		&digestBatch{},
		&digestBatch{Reads: []batchRead{{Keyspace: "default", Key: []byte("user1"), Traceparent: tp}}},
		&digestBatch{Reads: []batchRead{}},
		&digestBatchReply{},
		&digestBatchReply{Node: "east-3", Digests: []batchDigest{{Digest: bytes.Repeat([]byte{7}, 16)}, {Error: "gated"}, {Digest: []byte{}}}},
	}
}

// TestBatchCodecsMatchReflection: AppendCBOR writes the reflecting
// encoder's bytes, and ParseCBOR reads them back as the reflecting decoder
// (through the message's UnmarshalCBOR) does.
func TestBatchCodecsMatchReflection(t *testing.T) {
	for _, m := range sampleBatches() {
		want, err := codec.Marshal(plainBatch(m))
		if err != nil {
			t.Fatal(err)
		}
		if got := m.AppendCBOR(nil); !bytes.Equal(got, want) {
			t.Errorf("%T %+v:\nhand       %x\nreflection %x", m, m, got, want)
			continue
		}
		checkBatchDecoding(t, want)
	}
	// A batch of another message version goes to UnmarshalCBOR, which
	// refuses it as it did.
	b, err := codec.Marshal(plainBatch(&digestBatch{V: msgVersion + 1, Reads: []batchRead{{Key: []byte("k")}}}))
	if err != nil {
		t.Fatal(err)
	}
	var m digestBatch
	if err := codec.Unmarshal(b, &m); err == nil || !strings.Contains(err.Error(), "upgrade this node") {
		t.Errorf("a batch of version %d: %v", msgVersion+1, err)
	}
	checkBatchDecoding(t, b)
}

// checkBatchDecoding decodes data as each batch type, by hand and through
// the reflecting decoder, and fails unless both agree on the error and the
// result, and the result re-encodes to the reflecting encoder's bytes.
func checkBatchDecoding(t *testing.T, data []byte) {
	t.Helper()
	for _, kind := range batchKinds {
		fast, slow := kind(), kind()
		ferr := fast.ParseCBOR(data)
		serr := reflecting(data, slow)
		if (ferr == nil) != (serr == nil) {
			t.Fatalf("%T of %x: hand error %v, reflection error %v", fast, data, ferr, serr)
		}
		if ferr != nil {
			if ferr.Error() != serr.Error() {
				t.Fatalf("%T of %x: hand error %q, reflection error %q", fast, data, ferr, serr)
			}
			continue
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%T of %x:\nhand       %+v\nreflection %+v", fast, data, fast, slow)
		}
		again, err := codec.Marshal(plainBatch(slow))
		if err != nil {
			t.Fatal(err)
		}
		if got := fast.AppendCBOR(nil); !bytes.Equal(got, again) {
			t.Fatalf("%T re-encoded:\nhand       %x\nreflection %x", fast, got, again)
		}
	}
}

// FuzzBatchDecoding: whatever the bytes, the hand-written batch decoders
// agree with the reflecting ones.
func FuzzBatchDecoding(f *testing.F) {
	for _, m := range sampleBatches() {
		f.Add(m.AppendCBOR(nil))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkBatchDecoding(t, data)
	})
}

// BenchmarkBatchCodecs compares the hand-written codecs of a batch of 16
// replica writes (1000-byte values) and its reply with the reflecting
// ones.
func BenchmarkBatchCodecs(b *testing.B) {
	obj := version.New().Update(nil, "east-1", version.Write{Value: bytes.Repeat([]byte("v"), 1000), WrittenAt: 42, Trace: make([]byte, 24)})
	batch := &replicaBatch{}
	for i := range 16 {
		batch.Writes = append(batch.Writes, batchWrite{Keyspace: "default", Key: []byte(strings.Repeat("k", 16) + string(rune('a'+i))), Object: obj,
			Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
	}
	data := batch.AppendCBOR(nil)
	b.Run("encode/hand", func(b *testing.B) {
		for b.Loop() {
			batch.AppendCBOR(nil)
		}
	})
	b.Run("encode/reflection", func(b *testing.B) {
		for b.Loop() {
			if _, err := codec.Marshal(plainBatch(batch)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/hand", func(b *testing.B) {
		for b.Loop() {
			if err := new(replicaBatch).ParseCBOR(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/reflection", func(b *testing.B) {
		for b.Loop() {
			if err := reflecting(data, new(replicaBatch)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
