package wan

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pair starts a server and a client node of one cluster.
func pair(t *testing.T, h Handler, mods ...func(*Config)) (srv, cli *Transport, srvLogs *logBuffer) {
	t.Helper()
	ca := testCA(t, "cluster")
	srv, srvLogs = listenT(t, testCreds(t, ca, "node-1", RoleNode), h, mods...)
	cli, _ = listenT(t, testCreds(t, ca, "node-2", RoleNode), echoHandler, mods...)
	return srv, cli, srvLogs
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestCallRequestReply(t *testing.T) {
	srv, cli, _ := pair(t, echoHandler)
	ctx := testCtx(t)
	for i := range 3 {
		got, err := echo(ctx, cli, srv.Addr().String(), "node-1", i)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].N != i || got[0].S != "hello" || got[0].From != "node-2" {
			t.Fatalf("call %d: replies %+v", i, got)
		}
	}
}

func TestCallStreamingReplies(t *testing.T) {
	var wg sync.WaitGroup
	srv, cli, _ := pair(t, HandlerFunc(func(ctx context.Context, from Identity, req *Envelope, reply Replier) {
		var m echoMsg
		if err := req.Decode(&m); err != nil {
			reply.SendError(CodeBadRequest, err.Error())
			return
		}
		// Replies may come from several goroutines (one per replica ack).
		var mu sync.Mutex
		next := 0
		for range m.N {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mu.Lock()
				defer mu.Unlock()
				e, _ := NewEnvelope(typeReply, &echoMsg{N: next})
				next++
				if err := reply.Send(e); err != nil {
					panic(err)
				}
			}()
		}
		wg.Wait()
	}))
	got, err := echo(testCtx(t), cli, srv.Addr().String(), "", 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("%d replies, want 5", len(got))
	}
	for i, m := range got {
		if m.N != i {
			t.Fatalf("reply %d carries %d: replies out of order", i, m.N)
		}
	}
}

func TestReplyIDAndSendAfterReturn(t *testing.T) {
	late := make(chan Replier, 1)
	srv, cli, _ := pair(t, HandlerFunc(func(ctx context.Context, from Identity, req *Envelope, reply Replier) {
		e, _ := NewEnvelope(typeReply, &echoMsg{})
		reply.Send(e)
		late <- reply
	}))
	req, _ := NewEnvelope(typeEcho, &echoMsg{})
	req.ID = 99
	var ids []uint64
	err := cli.Call(testCtx(t), srv.Addr().String(), "", req, func(r *Envelope) error {
		ids = append(ids, r.ID)
		return nil
	})
	if err != nil || len(ids) != 1 || ids[0] != 99 {
		t.Fatalf("reply ids %v, %v; want [99]", ids, err)
	}
	e, _ := NewEnvelope(typeReply, &echoMsg{})
	if err := (<-late).Send(e); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after the handler returned: %v, want ErrClosed", err)
	}
}

func TestCallHandlerError(t *testing.T) {
	srv, cli, _ := pair(t, HandlerFunc(func(ctx context.Context, from Identity, req *Envelope, reply Replier) {
		e, _ := NewEnvelope(typeReply, &echoMsg{N: 1})
		reply.Send(e)
		reply.SendError("not_found", "no such key")
	}))
	var replies int
	req, _ := NewEnvelope(typeEcho, &echoMsg{})
	err := cli.Call(testCtx(t), srv.Addr().String(), "", req, func(*Envelope) error { replies++; return nil })
	var re *RemoteError
	if !errors.As(err, &re) || re.Code != "not_found" || re.Message != "no such key" {
		t.Fatalf("got %v, want RemoteError not_found", err)
	}
	if replies != 1 {
		t.Fatalf("%d replies before the error, want 1", replies)
	}
}

func TestOnReplyErrorEndsCall(t *testing.T) {
	srv, cli, _ := pair(t, echoHandler)
	stop := errors.New("enough")
	req, _ := NewEnvelope(typeEcho, &echoMsg{})
	if err := cli.Call(testCtx(t), srv.Addr().String(), "", req, func(*Envelope) error { return stop }); err != stop {
		t.Fatalf("got %v, want the onReply error", err)
	}
}

func TestDeadlinePropagation(t *testing.T) {
	type seen struct {
		deadline time.Time
		ok       bool
		wire     int64
	}
	got := make(chan seen, 2)
	srv, cli, _ := pair(t, HandlerFunc(func(ctx context.Context, from Identity, req *Envelope, reply Replier) {
		d, ok := ctx.Deadline()
		got <- seen{d, ok, req.Deadline}
		echoHandler(ctx, from, req, reply)
	}))
	deadline := time.Now().Add(7 * time.Second)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	req, _ := NewEnvelope(typeEcho, &echoMsg{})
	if err := cli.Call(ctx, srv.Addr().String(), "", req, func(*Envelope) error { return nil }); err != nil {
		t.Fatal(err)
	}
	s := <-got
	if !s.ok || !s.deadline.Equal(deadline) || s.wire != deadline.UnixNano() {
		t.Fatalf("handler deadline %v (set %v, wire %d), want %v", s.deadline, s.ok, s.wire, deadline)
	}
	if req.Deadline != 0 {
		t.Fatal("Call modified the caller's envelope")
	}

	// No deadline: none on the handler's context either.
	if err := cli.Call(context.Background(), srv.Addr().String(), "", req, func(*Envelope) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s.ok || s.wire != 0 {
		t.Fatalf("handler has deadline %v without one set", s.deadline)
	}

	// A deadline already past on arrival is refused without running the handler.
	req.Deadline = time.Now().Add(-time.Second).UnixNano()
	err := cli.Call(testCtx(t), srv.Addr().String(), "", req, func(*Envelope) error { return nil })
	var re *RemoteError
	if !errors.As(err, &re) || re.Code != CodeDeadlineExceeded {
		t.Fatalf("expired request: %v", err)
	}
	if len(got) != 0 {
		t.Fatal("handler ran for an expired request")
	}
}

func TestCancelReachesHandler(t *testing.T) {
	started := make(chan struct{})
	var cancelled atomic.Bool
	srv, cli, _ := pair(t, HandlerFunc(func(ctx context.Context, from Identity, req *Envelope, reply Replier) {
		close(started)
		<-ctx.Done()
		cancelled.Store(true)
	}))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		req, _ := NewEnvelope(typeEcho, &echoMsg{})
		errc <- cli.Call(ctx, srv.Addr().String(), "", req, func(*Envelope) error { return nil })
	}()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	eventually(t, 5*time.Second, "handler context cancelled", func() error {
		if cancelled.Load() {
			return nil
		}
		return errNotYet
	})
}

func TestCallTimesOut(t *testing.T) {
	srv, cli, _ := pair(t, HandlerFunc(func(ctx context.Context, from Identity, req *Envelope, reply Replier) {
		<-ctx.Done()
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := echo(ctx, cli, srv.Addr().String(), "", 1)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
}

func TestHandlerPanicRecovered(t *testing.T) {
	srv, cli, logs := pair(t, HandlerFunc(func(ctx context.Context, from Identity, req *Envelope, reply Replier) {
		var m echoMsg
		req.Decode(&m)
		if m.N == 13 {
			var x map[string]int
			x["boom"]++ // nil map write
		}
		echoHandler(ctx, from, req, reply)
	}))
	ctx := testCtx(t)
	_, err := echo(ctx, cli, srv.Addr().String(), "", 13)
	var re *RemoteError
	if !errors.As(err, &re) || re.Code != CodeInternal || !strings.Contains(re.Message, "panicked") {
		t.Fatalf("got %v, want RemoteError internal", err)
	}
	if !logs.Contains("handler panicked") {
		t.Fatal("panic not logged")
	}
	if got, err := echo(ctx, cli, srv.Addr().String(), "", 1); err != nil || len(got) != 1 {
		t.Fatalf("after the panic: %+v, %v", got, err)
	}
}

func TestWrongPeerName(t *testing.T) {
	srv, cli, _ := pair(t, echoHandler)
	_, err := echo(testCtx(t), cli, srv.Addr().String(), "node-9", 1)
	if !errors.Is(err, ErrWrongPeer) || !strings.Contains(err.Error(), "node-1") {
		t.Fatalf("got %v, want ErrWrongPeer naming node-1", err)
	}
}

func TestBadRequestFrames(t *testing.T) {
	srv, cli, logs := pair(t, echoHandler, func(c *Config) { c.MaxFrame, c.MaxMessage = 1<<10, 1<<10 })
	ctx := testCtx(t)
	conn, _, err := cli.pool.get(ctx, srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	raw := func(b []byte) (*Envelope, error) {
		str, err := conn.OpenStreamSync(ctx)
		if err != nil {
			return nil, err
		}
		str.Write(b)
		str.Close()
		e, err := ReadFrame(str, 0)
		if err != nil {
			return nil, err
		}
		if _, err := ReadFrame(str, 0); err != io.EOF {
			return nil, fmt.Errorf("after the error reply: %v, want EOF", err)
		}
		return e, nil
	}
	cases := map[string][]byte{
		"garbage cbor": rawFrame([]byte{0xff, 0x00, 0x13}),
		"oversize":     binary.BigEndian.AppendUint32(nil, 1<<10+1),
		"truncated":    append(binary.BigEndian.AppendUint32(nil, 100), 0x86),
	}
	for name, b := range cases {
		e, err := raw(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var ep ErrorPayload
		if e.Type != TypeError || e.Decode(&ep) != nil || ep.Code != CodeBadRequest {
			t.Fatalf("%s: reply %+v (%+v), want bad_request", name, e, ep)
		}
	}
	if !logs.Contains("bad request frame") {
		t.Fatal("bad frames not logged")
	}
	// An empty stream gets no reply, and the node still serves.
	if _, err := raw(nil); err != io.EOF {
		t.Fatalf("empty stream: %v, want EOF", err)
	}
	if got, err := echo(ctx, cli, srv.Addr().String(), "", 1); err != nil || len(got) != 1 {
		t.Fatalf("after bad frames: %+v, %v", got, err)
	}
	// Requests over our own limit are refused before sending.
	big, _ := NewEnvelope(typeEcho, &echoMsg{S: strings.Repeat("x", 2<<10)})
	if err := cli.Call(ctx, srv.Addr().String(), "", big, func(*Envelope) error { return nil }); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversize request: %v", err)
	}
}

func TestRedialAfterServerRestart(t *testing.T) {
	ca := testCA(t, "cluster")
	creds := testCreds(t, ca, "node-1", RoleNode)
	srv, _ := listenT(t, creds, echoHandler)
	addr := srv.Addr().String()
	cli, _ := listenT(t, testCreds(t, ca, "node-2", RoleNode), echoHandler)
	ctx := testCtx(t)
	if _, err := echo(ctx, cli, addr, "node-1", 1); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	srv2, _ := listenT(t, creds, echoHandler, func(c *Config) { c.ListenAddr = addr })
	if srv2.Addr().String() != addr {
		t.Fatalf("restarted on %s, want %s", srv2.Addr(), addr)
	}
	// The old connection is gone (closed by the server, or reset by the
	// restarted one); the pool re-dials within its back-off.
	eventually(t, 10*time.Second, "call after restart", func() error {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := echo(cctx, cli, addr, "node-1", 2)
		return err
	})
}

func TestDialBackoff(t *testing.T) {
	ca := testCA(t, "cluster")
	cli, _ := listenT(t, testCreds(t, ca, "node-2", RoleNode), echoHandler, func(c *Config) { c.DialTimeout = 200 * time.Millisecond })
	// A UDP socket that never answers.
	hole, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	ctx := testCtx(t)
	_, err = echo(ctx, cli, hole.LocalAddr().String(), "", 1)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("first call: %v, want ErrUnreachable", err)
	}
	// The next call fails fast on the remembered failure instead of dialling.
	_, err = echo(ctx, cli, hole.LocalAddr().String(), "", 1)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "last dial failed") {
		t.Fatalf("second call: %v, want a fast ErrUnreachable", err)
	}
	if backoff(1) != backoffMin || backoff(2) != 2*backoffMin || backoff(100) != backoffMax {
		t.Fatalf("back-off %v %v %v", backoff(1), backoff(2), backoff(100))
	}
}

func TestSharedDial(t *testing.T) {
	srv, cli, _ := pair(t, echoHandler)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := echo(ctx, cli, srv.Addr().String(), "", 1); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	srv.mu.Lock()
	n := len(srv.conns)
	srv.mu.Unlock()
	if n != 1 {
		t.Fatalf("server has %d connections from one peer, want 1", n)
	}
}

func TestManyConcurrentCalls(t *testing.T) {
	srv, cli, _ := pair(t, echoHandler)
	ctx := testCtx(t)
	const workers, calls = 32, 40
	var wg sync.WaitGroup
	var failed atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				n := w*calls + i
				got, err := echo(ctx, cli, srv.Addr().String(), "node-1", n)
				if err != nil || len(got) != 1 || got[0].N != n {
					if failed.Add(1) == 1 {
						t.Errorf("call %d: %+v, %v", n, got, err)
					}
				}
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d calls failed", f, workers*calls)
	}
}

func TestCloseWaitsForHandlers(t *testing.T) {
	started := make(chan struct{})
	var finished atomic.Bool
	srv, cli, _ := pair(t, HandlerFunc(func(ctx context.Context, from Identity, req *Envelope, reply Replier) {
		close(started)
		<-ctx.Done()
		finished.Store(true)
	}))
	errc := make(chan error, 1)
	go func() {
		_, err := echo(context.Background(), cli, srv.Addr().String(), "", 1)
		errc <- err
	}()
	<-started
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Fatal("Close returned before the handler")
	}
	if err := <-errc; err == nil {
		t.Fatal("call succeeded against a closed node")
	}
	if _, err := echo(testCtx(t), srv, cli.Addr().String(), "", 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("call from a closed transport: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	err := (&Config{MaxFrame: -1, IdleTimeout: -1}).Validate()
	for _, w := range []string{"Credentials", "ListenAddr", "MaxFrame", "IdleTimeout"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Fatalf("Validate: %v does not mention %s", err, w)
		}
	}
}

func TestOnConnCountsOpenConnections(t *testing.T) {
	var open atomic.Int64
	ca := testCA(t, "cluster")
	srv, err := Listen(Config{Credentials: testCreds(t, ca, "node-1", RoleNode), ListenAddr: "127.0.0.1:0", OnConn: func(d int64) { open.Add(d) }},
		HandlerFunc(echoHandler))
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDialer(testCreds(t, ca, "cli", RoleClient), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := echo(ctx, d, srv.Addr().String(), "node-1", 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "one open connection", func() error {
		if open.Load() == 1 {
			return nil
		}
		return errNotYet
	})
	d.Close()
	srv.Close()
	eventually(t, 5*time.Second, "no open connection", func() error {
		if open.Load() == 0 {
			return nil
		}
		return errNotYet
	})
}
