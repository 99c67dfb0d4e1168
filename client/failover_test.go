package client

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/wan"
)

// These tests run the client against real QUIC listeners that play the
// part of nodes: they count the writes that reach them, so a write sent
// twice (which a real cluster would keep as two siblings, breaking P9)
// shows as two.

type testPKI struct {
	t  *testing.T
	ca *wan.CA
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	ca, _, err := wan.NewCA("cluster", time.Now(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{t: t, ca: ca}
}

func (p *testPKI) creds(name string, role wan.Role) *wan.Credentials {
	p.t.Helper()
	certPEM, keyPEM, err := p.ca.Issue(name, role, []string{"127.0.0.1"}, time.Now(), time.Hour)
	if err != nil {
		p.t.Fatal(err)
	}
	c, err := wan.NewCredentials(p.ca.CertPEM, certPEM, keyPEM, time.Now())
	if err != nil {
		p.t.Fatal(err)
	}
	return c
}

// fakeNode answers puts and gets like a coordinator and counts the puts it
// received. With drop set, it takes a put and then goes away (its
// transport closes) without answering: "sent, connection lost".
type fakeNode struct {
	id   string
	tr   *wan.Transport
	puts atomic.Int64
	drop bool
	once sync.Once
}

func startNode(t *testing.T, p *testPKI, id string, drop bool, mods ...func(*wan.Config)) *fakeNode {
	t.Helper()
	n := &fakeNode{id: id, drop: drop}
	cfg := wan.Config{Credentials: p.creds(id, wan.RoleNode), ListenAddr: "127.0.0.1:0"}
	for _, m := range mods {
		m(&cfg)
	}
	tr, err := wan.Listen(cfg, wan.HandlerFunc(n.serve))
	if err != nil {
		t.Fatal(err)
	}
	n.tr = tr
	t.Cleanup(func() { tr.Close() })
	return n
}

func (n *fakeNode) serve(ctx context.Context, from wan.Identity, req *wan.Envelope, reply wan.Replier) {
	var out any
	var t wan.MsgType = api.TypeGetReply
	switch req.Type {
	case api.TypePut:
		var r api.PutRequest
		if err := req.Decode(&r); err != nil {
			reply.SendError(wan.CodeBadRequest, err.Error())
			return
		}
		n.puts.Add(1)
		if n.drop {
			// Close waits for this handler, which returns when its
			// stream dies with the connection.
			n.once.Do(func() { go n.tr.Close() })
			<-ctx.Done()
			return
		}
		out, t = &api.PutResponse{Coordinator: n.id, Acked: map[string]int{"x": 1}}, api.TypePutReply
	case api.TypeGet:
		out = &api.GetResponse{Siblings: []api.Sibling{{Value: []byte(n.id)}}}
	default:
		reply.SendError(wan.CodeBadRequest, "unexpected request")
		return
	}
	e, err := wan.NewEnvelope(t, out)
	if err != nil {
		reply.SendError(wan.CodeInternal, err.Error())
		return
	}
	reply.Send(e)
}

// blackhole is a UDP address in front of a real node that drops every
// packet while closed (a killed host: QUIC sees only silence) and relays
// both ways while open. It serves one client.
type blackhole struct {
	pc, up net.PacketConn
	target net.Addr
	open   atomic.Bool
	client atomic.Pointer[net.Addr]
}

func newBlackhole(t *testing.T, target net.Addr) *blackhole {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{pc: pc, up: up, target: target}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if b.open.Load() {
				b.client.Store(&from)
				up.WriteTo(buf[:n], target)
			}
		}
	})
	wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			n, _, err := up.ReadFrom(buf)
			if err != nil {
				return
			}
			if to := b.client.Load(); to != nil && b.open.Load() {
				pc.WriteTo(buf[:n], *to)
			}
		}
	})
	t.Cleanup(func() {
		pc.Close()
		up.Close()
		wg.Wait()
	})
	return b
}

func (b *blackhole) addr() string { return b.pc.LocalAddr().String() }

func dialT(t *testing.T, p *testPKI, cfg Config) *Client {
	t.Helper()
	cfg.Credentials = p.creds("test-client", wan.RoleClient)
	c, err := Dial(context.Background(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A put whose node took it and then went away may have been applied: the
// client must not send it to another node (it would become a second
// sibling), and its error must say the write may have been applied. A
// read in the same situation does fail over.
func TestPutWithUnknownOutcomeIsNotRetried(t *testing.T) {
	p := newPKI(t)
	east := startNode(t, p, "east-1", true)
	west := startNode(t, p, "west-1", false)
	c := dialT(t, p, Config{DC: "east", Nodes: []Node{
		{ID: "east-1", DC: "east", Addr: east.tr.Addr().String()},
		{ID: "west-1", DC: "west", Addr: west.tr.Addr().String()},
	}, Timeout: 10 * time.Second})

	_, err := c.Put(context.Background(), []byte("k"), []byte("v"), nil)
	if got := east.puts.Load() + west.puts.Load(); got != 1 {
		t.Fatalf("the put reached nodes %d times (east-1 %d, west-1 %d), want once; error %v", got, east.puts.Load(), west.puts.Load(), err)
	}
	if !errors.Is(err, ErrOutcomeUnknown) || !strings.Contains(err.Error(), "may have been applied") {
		t.Fatalf("put: %v, want ErrOutcomeUnknown saying it may have been applied", err)
	}
	if errors.Is(err, ErrNoNodes) {
		t.Fatalf("put: %v claims no node was reached", err)
	}

	res, err := c.Get(context.Background(), []byte("k"), nil)
	if err != nil || len(res.Values) != 1 || string(res.Values[0]) != "west-1" {
		t.Fatalf("get after east-1 went away: %+v, %v; want west-1's answer", res, err)
	}
}

// With every node of the home region silent (a killed host answers
// nothing, so only a dial timeout reveals it), a fresh client reaches
// another region inside a deadline shorter than dialling the dead nodes one
// after another; a long-lived client then remembers them as down, and goes
// back to them once they answer again.
func TestFailoverToAnotherRegionInsideTheDeadline(t *testing.T) {
	p := newPKI(t)
	var home []*fakeNode
	var holes []*blackhole
	nodes := []Node{}
	for _, id := range []string{"east-1", "east-2", "east-3"} {
		n := startNode(t, p, id, false)
		b := newBlackhole(t, n.tr.Addr())
		home, holes = append(home, n), append(holes, b)
		nodes = append(nodes, Node{ID: id, DC: "east", Addr: b.addr()})
	}
	west := startNode(t, p, "west-1", false)
	nodes = append(nodes, Node{ID: "west-1", DC: "west", Addr: west.tr.Addr().String()})
	// Dialling the three dead nodes in turn takes 3 × dialTimeout; the
	// deadline is shorter than that by a wide margin.
	timeout := 2 * dialTimeout
	c := dialT(t, p, Config{DC: "east", Nodes: nodes, Timeout: timeout})

	for i := range 5 {
		start := time.Now()
		res, err := c.Put(context.Background(), []byte("k"), []byte("v"), nil)
		if err != nil {
			t.Fatalf("put %d with the home region dead: %v", i, err)
		}
		t.Logf("put %d: coordinator %s after %v", i, res.Coordinator, time.Since(start).Round(time.Millisecond))
		if res.Coordinator != "west-1" {
			t.Fatalf("put %d coordinated by %s", i, res.Coordinator)
		}
	}
	if got := west.puts.Load(); got != 5 {
		t.Fatalf("west-1 received %d puts, want 5", got)
	}
	// The client remembers the dead nodes: they are tried last.
	if cands := c.candidates(); cands[0].ID != "west-1" {
		t.Fatalf("after failing over, candidates start with %s, want west-1", cands[0].ID)
	}

	// Wait until the raced-past dials have failed, so that the way back
	// below is a probe after the back-off.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c.mu.Lock()
		failed := 0
		for _, n := range home {
			if st := c.down[n.id]; st != nil && st.failures > 0 {
				failed++
			}
		}
		c.mu.Unlock()
		if failed == len(home) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d dead home nodes marked down after 30s", failed, len(home))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The home region returns: a probe finds it, and the client fails back.
	for _, b := range holes {
		b.open.Store(true)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		res, err := c.Put(context.Background(), []byte("k"), []byte("v"), nil)
		if err == nil && strings.HasPrefix(res.Coordinator, "east-") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client did not fail back to the home region within 30s: last put %+v, %v", res, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	total := 0
	for _, n := range home {
		total += int(n.puts.Load())
	}
	if total != 1 {
		t.Fatalf("home nodes received %d puts, want 1", total)
	}
}

// A long-lived client holds a connection to its home node; the node's host
// dies (silence: the connection looks open until its idle timeout). The
// next write must not be sent into that connection — its outcome would be
// unknown — but go to a node that answers.
func TestLongLivedClientDoesNotWriteIntoASilentConnection(t *testing.T) {
	p := newPKI(t)
	east := startNode(t, p, "east-1", false)
	hole := newBlackhole(t, east.tr.Addr())
	hole.open.Store(true)
	west := startNode(t, p, "west-1", false)
	c := dialT(t, p, Config{DC: "east", Nodes: []Node{
		{ID: "east-1", DC: "east", Addr: hole.addr()},
		{ID: "west-1", DC: "west", Addr: west.tr.Addr().String()},
	}, Timeout: 2 * dialTimeout})

	res, err := c.Put(context.Background(), []byte("k"), []byte("v1"), nil)
	if err != nil || res.Coordinator != "east-1" {
		t.Fatalf("first put: %+v, %v; want east-1", res, err)
	}
	last := time.Now()
	hole.open.Store(false)
	// The connection must have been quiet for verifyAfter: only time
	// makes it so.
	for time.Since(last) <= verifyAfter+100*time.Millisecond {
		time.Sleep(50 * time.Millisecond)
	}
	res, err = c.Put(context.Background(), []byte("k"), []byte("v2"), nil)
	if err != nil {
		t.Fatalf("put after the home node went silent: %v", err)
	}
	if res.Coordinator != "west-1" || east.puts.Load() != 1 || west.puts.Load() != 1 {
		t.Fatalf("second put coordinated by %s; east-1 got %d puts, west-1 %d; want west-1, 1, 1", res.Coordinator, east.puts.Load(), west.puts.Load())
	}
}
