package wan

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"
)

// wanCluster is three nodes on loopback, two in DC "a" and one in DC "b",
// behind one emulator.
type wanCluster struct {
	emu        *Emulator
	a1, a2, b1 *Transport
}

func newWANCluster(t *testing.T, inter Link) *wanCluster {
	t.Helper()
	ca := testCA(t, "cluster")
	emu := NewEmulator(1)
	emu.SetDefault(inter)
	node := func(name, dc string) *Transport {
		tr, _ := listenT(t, testCreds(t, ca, name, RoleNode), echoHandler, func(c *Config) {
			c.WrapConn = func(pc net.PacketConn) net.PacketConn { return emu.Wrap(pc, dc) }
		})
		emu.Register(tr.Addr().String(), dc)
		return tr
	}
	return &wanCluster{emu: emu, a1: node("a1", "a"), a2: node("a2", "a"), b1: node("b1", "b")}
}

// minRTT returns the fastest of n echo calls (after one warm-up call that
// also dials).
func minRTT(t *testing.T, from, to *Transport, n int) time.Duration {
	t.Helper()
	ctx := testCtx(t)
	if _, err := echo(ctx, from, to.Addr().String(), "", 0); err != nil {
		t.Fatal(err)
	}
	best := time.Duration(1<<63 - 1)
	for i := range n {
		start := time.Now()
		if _, err := echo(ctx, from, to.Addr().String(), "", i); err != nil {
			t.Fatal(err)
		}
		best = min(best, time.Since(start))
	}
	return best
}

func TestEmulatorLatency(t *testing.T) {
	c := newWANCluster(t, Link{Latency: 20 * time.Millisecond})
	cross := minRTT(t, c.a1, c.b1, 5)
	if cross < 40*time.Millisecond {
		t.Fatalf("round trip a→b %v, want at least 2×20ms", cross)
	}
	local := minRTT(t, c.a1, c.a2, 5)
	if local >= 20*time.Millisecond {
		t.Fatalf("round trip inside a %v: same-DC traffic was delayed", local)
	}
	t.Logf("round trip a→b %v, a→a %v", cross, local)
	s := c.emu.Stats()
	if ab := s.Pairs[DCPair{"a", "b"}]; ab.Delayed == 0 || ab.Sent < ab.Delayed {
		t.Fatalf("stats a→b %+v", ab)
	}
	if aa := s.Pairs[DCPair{"a", "a"}]; aa.Sent == 0 || aa.Delayed != 0 {
		t.Fatalf("stats a→a %+v", aa)
	}
}

func TestEmulatorPartitionAndHeal(t *testing.T) {
	c := newWANCluster(t, Link{Latency: time.Millisecond})
	addr := c.b1.Addr().String()
	ctx := testCtx(t)
	if _, err := echo(ctx, c.a1, addr, "b1", 1); err != nil {
		t.Fatal(err)
	}
	c.emu.Partition("a", "b")
	before := c.emu.Stats().Pairs[DCPair{"a", "b"}].Dropped
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := echo(cctx, c.a1, addr, "b1", 2)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call across the partition: %v, want DeadlineExceeded", err)
	}
	if after := c.emu.Stats().Pairs[DCPair{"a", "b"}].Dropped; after <= before {
		t.Fatal("the partition dropped nothing")
	}
	// Same-DC traffic is unaffected.
	if _, err := echo(ctx, c.a1, c.a2.Addr().String(), "a2", 3); err != nil {
		t.Fatalf("inside a during the partition: %v", err)
	}
	c.emu.Heal("a", "b")
	eventually(t, 10*time.Second, "call after heal", func() error {
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		_, err := echo(cctx, c.a1, addr, "b1", 4)
		return err
	})
}

func TestEmulatorIsolate(t *testing.T) {
	c := newWANCluster(t, Link{})
	ctx := testCtx(t)
	addr := c.a2.Addr().String()
	if _, err := echo(ctx, c.a1, addr, "a2", 1); err != nil {
		t.Fatal(err)
	}
	c.emu.Isolate(addr)
	for _, from := range []*Transport{c.a1, c.b1} {
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err := echo(cctx, from, addr, "a2", 2)
		cancel()
		if err == nil {
			t.Fatal("reached an isolated node")
		}
	}
	c.emu.Restore(addr)
	eventually(t, 10*time.Second, "call after restore", func() error {
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		_, err := echo(cctx, c.a1, addr, "a2", 3)
		return err
	})
}

// udpPair wraps a sending socket in DC "a" and registers a receiving
// socket in DC "b".
func udpPair(t *testing.T, emu *Emulator) (send net.PacketConn, recv net.PacketConn) {
	t.Helper()
	raw, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	send = emu.Wrap(raw, "a")
	recv, err = net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	emu.Register(recv.LocalAddr().String(), "b")
	t.Cleanup(func() { send.Close(); recv.Close() })
	return send, recv
}

func TestEmulatorKeepsOrderUnderJitter(t *testing.T) {
	emu := NewEmulator(7)
	emu.SetLink("a", "b", Link{Latency: time.Millisecond, Jitter: 5 * time.Millisecond})
	send, recv := udpPair(t, emu)
	const n = 200
	for i := range n {
		if _, err := send.WriteTo(binary.BigEndian.AppendUint32(nil, uint32(i)), recv.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	recv.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	for i := range n {
		m, _, err := recv.ReadFrom(buf)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if got := binary.BigEndian.Uint32(buf[:m]); got != uint32(i) {
			t.Fatalf("packet %d arrived as number %d", i, got)
		}
	}
}

func TestEmulatorLoss(t *testing.T) {
	emu := NewEmulator(42)
	emu.SetLink("a", "b", Link{Loss: 0.3})
	send, recv := udpPair(t, emu)
	const n = 1000
	for range n {
		send.WriteTo([]byte{1}, recv.LocalAddr())
	}
	s := emu.Stats().Pairs[DCPair{"a", "b"}]
	if s.Sent != n || s.Dropped < 200 || s.Dropped > 400 {
		t.Fatalf("stats %+v, want about 30%% of %d dropped", s, n)
	}
	// The same seed drops the same packets.
	emu2 := NewEmulator(42)
	emu2.SetLink("a", "b", Link{Loss: 0.3})
	send2, recv2 := udpPair(t, emu2)
	for range n {
		send2.WriteTo([]byte{1}, recv2.LocalAddr())
	}
	if s2 := emu2.Stats().Pairs[DCPair{"a", "b"}]; s2 != s {
		t.Fatalf("seed 42 gave %+v, then %+v", s, s2)
	}
}

func TestEmulatorUnregisteredAndDown(t *testing.T) {
	emu := NewEmulator(1)
	emu.SetDefault(Link{Latency: time.Hour})
	send, recv := udpPair(t, emu)
	other, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// An unregistered destination is reached at once despite the default.
	send.WriteTo([]byte("hi"), other.LocalAddr())
	other.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := other.ReadFrom(make([]byte, 8)); err != nil {
		t.Fatalf("unregistered destination: %v", err)
	}
	// A down link drops; the delayed packet is dropped when the socket closes.
	send.WriteTo([]byte("slow"), recv.LocalAddr())
	emu.SetLink("a", "b", Link{Down: true})
	send.WriteTo([]byte("lost"), recv.LocalAddr())
	s := emu.Stats()
	if s.Sent != 3 || s.Delayed != 1 || s.Dropped != 1 {
		t.Fatalf("stats %+v", s)
	}
	if err := send.Close(); err != nil {
		t.Fatal(err)
	}
}
