package wan

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/meridian-kv/meridian/codec"
)

func sampleEnvelope(t testing.TB) *Envelope {
	t.Helper()
	e, err := NewEnvelope(typeEcho, &echoMsg{N: 42, S: "payload"})
	if err != nil {
		t.Fatal(err)
	}
	e.ID = 7
	e.Deadline = time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano()
	e.Trace = TraceContext{Traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Tracestate: "m=1"}
	return e
}

func frameBytes(t testing.TB, e *Envelope) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteFrame(&buf, e); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rawFrame wraps body in a length prefix without checking it.
func rawFrame(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

func TestFrameRoundTrip(t *testing.T) {
	e := sampleEnvelope(t)
	b := frameBytes(t, e)
	if got := binary.BigEndian.Uint32(b); int(got) != len(b)-4 {
		t.Fatalf("length prefix %d, body is %d bytes", got, len(b)-4)
	}
	// Two frames back to back, then a clean end.
	r := bytes.NewReader(append(append([]byte(nil), b...), b...))
	for i := range 2 {
		got, err := ReadFrame(r, 0)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("frame %d: got %+v, want %+v", i, got, e)
		}
		var m echoMsg
		if err := got.Decode(&m); err != nil || m.N != 42 || m.S != "payload" {
			t.Fatalf("payload %+v, %v", m, err)
		}
	}
	if _, err := ReadFrame(r, 0); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

func TestWriteFrameDefaultsVersion(t *testing.T) {
	e := &Envelope{Type: typeEcho, Payload: codec.RawMessage{0xf6}}
	got, err := ReadFrame(bytes.NewReader(frameBytes(t, e)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.V != Version || e.V != 0 {
		t.Fatalf("written V %d (want %d), caller's V %d (want 0)", got.V, Version, e.V)
	}
}

// stingyReader hands out the header and fails any attempt to read more.
type stingyReader struct {
	hdr   []byte
	reads int
}

func (s *stingyReader) Read(p []byte) (int, error) {
	if len(s.hdr) == 0 {
		s.reads++
		return 0, errors.New("body must not be read")
	}
	n := copy(p, s.hdr)
	s.hdr = s.hdr[n:]
	return n, nil
}

func TestReadFrameOversizeRefusedBeforeReading(t *testing.T) {
	for _, n := range []uint32{DefaultMaxFrame + 1, 1 << 31, 1<<32 - 1} {
		r := &stingyReader{hdr: binary.BigEndian.AppendUint32(nil, n)}
		_, err := ReadFrame(r, 0)
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("length %d: %v, want ErrFrameTooLarge", n, err)
		}
		if r.reads != 0 {
			t.Fatalf("length %d: body was read", n)
		}
	}
	// Nothing of the declared size is allocated.
	hdr := binary.BigEndian.AppendUint32(nil, 1<<31)
	allocs := testing.AllocsPerRun(100, func() {
		ReadFrame(&stingyReader{hdr: hdr}, 1024)
	})
	if allocs > 8 {
		t.Fatalf("%v allocations refusing an oversized frame", allocs)
	}
	// A custom limit applies.
	b := frameBytes(t, sampleEnvelope(t))
	if _, err := ReadFrame(bytes.NewReader(b), len(b)-5); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("limit one byte short: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader(b), len(b)-4); err != nil {
		t.Fatalf("limit exact: %v", err)
	}
}

func TestAppendFrameRefusesOversize(t *testing.T) {
	e := sampleEnvelope(t)
	if _, err := appendFrame(nil, e, 10); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("got %v, want ErrFrameTooLarge", err)
	}
}

func TestReadFrameMalformed(t *testing.T) {
	good := frameBytes(t, sampleEnvelope(t))
	body := good[4:]
	v2 := *sampleEnvelope(t)
	v2.V = 2
	v2Body, err := codec.Marshal(&v2)
	if err != nil {
		t.Fatal(err)
	}
	deep := bytes.Repeat([]byte{0x81}, 100) // 100 nested one-element arrays
	cases := map[string][]byte{
		"not cbor":          rawFrame([]byte{0xff, 0xff, 0xff}),
		"not an array":      rawFrame([]byte{0x01}),
		"short array":       rawFrame([]byte{0x82, 0x01, 0x10}),
		"trailing bytes":    rawFrame(append(append([]byte(nil), body...), 0x00)),
		"truncated body":    good[:len(good)-3],
		"empty frame":       rawFrame(nil),
		"version 2":         rawFrame(v2Body),
		"too deeply nested": rawFrame(append(append([]byte{0x86, 0x01, 0x10, 0x01, 0x00, 0x82, 0x60, 0x60}, deep...), 0x01)),
		"indefinite length": rawFrame([]byte{0x9f, 0x01, 0x10, 0x01, 0x00, 0x82, 0x60, 0x60, 0xf6, 0xff}),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ReadFrame(bytes.NewReader(in), 0)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestReadFrameShortHeader(t *testing.T) {
	if _, err := ReadFrame(bytes.NewReader(nil), 0); err != io.EOF {
		t.Fatalf("empty input: %v, want io.EOF", err)
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 0}), 0); err != io.ErrUnexpectedEOF {
		t.Fatalf("half a header: %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestDecodeMalformedPayload(t *testing.T) {
	e := &Envelope{V: 1, Type: typeEcho, Payload: codec.RawMessage{0x01}}
	var m echoMsg
	if err := e.Decode(&m); !errors.Is(err, ErrMalformed) {
		t.Fatalf("got %v, want ErrMalformed", err)
	}
	if err := (&Envelope{}).Decode(&m); !errors.Is(err, ErrMalformed) {
		t.Fatalf("empty payload: got %v, want ErrMalformed", err)
	}
}

func TestRemoteErrorMessage(t *testing.T) {
	err := error(&RemoteError{Code: "nope", Message: "not today"})
	if !strings.Contains(err.Error(), "nope") || !strings.Contains(err.Error(), "not today") {
		t.Fatal(err)
	}
}

func FuzzReadFrame(f *testing.F) {
	good := frameBytes(f, sampleEnvelope(f))
	f.Add(good)
	f.Add(frameBytes(f, &Envelope{V: 1, Type: TypeError, Payload: errorEnvelope("c", "m").Payload}))
	f.Add(frameBytes(f, &Envelope{V: 1, Payload: codec.RawMessage{0xf6}}))
	f.Add(good[:len(good)-1])
	f.Add(append(append([]byte(nil), good...), good...))
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x00})
	f.Add(rawFrame([]byte{0x86, 0x01, 0x10, 0x01, 0x00, 0x82, 0x60, 0x60, 0xbf}))
	f.Add(rawFrame([]byte{0x86, 0x01, 0x10, 0x01, 0x00, 0x82, 0x60, 0x60, 0x5a, 0xff, 0xff, 0xff, 0xff}))
	// A tag inside the payload (found by this fuzzer): decoded, then refused on re-encode.
	f.Add(rawFrame([]byte{0x86, 0x01, 0x01, 0x00, 0x00, 0x82, 0x60, 0x60, 0x81, 0xc0, 0x20}))
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 1 << 16
		e, err := ReadFrame(bytes.NewReader(data), max)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrFrameTooLarge) && err != io.EOF && err != io.ErrUnexpectedEOF {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		// A valid envelope re-encodes and reads back identically.
		var buf bytes.Buffer
		if err := WriteFrame(&buf, e); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		first := append([]byte(nil), buf.Bytes()...)
		e2, err := ReadFrame(&buf, max)
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("round trip changed the envelope:\n%+v\n%+v", e, e2)
		}
		if again := frameBytes(t, e2); !bytes.Equal(first, again) {
			t.Fatalf("encoding is not stable")
		}
	})
}

// meteredReader serves a byte stream in pieces of at most step bytes and
// then ends with end (io.EOF if nil), recording the buffers it is asked to
// fill.
type meteredReader struct {
	data    []byte
	step    int
	end     error
	read    int // bytes handed out so far
	largest int // largest buffer asked for
	check   func(read, asked int)
}

func (m *meteredReader) Read(p []byte) (int, error) {
	m.largest = max(m.largest, len(p))
	if m.check != nil {
		m.check(m.read, len(p))
	}
	if len(m.data) == 0 {
		if m.end == nil {
			return 0, io.EOF
		}
		return 0, m.end
	}
	n := copy(p[:min(len(p), m.step)], m.data)
	m.data = m.data[n:]
	m.read += n
	return n, nil
}

// A peer that declares a large frame and sends nothing more must not make
// the reader allocate the declared size (issue 9: 1,000 streams of 4-byte
// headers took a node to 3.7 GB).
func TestReadFrameDoesNotAllocateTheDeclaredLength(t *testing.T) {
	hdr := binary.BigEndian.AppendUint32(nil, DefaultMaxFrame)
	reset := errors.New("stream reset by peer")
	for _, end := range []error{nil, reset} {
		r := &meteredReader{data: hdr, step: 4, end: end}
		_, err := ReadFrame(r, 0)
		switch {
		case end == nil && (!errors.Is(err, ErrMalformed) || !errors.Is(err, io.ErrUnexpectedEOF)):
			t.Fatalf("header then EOF: %v, want ErrMalformed (truncated)", err)
		case end != nil && err != reset:
			t.Fatalf("header then a reset: %v, want the reader's error", err)
		}
		if r.largest > firstChunk {
			t.Fatalf("asked the reader to fill %d bytes after a bare header; at most %d may be allocated before bytes arrive", r.largest, firstChunk)
		}
	}
	// The same, measured: 100 bare headers declaring 4 MiB each.
	const runs = 100
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		ReadFrame(&meteredReader{data: hdr, step: 4}, 0)
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > runs*64<<10 {
		t.Fatalf("%d bare 4 MiB headers allocated %d bytes (%d per header)", runs, d, d/runs)
	}
}

// The body buffer grows as bytes arrive and stays within twice what
// arrived; a frame cut anywhere is ErrMalformed.
func TestReadFrameGrowsWithWhatArrives(t *testing.T) {
	frame := frameBytes(t, bigEcho(t, 300_000))
	for _, step := range []int{1000, 4096, 65536} {
		r := &meteredReader{data: frame, step: step}
		r.check = func(read, asked int) {
			body := read - frameHeaderLen
			if body >= 0 && body+asked > max(firstChunk, 2*body) {
				t.Fatalf("step %d: a %d-byte buffer after %d body bytes arrived", step, body+asked, body)
			}
		}
		e, err := ReadFrame(r, 0)
		var m echoMsg
		if err != nil || e.Decode(&m) != nil || len(m.S) != 300_000 {
			t.Fatalf("step %d: %v", step, err)
		}
	}
	for _, cut := range []int{5, firstChunk + 3, firstChunk + 4, 2*firstChunk + 4, 100_000, len(frame) - 1} {
		_, err := ReadFrame(bytes.NewReader(frame[:cut]), 0)
		if !errors.Is(err, ErrMalformed) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("frame cut at %d of %d bytes: %v, want ErrMalformed", cut, len(frame), err)
		}
	}
}

// BenchmarkReadLargeFrame measures reading a frame near the 4 MiB limit,
// whose buffer grows as its bytes arrive.
func BenchmarkReadLargeFrame(b *testing.B) {
	frame := frameBytes(b, bigEcho(b, DefaultMaxFrame-1024))
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadFrame(bytes.NewReader(frame), 0); err != nil {
			b.Fatal(err)
		}
	}
}
