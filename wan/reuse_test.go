package wan

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// reuseRig is a node transport serving answer, and a client dialer.
type reuseRig struct {
	tr    *Transport
	d     *Dialer
	addr  string
	seen  sync.Map // request N -> times the handler saw it
	types sync.Map // message type -> true
}

func newReuseRig(t *testing.T, answer func(ctx context.Context, m echoMsg, reply Replier), mods ...func(*Config)) *reuseRig {
	t.Helper()
	ca := testCA(t, "reuse")
	rig := &reuseRig{}
	h := HandlerFunc(func(ctx context.Context, from Identity, req *Envelope, reply Replier) {
		rig.types.Store(req.Type, true)
		var m echoMsg
		if req.Type != typeEcho || req.Decode(&m) != nil {
			reply.SendError(CodeBadRequest, fmt.Sprintf("unknown message type %d", req.Type))
			return
		}
		n, _ := rig.seen.LoadOrStore(m.N, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		answer(ctx, m, reply)
	})
	rig.tr, _ = listenT(t, testCreds(t, ca, "n1", RoleNode), h, mods...)
	d, err := NewDialer(testCreds(t, ca, "cli", RoleClient), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	rig.d, rig.addr = d, rig.tr.Addr().String()
	return rig
}

// call makes one echo call of n and returns its replies.
func (rig *reuseRig) call(ctx context.Context, n int) ([]echoMsg, error) {
	return echo(ctx, rig.d, rig.addr, "n1", n)
}

// wantStreams fails t unless the transport served n streams.
func (rig *reuseRig) wantStreams(t *testing.T, n int64, why string) {
	t.Helper()
	if got := rig.tr.streamsServed.Load(); got != n {
		t.Fatalf("%d streams, want %d: %s", got, n, why)
	}
}

// times is how often the handler saw request n.
func (rig *reuseRig) times(n int) int64 {
	v, ok := rig.seen.Load(n)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

func echoOnce(ctx context.Context, m echoMsg, reply Replier) {
	e, _ := NewEnvelope(typeReply, &m)
	reply.Send(e)
}

func TestSequentialCallsShareAStream(t *testing.T) {
	rig := newReuseRig(t, echoOnce)
	ctx := testCtx(t)
	for i := range 50 {
		r, err := rig.call(ctx, i)
		if err != nil || len(r) != 1 || r[0].N != i {
			t.Fatalf("call %d: %+v, %v", i, r, err)
		}
	}
	rig.wantStreams(t, 1, "50 calls one after another")
	if got := rig.tr.reusableServed.Load(); got != 1 {
		t.Fatalf("%d reusable streams, want 1", got)
	}
	// Node to node too: a Transport's calls go the same way.
	ca := testCA(t, "reuse-nodes")
	srv, _ := listenT(t, testCreds(t, ca, "n1", RoleNode), echoHandler)
	cli, _ := listenT(t, testCreds(t, ca, "n2", RoleNode), echoHandler)
	for i := range 20 {
		if _, err := echo(ctx, cli, srv.Addr().String(), "n1", i); err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.streamsServed.Load(); got != 1 {
		t.Fatalf("20 node-to-node calls took %d streams, want 1", got)
	}
}

func TestReusedStreamKeepsEachCallsOutcome(t *testing.T) {
	// By n % 3: an error, two replies, one reply.
	rig := newReuseRig(t, func(ctx context.Context, m echoMsg, reply Replier) {
		switch m.N % 3 {
		case 0:
			reply.SendError(CodeBadRequest, fmt.Sprintf("refused %d", m.N))
		case 1:
			for k := range 2 {
				m.S = fmt.Sprint(k)
				echoOnce(ctx, m, reply)
			}
		default:
			echoOnce(ctx, m, reply)
		}
	})
	ctx := testCtx(t)
	for i := range 9 {
		r, err := rig.call(ctx, i)
		switch i % 3 {
		case 0:
			var re *RemoteError
			if !errors.As(err, &re) || re.Message != fmt.Sprintf("refused %d", i) {
				t.Fatalf("call %d: %v, want its own refusal", i, err)
			}
		case 1:
			if err != nil || len(r) != 2 || r[0].S != "0" || r[1].S != "1" || r[1].N != i {
				t.Fatalf("call %d: %+v, %v; want its two replies in order", i, r, err)
			}
		default:
			if err != nil || len(r) != 1 || r[0].N != i {
				t.Fatalf("call %d: %+v, %v; want its echo", i, r, err)
			}
		}
	}
	rig.wantStreams(t, 1, "a refused request does not end its stream")
}

// Concurrent calls each get a stream, and their streams are reused.
func TestConcurrentCallsReuseTheirStreams(t *testing.T) {
	rig := newReuseRig(t, echoOnce)
	ctx := testCtx(t)
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				n := w*each + i
				if r, err := rig.call(ctx, n); err != nil || len(r) != 1 || r[0].N != n {
					errs <- fmt.Errorf("call %d: %+v, %v", n, r, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for n := range workers * each {
		if got := rig.times(n); got != 1 {
			t.Fatalf("request %d reached the handler %d times", n, got)
		}
	}
	if got := rig.tr.streamsServed.Load(); got > workers {
		t.Fatalf("%d calls, %d at a time, took %d streams; want at most %d", workers*each, workers, got, workers)
	}
}

// A peer of an earlier release hands TypeStream to its handler, which
// refuses it: the call goes again on a stream of its own, once, and so do
// later calls to that address.
func TestReuseWithAPeerWithoutIt(t *testing.T) {
	rig := newReuseRig(t, echoOnce)
	rig.tr.noReuse.Store(true)
	ctx := testCtx(t)
	for i := range 5 {
		if r, err := rig.call(ctx, i); err != nil || len(r) != 1 || r[0].N != i {
			t.Fatalf("call %d: %+v, %v", i, r, err)
		}
		if got := rig.times(i); got != 1 {
			t.Fatalf("request %d reached the handler %d times", i, got)
		}
	}
	if _, ok := rig.types.Load(TypeStream); !ok {
		t.Fatal("the opening never reached the old peer's handler")
	}
	rig.wantStreams(t, 6, "the refused opening, then one per call")
	if !rig.d.pool.reuse.refused(rig.addr) {
		t.Fatal("the peer that refused a reusable stream is still sent them")
	}
}

// A peer that waited IdleTimeout for a stream's next request closes it;
// the next call is not lost and runs once.
func TestIdleStreamClosedByThePeer(t *testing.T) {
	rig := newReuseRig(t, echoOnce, func(c *Config) { c.IdleTimeout = 300 * time.Millisecond })
	ctx := testCtx(t)
	if _, err := rig.call(ctx, 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the peer closes the idle stream", func() error {
		if rig.tr.idleStreamsClosed.Load() < 1 {
			return errNotYet
		}
		return nil
	})
	if r, err := rig.call(ctx, 2); err != nil || len(r) != 1 || r[0].N != 2 {
		t.Fatalf("call after the peer closed the idle stream: %+v, %v", r, err)
	}
	if got := rig.times(2); got != 1 {
		t.Fatalf("the request reached the handler %d times", got)
	}
}

// The peer closes the idle stream a request was just written to: the
// request, which it did not read, goes again on a new stream.
func TestRequestOnAStreamThePeerClosedGoesAgain(t *testing.T) {
	rig := newReuseRig(t, echoOnce)
	ctx := testCtx(t)
	if _, err := rig.call(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// Take the idle stream, and write to it a request that the peer, as
	// if it had given up waiting, answers with TypeStreamIdle unread: the
	// transport's own idle path, driven here without waiting for a timer.
	conn, _, err := rig.d.pool.get(ctx, rig.addr)
	if err != nil {
		t.Fatal(err)
	}
	str := rig.d.pool.reuse.take(rig.addr, conn)
	if str == nil {
		t.Fatal("no idle stream after a call")
	}
	rig.d.pool.reuse.put(rig.addr, conn, str)
	rig.tr.forceIdle.Store(true)
	if r, err := rig.call(ctx, 2); err != nil || len(r) != 1 || r[0].N != 2 {
		t.Fatalf("call on a stream the peer closed: %+v, %v", r, err)
	}
	if got := rig.times(2); got != 1 {
		t.Fatalf("the request reached the handler %d times", got)
	}
	if got := rig.tr.idleStreamsClosed.Load(); got != 1 {
		t.Fatalf("%d streams closed as idle, want 1", got)
	}
}

// A call whose context ends mid-way abandons its stream: the next call
// takes another, and is answered.
func TestCancelledCallDoesNotReuseItsStream(t *testing.T) {
	held := make(chan struct{})
	rig := newReuseRig(t, func(ctx context.Context, m echoMsg, reply Replier) {
		if m.N == 0 {
			close(held)
			<-ctx.Done()
			return
		}
		echoOnce(ctx, m, reply)
	})
	ctx := testCtx(t)
	cctx, ccancel := context.WithCancel(ctx)
	go func() {
		<-held
		ccancel()
	}()
	if _, err := rig.call(cctx, 0); !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("call cancelled after it was sent: %v, want ErrOutcomeUnknown", err)
	}
	if r, err := rig.call(ctx, 1); err != nil || len(r) != 1 || r[0].N != 1 {
		t.Fatalf("next call: %+v, %v", r, err)
	}
	rig.wantStreams(t, 2, "the cancelled call's is not reused")
}

// Control messages have no place on a reusable stream.
func TestReusableStreamRefusesControlMessages(t *testing.T) {
	rig := newReuseRig(t, echoOnce)
	ctx := testCtx(t)
	conn, _, err := rig.d.pool.get(ctx, rig.addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []MsgType{TypePing, TypeStream, TypeDone, TypeStreamIdle, TypeError} {
		str, err := conn.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		for _, e := range []*Envelope{{V: Version, Type: TypeStream, ID: 1, Payload: nullPayload}, {V: Version, Type: typ, ID: 2, Payload: nullPayload}} {
			if out, err = appendFrame(out, e, DefaultMaxFrame); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := str.Write(out); err != nil {
			t.Fatal(err)
		}
		r, err := ReadMessage(str, DefaultMaxFrame, DefaultMaxMessage)
		if err != nil {
			t.Fatalf("type %d: %v", typ, err)
		}
		var ep ErrorPayload
		if r.Type != TypeError || r.ID != 2 || r.Decode(&ep) != nil || ep.Code != CodeBadRequest {
			t.Fatalf("type %d on a reusable stream answered %+v, want a bad_request error for it", typ, r)
		}
		str.CancelRead(streamDone)
		str.Close()
	}
}

// SendLast writes a request's last reply and the TypeDone that ends its
// replies in one stream write, and closes the request to later replies.
// An envelope too large to send leaves the request open.
func TestSendLastEndsTheRepliesInOneWrite(t *testing.T) {
	writes := make(chan int, 64) // the bytes of each reply write
	after := make(chan error, 8) // what a Send after SendLast returned
	rig := newReuseRig(t, func(ctx context.Context, m echoMsg, reply Replier) {
		switch m.N {
		case 1:
			echoLast(t, m, reply)
			e, _ := NewEnvelope(typeReply, &m)
			after <- reply.Send(e)
		case 2:
			big := m
			big.S = string(make([]byte, 2<<10))
			e, _ := NewEnvelope(typeReply, &big)
			if err := SendLast(reply, e); !errors.Is(err, ErrFrameTooLarge) {
				t.Errorf("SendLast of a message over the limit: %v, want ErrFrameTooLarge", err)
			}
			echoLast(t, m, reply) // still open: this is the answer
		default:
			echoLast(t, m, reply)
		}
	}, func(c *Config) {
		c.MaxFrame, c.MaxMessage = 1<<10, 1<<10
		c.OnSent = func(_ Identity, n int) { writes <- n }
	})
	ctx := testCtx(t)
	for i := range 4 {
		r, err := rig.call(ctx, i)
		if err != nil || len(r) != 1 || r[0].N != i {
			t.Fatalf("call %d: %+v, %v; want its one reply", i, r, err)
		}
		reply, _ := NewEnvelope(typeReply, &echoMsg{N: i, S: "hello"})
		reply.V, reply.ID = Version, 1 // the sizes only
		one, _ := appendFramed(nil, reply)
		both, _ := appendFramed(one, &Envelope{V: Version, Type: TypeDone, ID: 1, Payload: nullPayload})
		if got := <-writes; got != len(both) {
			t.Fatalf("call %d: its first reply write was %d bytes, want %d (the reply, %d, and its end in one write)", i, got, len(both), len(one))
		}
		if i == 1 {
			if err := <-after; !errors.Is(err, ErrClosed) {
				t.Fatalf("a Send after SendLast returned %v, want ErrClosed", err)
			}
		}
	}
	rig.wantStreams(t, 1, "every call ended its replies")
}

func echoLast(t *testing.T, m echoMsg, reply Replier) {
	e, _ := NewEnvelope(typeReply, &m)
	if err := SendLast(reply, e); err != nil {
		t.Errorf("SendLast: %v", err)
	}
}
