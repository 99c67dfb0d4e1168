package wan

import (
	"context"
	"errors"
	"net"
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
	_, err := echo(ctx, cli, srv.Addr().String(), "", 1)
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
