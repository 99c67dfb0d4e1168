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
	path := filepath.Join("..", "api", "testdata", "golden", "message-fragmented.bin")
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
		t.Fatalf("fragmented message changed:\n got %x\nwant %x", got, golden)
	}
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
