package api

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/meridian-kv/meridian/codec"
)

// message is one of the self-coding messages, with its method-less twin
// for the reflecting codec.
type message interface {
	codec.Appender
	codec.Parser
}

// kinds returns, for each self-coding message type, a new message and a
// new method-less value to decode into (a pointer to the same layout).
var kinds = []func() (message, any){
	func() (message, any) { return &GetRequest{}, &getRequest{} },
	func() (message, any) { return &PutRequest{}, &putRequest{} },
	func() (message, any) { return &GetResponse{}, &getResponse{} },
	func() (message, any) { return &PutResponse{}, &putResponse{} },
}

// slow returns the method-less twin of m, for the reflecting codec.
func slow(m message) any {
	switch m := m.(type) {
	case *GetRequest:
		return (*getRequest)(m)
	case *PutRequest:
		return (*putRequest)(m)
	case *GetResponse:
		return (*getResponse)(m)
	case *PutResponse:
		return (*putResponse)(m)
	}
	panic("not a self-coding message")
}

func sampleMessages() []message {
	long := strings.Repeat("é", 200)
	return []message{
		&GetRequest{},
		&GetRequest{V: 1, Keyspace: "default", Key: []byte("user42"), Consistency: "LOCAL_QUORUM"},
		&GetRequest{V: 255, Keyspace: long, Key: []byte{}, Consistency: "east=2,west=1"},
		&PutRequest{},
		&PutRequest{V: 1, Keyspace: "default", Key: []byte("k"), Value: bytes.Repeat([]byte("v"), 70000), Delete: true,
			Context: "ctx", Consistency: "EACH_QUORUM", Forwarded: true, LocalDC: "west"},
		&PutRequest{Key: []byte{}, Value: []byte{}},
		&GetResponse{},
		&GetResponse{V: 1, Siblings: []Sibling{{Value: []byte("a"), Writer: "east-1:3"}, {Writer: long}, {Value: []byte{}}},
			Context: "c", Deleted: true, Acked: map[string]int{"west": 1, "east": 2, "central": -3, "eu": 1 << 40}},
		&GetResponse{Siblings: []Sibling{}, Acked: map[string]int{}},
		&PutResponse{},
		&PutResponse{V: 1, Context: "c", Siblings: -7, Acked: map[string]int{"east": 3}, Warning: "many siblings", Coordinator: "east-1"},
		&PutResponse{Siblings: 1 << 33, Acked: map[string]int{}},
	}
}

// TestMessageCodecsMatchReflection: AppendCBOR writes the reflecting
// encoder's bytes, and ParseCBOR reads them back as the reflecting decoder
// does.
func TestMessageCodecsMatchReflection(t *testing.T) {
	for _, m := range sampleMessages() {
		want, err := codec.Marshal(slow(m))
		if err != nil {
			t.Fatal(err)
		}
		got := m.AppendCBOR(nil)
		if !bytes.Equal(got, want) {
			t.Errorf("%T %+v:\nhand       %x\nreflection %x", m, m, got, want)
			continue
		}
		checkDecoding(t, want)
	}
}

// checkDecoding decodes data as each message type, by hand and by
// reflection, and fails unless both agree on the error and the result.
func checkDecoding(t *testing.T, data []byte) {
	t.Helper()
	for _, kind := range kinds {
		fast, ref := kind()
		ferr := fast.ParseCBOR(data)
		rerr := codec.Unmarshal(data, ref)
		if (ferr == nil) != (rerr == nil) {
			t.Fatalf("%T of %x: hand error %v, reflection error %v", fast, data, ferr, rerr)
		}
		if ferr != nil {
			continue
		}
		if !reflect.DeepEqual(slow(fast), ref) {
			t.Fatalf("%T of %x:\nhand       %+v\nreflection %+v", fast, data, fast, ref)
		}
		again, err := codec.Marshal(ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := fast.AppendCBOR(nil); !bytes.Equal(got, again) {
			t.Fatalf("%T re-encoded:\nhand       %x\nreflection %x", fast, got, again)
		}
	}
}

// TestMarshalAndUnmarshalUseTheMessagesCodecs: codec.Marshal and
// codec.Unmarshal go through AppendCBOR and ParseCBOR.
func TestMarshalAndUnmarshalUseTheMessagesCodecs(t *testing.T) {
	m := &PutResponse{V: 1, Acked: map[string]int{"east": 2}}
	b, err := codec.Marshal(m)
	if err != nil || !bytes.Equal(b, m.AppendCBOR(nil)) {
		t.Fatalf("Marshal = %x, %v", b, err)
	}
	var got PutResponse
	if err := codec.Unmarshal(b, &got); err != nil || !reflect.DeepEqual(&got, m) {
		t.Fatalf("Unmarshal = %+v, %v", got, err)
	}
	// What the hand-written decoder does not read goes to the reflecting
	// one, which refuses it as before.
	for _, bad := range [][]byte{nil, {0x86}, append(bytes.Clone(b), 0), {0x85, 0, 0xf6, 0x60, 0xf4, 0xa2, 0x61, 'a', 1, 0x61, 'a', 2}} {
		if err := codec.Unmarshal(bad, &got); err == nil {
			t.Errorf("Unmarshal(%x) accepted", bad)
		}
	}
}

// FuzzMessageDecoding: whatever the bytes, the hand-written decoders agree
// with the reflecting ones, and what they decode re-encodes to the
// reflecting encoder's bytes.
func FuzzMessageDecoding(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(m.AppendCBOR(nil))
	}
	f.Add([]byte{0x84, 0x18, 0x01, 0x60, 0xf6, 0x60})                          // a one-byte head of a small V
	f.Add([]byte{0x85, 0, 0xf6, 0x60, 0xf4, 0xa2, 0x61, 'a', 1, 0x61, 'a', 2}) // a key twice
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecoding(t, data)
	})
}

// BenchmarkMessageCodecs compares the hand-written codecs with the
// reflecting ones on a write's request and a read's reply (1000-byte
// values).
func BenchmarkMessageCodecs(b *testing.B) {
	value := bytes.Repeat([]byte("v"), 1000)
	msgs := []message{
		&PutRequest{V: 1, Keyspace: "default", Key: []byte("user000000004242"), Value: value, Context: "g2VlYXN0LTEY", Consistency: "LOCAL_QUORUM"},
		&GetResponse{V: 1, Siblings: []Sibling{{Value: value, Writer: "east-1:42"}}, Context: "g2VlYXN0LTEY", Acked: map[string]int{"east": 2}},
	}
	for _, m := range msgs {
		data := m.AppendCBOR(nil)
		name := strings.TrimPrefix(reflect.TypeOf(m).String(), "*api.")
		b.Run(name+"/decode/hand", func(b *testing.B) {
			for b.Loop() {
				fresh, _ := kindOf(m)
				if err := fresh.ParseCBOR(data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/decode/reflection", func(b *testing.B) {
			for b.Loop() {
				_, ref := kindOf(m)
				if err := codec.Unmarshal(data, ref); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/encode/hand", func(b *testing.B) {
			for b.Loop() {
				m.AppendCBOR(nil)
			}
		})
		b.Run(name+"/encode/reflection", func(b *testing.B) {
			for b.Loop() {
				if _, err := codec.Marshal(slow(m)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// kindOf returns a new message of m's type and its method-less twin.
func kindOf(m message) (message, any) {
	for _, kind := range kinds {
		fresh, ref := kind()
		if reflect.TypeOf(fresh) == reflect.TypeOf(m) {
			return fresh, ref
		}
	}
	panic("not a self-coding message")
}
