package wan

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestGoldenFragmentedMessage pins the wire form of a message larger than
// one frame (docs/protocol.md, "Frames"): with 128-byte frames, a 300-byte
// value travels as five type-2 fragments of at most 64 bytes of it, which ReadMessage joins back
// into the envelope. The vector lives with the client protocol's others,
// in api/testdata/golden; MERIDIAN_WRITE_GOLDEN=1 rewrites it.
func TestGoldenFragmentedMessage(t *testing.T) {
	const maxFrame = 128
	env := &Envelope{V: Version, Type: 20, ID: 9, Payload: append([]byte{0x59, 0x01, 0x2c}, bytes.Repeat([]byte("m"), 300)...)}
	got, err := appendMessage(nil, env, maxFrame, DefaultMaxMessage)
	if err != nil {
		t.Fatal(err)
	}
	golden := checkGolden(t, "message-fragmented.bin", got)
	back, err := ReadMessage(bytes.NewReader(golden), maxFrame, DefaultMaxMessage)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, env) {
		t.Fatalf("fragments join to %+v, want %+v", back, env)
	}
	frames := 0
	for r := bytes.NewReader(golden); r.Len() > 0; frames++ {
		if _, err := ReadFrame(r, maxFrame); err != nil {
			t.Fatal(err)
		}
	}
	if frames != 5 {
		t.Fatalf("%d frames, want 5", frames)
	}
}

// TestGoldenReusableStream pins the wire form of a reusable stream
// (docs/protocol.md, "Streams and frames"): what a client writes (the
// type-4 opening, id 7, and its first request, a type-16 request of id 8)
// and what a node writes back (the request's reply, type 20, then the
// type-5 end of its replies, then, once the stream has waited too long for
// the next request, type 6). The vectors live with the client protocol's
// others, in api/testdata/golden; MERIDIAN_WRITE_GOLDEN=1 rewrites them.
func TestGoldenReusableStream(t *testing.T) {
	payload := []byte{0x41, 'k'} // a CBOR byte string
	for _, v := range []struct {
		file string
		envs []*Envelope
	}{
		{"stream-client.bin", []*Envelope{
			{V: Version, Type: TypeStream, ID: 7, Payload: nullPayload},
			{V: Version, Type: 16, ID: 8, Deadline: 1767225600000000000, Payload: payload},
		}},
		{"stream-node.bin", []*Envelope{
			{V: Version, Type: 20, ID: 8, Payload: payload},
			{V: Version, Type: TypeDone, ID: 8, Payload: nullPayload},
			{V: Version, Type: TypeStreamIdle, Payload: nullPayload},
		}},
	} {
		var got []byte
		for _, e := range v.envs {
			var err error
			if got, err = appendFrame(got, e, DefaultMaxFrame); err != nil {
				t.Fatal(err)
			}
		}
		golden := checkGolden(t, v.file, got)
		r := bytes.NewReader(golden)
		for i, want := range v.envs {
			e, err := ReadFrame(r, DefaultMaxFrame)
			if err != nil {
				t.Fatalf("%s frame %d: %v", v.file, i, err)
			}
			if !reflect.DeepEqual(e, want) {
				t.Fatalf("%s frame %d decodes to %+v, want %+v", v.file, i, e, want)
			}
		}
		if r.Len() != 0 {
			t.Fatalf("%s: %d bytes after its frames", v.file, r.Len())
		}
	}
}

// checkGolden compares got with the vector file of api/testdata/golden
// (first writing it, with MERIDIAN_WRITE_GOLDEN=1) and returns the vector.
func checkGolden(t *testing.T, file string, got []byte) []byte {
	t.Helper()
	path := filepath.Join("..", "api", "testdata", "golden", file)
	if os.Getenv("MERIDIAN_WRITE_GOLDEN") != "" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, golden) {
		t.Fatalf("%s changed:\n got %x\nwant %x", file, got, golden)
	}
	return golden
}
