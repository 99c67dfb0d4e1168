package wan

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// dialerFor returns a dialer holding a fresh certificate for name.
func dialerFor(t *testing.T, ca *CA, name string, role Role) *Dialer {
	t.Helper()
	d, err := NewDialer(testCreds(t, ca, name, role), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// A principal gets MaxConnsPerPrincipal connections to a node, however
// many certificates it holds; the next one is closed with an error naming
// the limit (a call on it fails as not sent), logged once for the burst,
// while other principals keep being served. A connection that ends frees
// its place.
func TestConnectionsPerPrincipal(t *testing.T) {
	const limit = 3
	ca := testCA(t, "cluster")
	srv, logs := listenT(t, testCreds(t, ca, "node-1", RoleNode), echoHandler, func(c *Config) {
		c.MaxConnsPerPrincipal = limit
	})
	ctx := testCtx(t)
	addr := srv.Addr().String()

	var held []*Dialer
	for i := range limit {
		d := dialerFor(t, ca, "mallory", RoleClient)
		if _, err := echo(ctx, d, addr, "node-1", 1); err != nil {
			t.Fatalf("connection %d of %d: %v", i+1, limit, err)
		}
		held = append(held, d)
	}
	for i := range 3 {
		d := dialerFor(t, ca, "mallory", RoleClient)
		_, err := echo(ctx, d, addr, "node-1", 1)
		if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "too many connections") || !strings.Contains(err.Error(), "client mallory") {
			t.Fatalf("connection %d past the limit: %v, want ErrUnreachable naming the connection limit", limit+i+1, err)
		}
	}
	if n := strings.Count(logs.String(), "over its connection limit"); n != 1 {
		t.Fatalf("%d log lines for a burst of 3 refusals, want 1:\n%s", n, logs.String())
	}
	// Another principal is served meanwhile, and so are mallory's held
	// connections.
	if _, err := echo(ctx, dialerFor(t, ca, "alice", RoleClient), addr, "node-1", 1); err != nil {
		t.Fatalf("alice while mallory is at its limit: %v", err)
	}
	if _, err := echo(ctx, held[0], addr, "node-1", 1); err != nil {
		t.Fatalf("a held connection: %v", err)
	}
	held[0].Close()
	eventually(t, 30*time.Second, "a new connection once one ended", func() error {
		_, err := echo(ctx, dialerFor(t, ca, "mallory", RoleClient), addr, "node-1", 1)
		return err
	})
}

// One client principal shares one request bucket across its connections:
// past the burst, requests are answered CodeOverloaded naming the rate
// limit, without reaching the handler. Other clients, and nodes, are
// served.
func TestRequestRatePerPrincipal(t *testing.T) {
	const burst = 4
	ca := testCA(t, "cluster")
	var served atomic.Int64
	h := HandlerFunc(func(ctx context.Context, from Identity, req *Envelope, reply Replier) {
		served.Add(1)
		echoHandler(ctx, from, req, reply)
	})
	srv, logs := listenT(t, testCreds(t, ca, "node-1", RoleNode), h, func(c *Config) {
		// One request per 1000 s after the burst: no refill during the test.
		c.ClientRequestsPerSecond, c.ClientRequestBurst = 0.001, burst
	})
	ctx := testCtx(t)
	addr := srv.Addr().String()
	a, b := dialerFor(t, ca, "mallory", RoleClient), dialerFor(t, ca, "mallory", RoleClient)
	for i := range burst {
		d := a
		if i%2 == 1 {
			d = b
		}
		if _, err := echo(ctx, d, addr, "node-1", 1); err != nil {
			t.Fatalf("request %d of the burst: %v", i+1, err)
		}
	}
	for _, d := range []*Dialer{a, b} {
		_, err := echo(ctx, d, addr, "node-1", 1)
		var re *RemoteError
		if !errors.As(err, &re) || re.Code != CodeOverloaded || !strings.Contains(re.Message, "rate limit") || !strings.Contains(re.Message, "not served") {
			t.Fatalf("request past the burst: %v, want %s naming the rate limit", err, CodeOverloaded)
		}
	}
	if got := served.Load(); got != burst {
		t.Fatalf("handler ran %d times, want %d", got, burst)
	}
	if n := strings.Count(logs.String(), "over its request rate"); n != 1 {
		t.Fatalf("%d log lines for 2 refused requests, want 1", n)
	}
	if _, err := echo(ctx, dialerFor(t, ca, "alice", RoleClient), addr, "node-1", 1); err != nil {
		t.Fatalf("another client: %v", err)
	}
	peer, _ := listenT(t, testCreds(t, ca, "node-2", RoleNode), echoHandler)
	for i := range 2 * burst {
		if _, err := echo(ctx, peer, addr, "node-1", 1); err != nil {
			t.Fatalf("node request %d: %v", i+1, err)
		}
	}
}

// retryCounter counts the QUIC Retry packets a socket sends.
type retryCounter struct {
	net.PacketConn
	n atomic.Int64
}

func (c *retryCounter) WriteTo(p []byte, addr net.Addr) (int, error) {
	// A QUIC v1 long header (0b11......) of type Retry (bits 0x30 = 3).
	if len(p) > 0 && p[0]&0xc0 == 0xc0 && (p[0]&0x30)>>4 == 3 {
		c.n.Add(1)
	}
	return c.PacketConn.WriteTo(p, addr)
}

// Past UnvalidatedHandshakeRate, a new connection must first prove its
// source address with a Retry round trip; it is then served as usual.
// Below it, no Retry is sent.
func TestAddressValidation(t *testing.T) {
	ca := testCA(t, "cluster")
	for _, tc := range []struct {
		name   string
		rate   float64
		retry  bool
		dialer int
	}{
		{"below the rate", 0, false, 1},
		{"always", -1, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := &retryCounter{}
			srv, _ := listenT(t, testCreds(t, ca, "node-1", RoleNode), echoHandler, func(c *Config) {
				c.UnvalidatedHandshakeRate = tc.rate
				c.WrapConn = func(pc net.PacketConn) net.PacketConn { rc.PacketConn = pc; return rc }
			})
			for range tc.dialer {
				if _, err := echo(testCtx(t), dialerFor(t, ca, "alice", RoleClient), srv.Addr().String(), "node-1", 1); err != nil {
					t.Fatal(err)
				}
			}
			if got := rc.n.Load(); (got > 0) != tc.retry || (tc.retry && got < int64(tc.dialer)) {
				t.Fatalf("%d Retry packets for %d connections, want retries: %v", got, tc.dialer, tc.retry)
			}
		})
	}
}

// The requests being read from one client principal share one byte
// budget across its connections: a principal cannot hold
// MaxConnsPerPrincipal connection budgets. A stream past it is answered
// "overloaded" naming the principal's budget; another principal is served
// meanwhile, and the budget comes back when the streams end.
func TestRequestBudgetPerClientPrincipal(t *testing.T) {
	const limit = 64 << 10
	ca := testCA(t, "cluster")
	srv, logs := listenT(t, testCreds(t, ca, "node-1", RoleNode), echoHandler, func(c *Config) {
		c.MaxFrame, c.MaxMessage = 16<<10, 16<<10
		c.MaxRequestBytesPerConn = 1 << 20 // each connection alone could hold every stream
		c.MaxRequestBytesPerClient = limit
	})
	ctx := testCtx(t)
	// Each stream declares a 16 KiB frame and sends half of it, over
	// three connections of the same principal.
	half := append(binary.BigEndian.AppendUint32(nil, 16<<10), make([]byte, 8<<10)...)
	var conns []*quic.Conn
	for range 3 {
		_, conn := clientConn(t, ca, srv)
		conns = append(conns, conn)
	}
	const streams = 12
	refused := make(chan error, streams)
	var held []*quic.Stream
	for i := range streams {
		str, err := conns[i%len(conns)].OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, str)
		if _, err := str.Write(half); err != nil {
			refused <- err // stopped while its half frame was being written: a refusal
			continue
		}
		go func() {
			e, err := ReadFrame(str, 0)
			if err != nil {
				refused <- err
				return
			}
			var ep ErrorPayload
			if e.Type == TypeError && e.Decode(&ep) == nil {
				refused <- &RemoteError{Code: ep.Code, Message: ep.Message}
			}
		}()
	}
	var refusal error
	select {
	case err := <-refused:
		refusal = err
		var re *RemoteError
		var se *quic.StreamError
		switch {
		case errors.As(err, &re) && re.Code == CodeOverloaded && strings.Contains(re.Message, "every connection of client mallory"):
		case errors.As(err, &se) && se.ErrorCode == streamProtocol:
			t.Logf("the refused stream was stopped before its reply arrived: %v", err)
		default:
			t.Fatalf("a stream past the principal's budget: %v, want %s naming it", err, CodeOverloaded)
		}
	case <-ctx.Done():
		t.Fatal("no stream was refused")
	}
	// Twelve half frames cannot all fit: some stream is refused by the
	// principal's budget and logged, even when the first refusal the
	// client saw was another stream's stop (CI saw that once: an empty log
	// at this point).
	eventually(t, 30*time.Second, "the budget's refusal logged", func() error {
		if !logs.Contains("principal over its request budget") {
			return fmt.Errorf("refusal not logged (the client saw %v):\n%s", refusal, logs.String())
		}
		return nil
	})
	if _, err := echo(ctx, dialerFor(t, ca, "alice", RoleClient), srv.Addr().String(), "node-1", 1); err != nil {
		t.Fatalf("another principal while mallory holds its budget: %v", err)
	}
	for _, s := range held {
		s.CancelWrite(streamCancelled)
		s.CancelRead(streamCancelled)
	}
	eventually(t, 30*time.Second, "mallory served once its streams ended", func() error {
		_, err := echo(ctx, dialerFor(t, ca, "mallory", RoleClient), srv.Addr().String(), "node-1", 1)
		return err
	})
}
