package wan

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/meridian-kv/meridian/codec"
)

func bigEcho(t testing.TB, size int) *Envelope {
	t.Helper()
	e, err := NewEnvelope(typeEcho, &echoMsg{N: 1, S: strings.Repeat("x", size)})
	if err != nil {
		t.Fatal(err)
	}
	e.ID = 7
	return e
}

func TestMessageLargerThanAFrameTravelsInFragments(t *testing.T) {
	e := bigEcho(t, 10_000)
	b, err := appendMessage(nil, e, 1024, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(b)
	frames := 0
	for r.Len() > 0 {
		f, err := ReadFrame(r, 1024)
		if err != nil {
			t.Fatalf("frame %d: %v", frames, err)
		}
		if f.Type != TypeFragment {
			t.Fatalf("frame %d has type %d, want fragments", frames, f.Type)
		}
		frames++
	}
	if frames < 10 {
		t.Fatalf("%d frames for a 10 kB message with 1 KiB frames", frames)
	}
	got, err := ReadMessage(bytes.NewReader(b), 1024, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var m echoMsg
	if got.Type != typeEcho || got.ID != 7 || got.Decode(&m) != nil || len(m.S) != 10_000 {
		t.Fatalf("reassembled %+v", got)
	}
	// A message that fits one frame is one ordinary frame.
	small := bigEcho(t, 10)
	b, err = appendMessage(nil, small, 1024, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := ReadFrame(bytes.NewReader(b), 1024); err != nil || f.Type != typeEcho {
		t.Fatalf("small message: %+v, %v", f, err)
	}
	// Past the message limit nothing is written.
	if b, err := appendMessage([]byte("keep"), e, 1024, 5000); !errors.Is(err, ErrFrameTooLarge) || string(b) != "keep" {
		t.Fatalf("10 kB message with a 5000-byte limit: %q, %v", b, err)
	}
}

func fragFrame(t testing.TB, id, total uint64, data []byte) []byte {
	t.Helper()
	p, err := codec.Marshal(&fragment{Total: total, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	b, err := appendFrame(nil, &Envelope{V: Version, Type: TypeFragment, ID: id, Payload: p}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadMessageRefusesBadFragmentRuns(t *testing.T) {
	whole, err := appendMessage(nil, bigEcho(t, 3000), 1024, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	other, err := appendFrame(nil, bigEcho(t, 10), 1024)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		b    []byte
		want error
	}{
		// A huge declared length is refused before anything is allocated.
		"declared too large": {fragFrame(t, 1, 1<<40, []byte{1}), ErrFrameTooLarge},
		"truncated":          {whole[:len(whole)-1500], ErrMalformed},
		"empty piece":        {fragFrame(t, 1, 10, nil), ErrMalformed},
		"longer than declared": {append(fragFrame(t, 1, 4, []byte{1, 2, 3}), fragFrame(t, 1, 4, []byte{4, 5})...),
			ErrMalformed},
		"total changes":   {append(fragFrame(t, 1, 4, []byte{1, 2}), fragFrame(t, 1, 5, []byte{3, 4})...), ErrMalformed},
		"id changes":      {append(fragFrame(t, 1, 4, []byte{1, 2}), fragFrame(t, 2, 4, []byte{3, 4})...), ErrMalformed},
		"frame in a run":  {append(fragFrame(t, 1, 4, []byte{1, 2}), other...), ErrMalformed},
		"not an envelope": {fragFrame(t, 1, 3, []byte{1, 2, 3}), ErrMalformed},
	}
	for name, c := range cases {
		_, err := ReadMessage(bytes.NewReader(c.b), 1024, 1<<20)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if _, err := ReadMessage(bytes.NewReader(nil), 1024, 1<<20); err != io.EOF {
		t.Errorf("empty stream: %v, want EOF", err)
	}
}

// A request and a reply far larger than a frame cross a real QUIC
// connection in pieces; one past the message limit fails at the sender,
// as a local error, and the handler can tell its caller.
func TestMessagesLargerThanAFrameOverQUIC(t *testing.T) {
	big := HandlerFunc(func(ctx context.Context, from Identity, req *Envelope, reply Replier) {
		var m echoMsg
		if err := req.Decode(&m); err != nil {
			reply.SendError(CodeBadRequest, err.Error())
			return
		}
		e, _ := NewEnvelope(typeReply, &echoMsg{N: m.N, S: strings.Repeat("r", m.N)})
		if err := reply.Send(e); err != nil {
			reply.SendError("too_large", err.Error())
		}
	})
	srv, cli, _ := pair(t, big, func(c *Config) { c.MaxFrame = 4 << 10; c.MaxMessage = 1 << 20 })
	ctx := testCtx(t)
	call := func(reqSize, replySize int) (int, error) {
		req, err := NewEnvelope(typeEcho, &echoMsg{N: replySize, S: strings.Repeat("q", reqSize)})
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		err = cli.Call(ctx, srv.Addr().String(), "node-1", req, func(e *Envelope) error {
			var m echoMsg
			if err := e.Decode(&m); err != nil {
				return err
			}
			got = len(m.S)
			return nil
		})
		return got, err
	}
	if got, err := call(500_000, 700_000); err != nil || got != 700_000 {
		t.Fatalf("500 kB request, 700 kB reply: got %d bytes, %v", got, err)
	}
	if _, err := call(2<<20, 10); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("2 MiB request with a 1 MiB message limit: %v, want ErrFrameTooLarge", err)
	}
	var re *RemoteError
	if _, err := call(10, 2<<20); !errors.As(err, &re) || !strings.Contains(re.Message, "message limit") {
		t.Fatalf("2 MiB reply with a 1 MiB message limit: %v, want the handler's error", err)
	}
	// The connection still serves.
	if got, err := call(10, 10); err != nil || got != 10 {
		t.Fatalf("after the refusals: %d, %v", got, err)
	}
}

func FuzzReadMessage(f *testing.F) {
	whole, err := appendMessage(nil, bigEcho(f, 3000), 512, 1<<16)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(whole)
	f.Add(whole[:len(whole)/2])
	f.Add(fragFrame(f, 1, 1<<40, []byte{1}))
	f.Add(append(fragFrame(f, 1, 4, []byte{1, 2}), fragFrame(f, 1, 4, []byte{3, 4})...))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ReadMessage(bytes.NewReader(b), 512, 1<<16)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrFrameTooLarge) && err != io.EOF && err != io.ErrUnexpectedEOF {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if e == nil || e.Type == TypeFragment {
			t.Fatalf("accepted %+v", e)
		}
		// What was accepted is sent again (in fragments if it must be)
		// and read back the same.
		again, err := appendMessage(nil, e, 512, 1<<16)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		e2, err := ReadMessage(bytes.NewReader(again), 512, 1<<16)
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", e, e2)
		}
	})
}
