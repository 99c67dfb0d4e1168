package wan

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// A peer that read the request and then lost the connection may have acted
// on it: the call must say the outcome is unknown, never "unreachable"
// (which lets a caller send the request to another node).
func TestConnectionLostAfterSendIsOutcomeUnknown(t *testing.T) {
	got := make(chan struct{})
	srv, cli, _ := pair(t, HandlerFunc(func(ctx context.Context, from Identity, req *Envelope, reply Replier) {
		close(got)
		<-ctx.Done()
	}))
	go func() {
		<-got
		srv.Close() // closes the connection; the handler never answers
	}()
	_, err := echo(testCtx(t), cli, srv.Addr().String(), "node-1", 1)
	select {
	case <-got:
	default:
		t.Fatalf("the handler never saw the request (call: %v)", err)
	}
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("call whose peer went away after reading the request: %v, want ErrOutcomeUnknown", err)
	}
	if errors.Is(err, ErrUnreachable) {
		t.Fatalf("call whose peer read the request reports ErrUnreachable (not sent): %v", err)
	}
}

// A request that was sent and is still unanswered at the caller's deadline
// has an unknown outcome too, and the error still says it was a deadline.
func TestDeadlineAfterSendIsOutcomeUnknown(t *testing.T) {
	got := make(chan struct{}, 1)
	srv, cli, _ := pair(t, HandlerFunc(func(ctx context.Context, from Identity, req *Envelope, reply Replier) {
		got <- struct{}{}
		<-ctx.Done()
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	// Connect first, so the deadline cannot pass while dialling.
	if _, _, err := cli.pool.get(testCtx(t), srv.Addr().String()); err != nil {
		t.Fatal(err)
	}
	// The request carries a later deadline than the caller's, so that the
	// handler cannot answer "deadline exceeded" first: only the caller
	// gives up.
	req, _ := NewEnvelope(typeEcho, &echoMsg{})
	req.Deadline = time.Now().Add(20 * time.Second).UnixNano()
	err := cli.Call(ctx, srv.Addr().String(), "", req, func(*Envelope) error { return nil })
	<-got
	if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnreachable) {
		t.Fatalf("sent call past its deadline: %v, want ErrOutcomeUnknown wrapping DeadlineExceeded", err)
	}
}

// A request that never left — the dial failed, or the pooled connection was
// gone and could not be re-made — was not sent: ErrUnreachable, and not
// ErrOutcomeUnknown.
func TestNotSentIsUnreachable(t *testing.T) {
	ca := testCA(t, "cluster")
	short := func(c *Config) { c.DialTimeout = 200 * time.Millisecond }
	cli, _ := listenT(t, testCreds(t, ca, "node-2", RoleNode), echoHandler, short)
	ctx := testCtx(t)

	hole, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	_, err = echo(ctx, cli, hole.LocalAddr().String(), "", 1)
	if !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("failed dial: %v, want ErrUnreachable only", err)
	}

	srv, _ := listenT(t, testCreds(t, ca, "node-1", RoleNode), echoHandler)
	addr := srv.Addr().String()
	if _, err := echo(ctx, cli, addr, "node-1", 1); err != nil {
		t.Fatal(err)
	}
	conn, _, err := cli.pool.get(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	// Once the pooled connection has seen the server's goodbye, the next
	// call re-dials a closed port and fails unsent.
	eventually(t, 10*time.Second, "pooled connection closed", func() error {
		if conn.Context().Err() == nil {
			return errNotYet
		}
		return nil
	})
	_, err = echo(ctx, cli, addr, "node-1", 1)
	if !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("call to a node that was gone before the call: %v, want ErrUnreachable only", err)
	}
}

// A Dialer with VerifyAfter pings a quiet connection before it sends a
// request on it. A peer that went silent (a killed host: QUIC ignores ICMP,
// so the connection looks open until its idle timeout) fails the ping, and
// the call fails as not sent, instead of sending the request into the dead
// connection and ending with its outcome unknown. A live peer answers the
// ping, and its handler never sees it.
func TestVerifyQuietConnectionBeforeSending(t *testing.T) {
	ca := testCA(t, "cluster")
	var served atomic.Int64
	srv, _ := listenT(t, testCreds(t, ca, "node-1", RoleNode), HandlerFunc(func(ctx context.Context, from Identity, req *Envelope, reply Replier) {
		served.Add(1)
		echoHandler(ctx, from, req, reply)
	}))
	addr := srv.Addr().String()
	emu := NewEmulator(1)
	const quiet = 100 * time.Millisecond
	d, err := NewDialer(testCreds(t, ca, "cli", RoleClient), &DialerOptions{
		Wrap:        func(pc net.PacketConn) net.PacketConn { return emu.Wrap(pc, "client") },
		DialTimeout: 300 * time.Millisecond,
		VerifyAfter: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := testCtx(t)
	waitQuiet := func() {
		eventually(t, 10*time.Second, "connection quiet", func() error {
			d.pool.mu.Lock()
			defer d.pool.mu.Unlock()
			if pe := d.pool.peers[addr]; pe != nil && time.Since(pe.heard) > quiet {
				return nil
			}
			return errNotYet
		})
	}

	if _, err := echo(ctx, d, addr, "node-1", 1); err != nil {
		t.Fatal(err)
	}
	// A quiet, live connection: pinged, then used; one request served.
	waitQuiet()
	if _, err := echo(ctx, d, addr, "node-1", 2); err != nil {
		t.Fatalf("call on a quiet live connection: %v", err)
	}
	if n := served.Load(); n != 2 {
		t.Fatalf("handler served %d requests, want 2 (pings are the transport's)", n)
	}

	emu.Isolate(addr)
	waitQuiet()
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err = echo(cctx, d, addr, "node-1", 3)
	if !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("call on a quiet connection to a silent peer: %v, want ErrUnreachable (not sent)", err)
	}
	if n := served.Load(); n != 2 {
		t.Fatalf("handler served %d requests, want 2", n)
	}

	emu.Restore(addr)
	eventually(t, 10*time.Second, "call after the peer is back", func() error {
		c, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := echo(c, d, addr, "node-1", 4)
		return err
	})
}

// Dialer.Connected says whether a request would go out at once: a pooled
// connection to the right peer that needs no ping first. It never dials.
func TestDialerConnected(t *testing.T) {
	ca := testCA(t, "cluster")
	srv, _ := listenT(t, testCreds(t, ca, "node-1", RoleNode), HandlerFunc(echoHandler))
	addr := srv.Addr().String()
	d, err := NewDialer(testCreds(t, ca, "cli", RoleClient), &DialerOptions{VerifyAfter: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := testCtx(t)

	if d.Connected(addr, "node-1") {
		t.Fatal("connected before any dial")
	}
	d.pool.mu.Lock()
	dialled := len(d.pool.peers)
	d.pool.mu.Unlock()
	if dialled != 0 {
		t.Fatalf("Connected started %d dials, want none", dialled)
	}
	if err := d.Connect(ctx, addr, "node-1"); err != nil {
		t.Fatal(err)
	}
	if !d.Connected(addr, "node-1") || !d.Connected(addr, "") {
		t.Fatal("not connected after Connect")
	}
	if d.Connected(addr, "node-2") {
		t.Fatal("connected to node-2 at node-1's address")
	}
	// Quiet for longer than VerifyAfter: a call would ping first.
	d.pool.mu.Lock()
	d.pool.peers[addr].heard = time.Now().Add(-2 * time.Hour)
	d.pool.mu.Unlock()
	if d.Connected(addr, "node-1") {
		t.Fatal("a quiet connection counts as connected")
	}
	if _, err := echo(ctx, d, addr, "node-1", 1); err != nil {
		t.Fatal(err)
	}
	if !d.Connected(addr, "node-1") {
		t.Fatal("not connected right after a reply")
	}
	srv.Close()
	eventually(t, 10*time.Second, "connection closed by the peer", func() error {
		if d.Connected(addr, "node-1") {
			return errNotYet
		}
		return nil
	})
}
