package sim

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// GossipTransport returns a memberlist transport bound to addr: serf's
// gossip over the simulated network, datagrams and streams, under the same
// links and partitions as QUIC.
func (n *Network) GossipTransport(addr netip.AddrPort) (memberlist.NodeAwareTransport, error) {
	ep, err := n.Listen(addr)
	if err != nil {
		return nil, err
	}
	t := &gossipTransport{net: n, addr: addr, ep: ep, packets: make(chan *memberlist.Packet, endpointQueue), streams: make(chan net.Conn), done: make(chan struct{})}
	n.mu.Lock()
	if n.streams[addr] != nil {
		n.mu.Unlock()
		ep.Close()
		return nil, fmt.Errorf("sim: %s: stream address already in use", addr)
	}
	n.streams[addr] = t
	n.mu.Unlock()
	t.wg.Add(1)
	go t.readPackets()
	return t, nil
}

type gossipTransport struct {
	net     *Network
	addr    netip.AddrPort
	ep      *Endpoint
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

var _ memberlist.NodeAwareTransport = (*gossipTransport)(nil)

func (t *gossipTransport) readPackets() {
	defer t.wg.Done()
	buf := make([]byte, 65536)
	for {
		k, from, err := t.ep.ReadFrom(buf)
		if err != nil {
			return
		}
		p := &memberlist.Packet{Buf: append([]byte(nil), buf[:k]...), From: from, Timestamp: time.Now()}
		select {
		case t.packets <- p:
		case <-t.done:
			return
		}
	}
}

func (t *gossipTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return net.IP(t.addr.Addr().AsSlice()), int(t.addr.Port()), nil
}

func (t *gossipTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	to, err := netip.ParseAddrPort(addr)
	if err != nil {
		return time.Time{}, fmt.Errorf("sim: gossip address %q: %w", addr, err)
	}
	_, err = t.ep.WriteTo(b, net.UDPAddrFromAddrPort(to))
	return time.Now(), err
}

func (t *gossipTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

func (t *gossipTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }
func (t *gossipTransport) StreamCh() <-chan net.Conn           { return t.streams }

func (t *gossipTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

// DialTimeout opens a stream to addr. A dial across a cut waits out its
// timeout, as a SYN into a black hole does; otherwise it takes one
// link delay.
func (t *gossipTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	to, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("sim: gossip address %q: %w", addr, err)
	}
	n := t.net
	delay, cut, lost := n.fate(t.addr.Addr(), to.Addr())
	if cut || lost {
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
		select {
		case <-time.After(timeout):
		case <-t.done:
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(to), Err: os.ErrDeadlineExceeded}
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-t.done:
			return nil, net.ErrClosed
		}
	}
	n.mu.Lock()
	peer := n.streams[to]
	n.mu.Unlock()
	if peer == nil {
		n.unbound.Add(1)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(to), Err: errRefused}
	}
	a, b := net.Pipe()
	local := &streamConn{Conn: a, net: n, local: t.addr, remote: to}
	remote := &streamConn{Conn: b, net: n, local: to, remote: t.addr}
	select {
	case peer.streams <- remote:
		n.delivered.Add(1)
		return local, nil
	case <-peer.done:
		a.Close()
		b.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(to), Err: errRefused}
	case <-t.done:
		a.Close()
		b.Close()
		return nil, net.ErrClosed
	}
}

func (t *gossipTransport) Shutdown() error {
	t.once.Do(func() {
		close(t.done)
		t.net.mu.Lock()
		if t.net.streams[t.addr] == t {
			delete(t.net.streams, t.addr)
		}
		t.net.mu.Unlock()
		t.ep.Close()
	})
	t.wg.Wait()
	return nil
}

// errStreamCut is what a stream's read or write returns once a partition
// separates its ends.
var errStreamCut = errors.New("sim: stream cut by a partition")

// streamConn is one end of a gossip stream: it fails once its ends are
// partitioned, as a TCP connection does when its retransmissions time out.
type streamConn struct {
	net.Conn
	net           *Network
	local, remote netip.AddrPort
}

func (c *streamConn) severed() bool {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	return c.net.severedLocked(c.local.Addr(), c.remote.Addr())
}

func (c *streamConn) Read(b []byte) (int, error) {
	if c.severed() {
		c.Conn.Close()
		return 0, errStreamCut
	}
	return c.Conn.Read(b)
}

func (c *streamConn) Write(b []byte) (int, error) {
	if c.severed() {
		c.Conn.Close()
		return 0, errStreamCut
	}
	return c.Conn.Write(b)
}

func (c *streamConn) LocalAddr() net.Addr  { return net.TCPAddrFromAddrPort(c.local) }
func (c *streamConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.remote) }
