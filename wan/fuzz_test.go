package wan

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/meridian-kv/meridian/codec"
	"github.com/meridian-kv/meridian/internal/fuzzseed"
)

// wanSeeds are real frames and messages: requests with deadlines and trace
// context, an error reply, a ping, and a message in fragments.
func wanSeeds(t testing.TB) (frames, messages, payloads map[string][]byte) {
	frames = map[string][]byte{
		"request":    frameBytes(t, sampleEnvelope(t)),
		"error":      frameBytes(t, errorEnvelope(CodeOverloaded, "request rate limit")),
		"ping":       frameBytes(t, pingEnvelope),
		"fragment":   fragFrame(t, 9, 3000, bytes.Repeat([]byte{'x'}, 400)),
		"two-frames": append(frameBytes(t, sampleEnvelope(t)), frameBytes(t, pingEnvelope)...),
	}
	whole, err := appendMessage(nil, bigEcho(t, 3000), 512, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	messages = map[string][]byte{
		"one-frame":  frameBytes(t, sampleEnvelope(t)),
		"fragmented": whole,
		"truncated":  whole[:len(whole)/2],
	}
	payloads = map[string][]byte{}
	for name, e := range map[string]*Envelope{"error": errorEnvelope(CodeBadRequest, "malformed"), "echo": sampleEnvelope(t)} {
		payloads[name] = append([]byte{0}, e.Payload...)
	}
	frag, err := codec.Marshal(&fragment{Total: 3000, Data: []byte("piece")})
	if err != nil {
		t.Fatal(err)
	}
	payloads["fragment"] = append([]byte{1}, frag...)
	return frames, messages, payloads
}

func TestSeedCorpus(t *testing.T) {
	frames, messages, payloads := wanSeeds(t)
	fuzzseed.Check(t, "FuzzReadFrame", "[]byte", frames)
	fuzzseed.Check(t, "FuzzReadMessage", "[]byte", messages)
	fuzzseed.Check(t, "FuzzDecodePayload", "[]byte", payloads)
}

// FuzzDecodePayload decodes arbitrary bytes as the payloads the transport
// itself reads from a peer (the first byte picks which): an error reply's
// ErrorPayload and a message fragment. Nothing panics; a refusal wraps
// ErrMalformed; what is accepted re-encodes to a payload that decodes to
// the same value and encodes to the same bytes.
func FuzzDecodePayload(f *testing.F) {
	kinds := []func() any{func() any { return new(ErrorPayload) }, func() any { return new(fragment) }}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		newV := kinds[int(data[0])%len(kinds)]
		e := &Envelope{V: Version, Type: TypeError, Payload: data[1:]}
		v := newV()
		if err := e.Decode(v); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		re, err := NewEnvelope(TypeError, v)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", v, err)
		}
		back := newV()
		if err := re.Decode(back); err != nil {
			t.Fatalf("re-encoded %x does not decode: %v", re.Payload, err)
		}
		if !reflect.DeepEqual(v, back) {
			t.Fatalf("round trip changed the payload: %+v, then %+v", v, back)
		}
		if again, _ := NewEnvelope(TypeError, back); !bytes.Equal(again.Payload, re.Payload) {
			t.Fatalf("encoding not stable: %x then %x", re.Payload, again.Payload)
		}
	})
}
