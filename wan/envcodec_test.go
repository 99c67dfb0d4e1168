package wan

import (
	"bytes"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/meridian-kv/meridian/codec"
)

// envelopeSamples covers every width of every integer field, negative
// deadlines, empty, long and non-ASCII trace strings, and payloads from
// null to nested maps.
func envelopeSamples() []*Envelope {
	payloads := []codec.RawMessage{nil, {0xf6}, {0x00}, {0x60}, {0xa1, 0x61, 0x6b, 0x82, 0x01, 0x20}}
	big, _ := codec.Marshal(map[string]any{"v": bytes.Repeat([]byte{7}, 70000), "n": []any{1, "x", -5}})
	payloads = append(payloads, big)
	ints := []uint64{0, 1, 23, 24, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxUint64}
	deadlines := []int64{0, 1, -1, -24, -25, -256, -257, math.MaxInt64, math.MinInt64, 1_733_000_000_000_000_000}
	traces := []TraceContext{{}, {Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", Tracestate: "k=v"}, {Traceparent: strings.Repeat("é", 300)}}
	r := rand.New(rand.NewPCG(1, 2))
	var out []*Envelope
	for i := range 400 {
		out = append(out, &Envelope{
			V:        []uint8{0, 1, 2, 255}[i%4],
			Type:     MsgType(ints[r.IntN(7)] & math.MaxUint16),
			ID:       ints[r.IntN(len(ints))],
			Deadline: deadlines[r.IntN(len(deadlines))],
			Trace:    traces[r.IntN(len(traces))],
			Payload:  payloads[r.IntN(len(payloads))],
		})
	}
	return out
}

// TestEnvelopeCodecMatchesReflection: the hand-written envelope encoding
// is byte for byte what codec.Marshal writes, and parseEnvelope reads
// back what codec.Unmarshal reads.
func TestEnvelopeCodecMatchesReflection(t *testing.T) {
	for _, e := range envelopeSamples() {
		c := *e
		if c.V == 0 {
			c.V = Version
		}
		want, err := codec.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		got := appendEnvelope(nil, e)
		if !bytes.Equal(got, want) {
			t.Fatalf("envelope %+v:\nhand   %x\ncodec  %x", c, got[:min(len(got), 64)], want[:min(len(want), 64)])
		}
		var ref Envelope
		if err := codec.Unmarshal(want, &ref); err != nil {
			t.Fatal(err)
		}
		// A null payload (written for an empty one, and the payload of
		// the control envelopes) is parsed by hand too: TypeDone follows
		// every reply stream.
		parsed, ok := parseEnvelope(want)
		if !ok {
			t.Fatalf("parseEnvelope refused %+v", c)
		}
		if !reflect.DeepEqual(parsed, &ref) {
			t.Fatalf("parseEnvelope read\n%+v\ncodec read\n%+v", parsed, &ref)
		}
	}
}

// FuzzParseEnvelope: whatever parseEnvelope accepts, codec.Unmarshal
// accepts too and reads the same envelope from.
func FuzzParseEnvelope(f *testing.F) {
	for _, e := range envelopeSamples()[:40] {
		f.Add(appendEnvelope(nil, e))
	}
	f.Add(appendEnvelope(nil, &Envelope{V: Version, Type: TypeDone, ID: 9, Payload: nullPayload}))
	f.Add([]byte{0x86, 0x01, 0x10, 0x01, 0x00, 0x82, 0x60, 0x60, 0xbf})
	f.Add([]byte{0x86, 0x01, 0x01, 0x00, 0x00, 0x82, 0x60, 0x60, 0x81, 0xc0, 0x20})
	f.Add([]byte{0x86, 0x19, 0x01, 0x00, 0x01, 0x00, 0x00, 0x82, 0x61, 0xff, 0x60, 0x00})
	f.Add([]byte{0x86, 0x01, 0x01, 0x00, 0x3b, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x82, 0x60, 0x60, 0x00})
	f.Fuzz(func(t *testing.T, body []byte) {
		parsed, ok := parseEnvelope(body)
		if !ok {
			return
		}
		var ref Envelope
		if err := codec.Unmarshal(body, &ref); err != nil {
			t.Fatalf("parseEnvelope accepted %x, codec refuses it: %v", body, err)
		}
		if !reflect.DeepEqual(parsed, &ref) {
			t.Fatalf("parseEnvelope read\n%+v\ncodec read\n%+v", parsed, &ref)
		}
	})
}
