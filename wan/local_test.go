package wan

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// TestServeLocalTakesTheStreamPath: a request served by ServeLocal meets
// what a stream's request meets once read: the principal's request rate,
// shared with its QUIC requests; a deadline already passed; a panicking
// handler; the handler's replies, held to the message limit.
func TestServeLocalTakesTheStreamPath(t *testing.T) {
	ca := testCA(t, "ca")
	big := false
	var sawRemote string
	h := HandlerFunc(func(ctx context.Context, from Identity, req *Envelope, reply Replier) {
		sawRemote = RemoteAddr(ctx)
		if req.Type == 99 {
			panic("boom")
		}
		m := echoMsg{From: from.Name}
		if big {
			m.S = strings.Repeat("x", 2<<20)
		}
		e, _ := NewEnvelope(typeReply, &m)
		if err := reply.Send(e); err != nil {
			reply.SendError(CodeInternal, err.Error())
		}
	})
	srv, _ := listenT(t, testCreds(t, ca, "n1", RoleNode), h, func(c *Config) {
		c.ClientRequestsPerSecond = 0.001
		c.ClientRequestBurst = 2
		c.MaxFrame = 1 << 20
		c.MaxMessage = 1 << 20
	})
	alice := Identity{Name: "alice", Role: RoleClient}
	req, _ := NewEnvelope(typeEcho, &echoMsg{N: 1})
	req.ID = 5
	remote := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4321}

	out := srv.ServeLocal(context.Background(), alice, remote, req)
	if len(out) != 1 || out[0].Type != typeReply || out[0].ID != 5 || out[0].V != Version {
		t.Fatalf("replies %+v", out)
	}
	if sawRemote != remote.String() {
		t.Fatalf("handler saw remote %q, want %q", sawRemote, remote)
	}

	// A reply over the message limit is refused as on a stream; the
	// handler then says so.
	big = true
	out = srv.ServeLocal(context.Background(), alice, remote, req)
	var ep ErrorPayload
	if len(out) != 1 || out[0].Type != TypeError || out[0].Decode(&ep) != nil || !strings.Contains(ep.Message, "message limit") {
		t.Fatalf("too large a reply gave %+v (%+v)", out, ep)
	}
	big = false

	// The burst of 2 is spent: the principal's next request, by either
	// path, is refused unexecuted.
	d, err := NewDialer(testCreds(t, ca, "alice", RoleClient), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var re *RemoteError
	if _, err := echo(ctx, d, srv.Addr().String(), "n1", 1); !errors.As(err, &re) || re.Code != CodeOverloaded {
		t.Fatalf("QUIC request after the burst: %v, want %s", err, CodeOverloaded)
	}
	out = srv.ServeLocal(context.Background(), alice, remote, req)
	if len(out) != 1 || out[0].Decode(&ep) != nil || ep.Code != CodeOverloaded {
		t.Fatalf("local request after the burst: %+v", out)
	}

	// Nodes are not rate-limited; a passed deadline and a panic are
	// answered as on a stream.
	node := Identity{Name: "n2", Role: RoleNode}
	late := *req
	late.Deadline = time.Now().Add(-time.Second).UnixNano()
	if out = srv.ServeLocal(context.Background(), node, nil, &late); len(out) != 1 || out[0].Decode(&ep) != nil || ep.Code != CodeDeadlineExceeded {
		t.Fatalf("late request: %+v %+v", out, ep)
	}
	boom := *req
	boom.Type = 99
	if out = srv.ServeLocal(context.Background(), node, nil, &boom); len(out) != 1 || out[0].Decode(&ep) != nil || ep.Code != CodeInternal {
		t.Fatalf("panicking handler: %+v %+v", out, ep)
	}
}

// TestReadRequestHoldsTheBudget: a body over the limit is refused as too
// large; one a principal's request byte budget cannot hold, as overloaded;
// the bytes go back to the budget when the read ends.
func TestReadRequestHoldsTheBudget(t *testing.T) {
	srv, _ := listenT(t, testCreds(t, testCA(t, "ca"), "n1", RoleNode), echoHandler, func(c *Config) {
		c.MaxFrame = 64 << 10
		c.MaxRequestBytesPerClient = 100 << 10
	})
	alice := Identity{Name: "alice", Role: RoleClient}
	b, err := srv.ReadRequest(alice, bytes.NewReader(make([]byte, 80<<10)), 90<<10)
	if err != nil || len(b) != 80<<10 {
		t.Fatalf("80 KiB body: %d bytes, %v", len(b), err)
	}
	if _, err := srv.ReadRequest(alice, bytes.NewReader(make([]byte, 91<<10)), 90<<10); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("body over the limit: %v", err)
	}
	// Hold 60 KiB of alice's budget as a stream being read would; then a
	// 50 KiB body does not fit.
	srv.prin.mu.Lock()
	pb := srv.prin.get(principalKey(alice)).bytes
	srv.prin.mu.Unlock()
	if got := pb.take(60 << 10); got != 60<<10 {
		t.Fatalf("took %d", got)
	}
	var re *RemoteError
	if _, err := srv.ReadRequest(alice, bytes.NewReader(make([]byte, 50<<10)), 90<<10); !errors.As(err, &re) || re.Code != CodeOverloaded {
		t.Fatalf("body over the principal's budget: %v", err)
	}
	pb.give(60 << 10)
	if used := pb.used.Load(); used != 0 {
		t.Fatalf("%d bytes still held after the reads", used)
	}
	if _, err := srv.ReadRequest(alice, bytes.NewReader(make([]byte, 50<<10)), 90<<10); err != nil {
		t.Fatalf("after the budget was given back: %v", err)
	}
}

// TestAuthenticateUsesTheCurrentCredentials: a gateway request is checked
// against the credentials in force when it arrives, so revoking a
// certificate refuses the requests of connections it already opened; a
// certificate of another CA is refused.
func TestAuthenticateUsesTheCurrentCredentials(t *testing.T) {
	ca := testCA(t, "ca")
	nodeCreds := testCreds(t, ca, "n1", RoleNode)
	srv, _ := listenT(t, nodeCreds, echoHandler)
	alice := testCreds(t, ca, "alice", RoleClient)
	chain := []*x509.Certificate{alice.Leaf()}
	id, err := srv.Authenticate(chain)
	if err != nil || id.Name != "alice" || id.Role != RoleClient {
		t.Fatalf("alice: %+v, %v", id, err)
	}
	if _, err := srv.Authenticate([]*x509.Certificate{testCreds(t, testCA(t, "other"), "alice", RoleClient).Leaf()}); err == nil {
		t.Fatal("a certificate of another CA was accepted")
	}
	revoked, err := nodeCreds.WithRevoked(id.Serial)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.SetCredentials(revoked); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Authenticate(chain); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked alice: %v", err)
	}
}
