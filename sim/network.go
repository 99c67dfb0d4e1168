package sim

import (
	"container/heap"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Link is how packets travel from one region to another (or inside one):
// each packet is delayed by Latency plus a uniform draw from [0, Jitter)
// (so packets reorder when Jitter exceeds their spacing) and dropped with
// probability Loss.
type Link struct {
	Latency time.Duration
	Jitter  time.Duration
	Loss    float64
}

// Stats counts what the network did to packets, datagrams and stream
// dials alike.
type Stats struct {
	Sent      int64 // handed to the network
	Delivered int64 // reached a listening endpoint
	Lost      int64 // dropped by a link's Loss
	Cut       int64 // dropped by a partition
	Unbound   int64 // addressed to no endpoint (a stopped host)
	// DatagramBytes are the bytes of the datagrams handed to the network
	// (stream traffic not included), whatever their fate.
	DatagramBytes int64
}

// Network is an in-memory packet network between hosts grouped in regions.
// Its decisions are drawn from a seeded generator per directed pair of
// hosts, so the same packets on the same pair meet the same fate for the
// same seed. Time is the runtime's: under testing/synctest the delays are
// simulated and cost nothing.
//
// It carries two kinds of traffic: datagrams between Endpoints (QUIC and
// gossip's UDP), and streams (gossip's TCP) made by Dial. A partition
// drops both; a stream open across a cut fails its next read or write.
type Network struct {
	seed uint64

	mu        sync.Mutex
	region    map[netip.Addr]string // host -> region
	ports     map[netip.AddrPort]*Endpoint
	streams   map[netip.AddrPort]*gossipTransport
	links     map[[2]string]Link // directed region pair
	inside    Link               // inside one region, unless links says otherwise
	between   Link               // between regions, unless links says otherwise
	cutHosts  map[[2]netip.Addr]bool
	cutDCs    map[[2]string]bool
	down      map[netip.Addr]bool // hosts cut from everything
	rngs      map[[2]netip.Addr]*rand.Rand
	flights   flights // datagrams on their way
	seq       uint64
	running   bool // deliverLoop started
	kick      chan struct{}
	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once

	sent, delivered, lost, cut, unbound atomic.Int64
	datagramBytes                       atomic.Int64
}

// NewNetwork returns an empty network whose random decisions follow seed.
func NewNetwork(seed uint64) *Network {
	return &Network{
		seed:     seed,
		region:   map[netip.Addr]string{},
		ports:    map[netip.AddrPort]*Endpoint{},
		streams:  map[netip.AddrPort]*gossipTransport{},
		links:    map[[2]string]Link{},
		cutHosts: map[[2]netip.Addr]bool{},
		cutDCs:   map[[2]string]bool{},
		down:     map[netip.Addr]bool{},
		rngs:     map[[2]netip.Addr]*rand.Rand{},
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
}

// AddHost places host in region. A host's endpoints and streams all share
// its fate under partitions.
func (n *Network) AddHost(host netip.Addr, region string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.region[host] = region
}

// SetLinks sets the default links inside a region and between regions.
func (n *Network) SetLinks(inside, between Link) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.inside, n.between = inside, between
}

// SetLink sets the link from region a to region b (one direction).
func (n *Network) SetLink(from, to string, l Link) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.links[[2]string{from, to}] = l
}

// CutRegions drops every packet from region a to region b; with both
// directions true the partition is symmetric.
func (n *Network) CutRegions(from, to string, both bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cutDCs[[2]string{from, to}] = true
	if both {
		n.cutDCs[[2]string{to, from}] = true
	}
}

// CutHosts drops every packet from host a to host b (and back, if both).
func (n *Network) CutHosts(a, b netip.Addr, both bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cutHosts[[2]netip.Addr{a, b}] = true
	if both {
		n.cutHosts[[2]netip.Addr{b, a}] = true
	}
}

// Isolate cuts host from every other host, both ways (a dead machine or
// pulled cable); Reconnect undoes it.
func (n *Network) Isolate(host netip.Addr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.down[host] = true
}

// Reconnect ends Isolate.
func (n *Network) Reconnect(host netip.Addr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.down, host)
}

// Heal removes every partition and isolation; links keep their settings.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.cutHosts)
	clear(n.cutDCs)
	clear(n.down)
}

// Stats returns the counts so far.
func (n *Network) Stats() Stats {
	return Stats{Sent: n.sent.Load(), Delivered: n.delivered.Load(), Lost: n.lost.Load(), Cut: n.cut.Load(), Unbound: n.unbound.Load(),
		DatagramBytes: n.datagramBytes.Load()}
}

// severedLocked reports whether a partition drops traffic from src to
// dst; n.mu is held.
func (n *Network) severedLocked(src, dst netip.Addr) bool {
	if src == dst {
		return false
	}
	return n.down[src] || n.down[dst] || n.cutHosts[[2]netip.Addr{src, dst}] || n.cutDCs[[2]string{n.region[src], n.region[dst]}]
}

// fate decides what happens to one packet from src to dst: whether it is
// cut or lost, and otherwise its delay. Callers hold no lock.
func (n *Network) fate(src, dst netip.Addr) (delay time.Duration, cut, lost bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent.Add(1)
	if n.severedLocked(src, dst) {
		n.cut.Add(1)
		return 0, true, false
	}
	sdc, ddc := n.region[src], n.region[dst]
	l, ok := n.links[[2]string{sdc, ddc}]
	if !ok {
		l = n.between
		if sdc == ddc {
			l = n.inside
		}
	}
	pair := [2]netip.Addr{src, dst}
	r := n.rngs[pair]
	if r == nil {
		h := fnv.New64a()
		b1, b2 := src.As16(), dst.As16()
		h.Write(b1[:])
		h.Write(b2[:])
		r = rand.New(rand.NewPCG(n.seed, h.Sum64()))
		n.rngs[pair] = r
	}
	if l.Loss > 0 && r.Float64() < l.Loss {
		n.lost.Add(1)
		return 0, false, true
	}
	delay = l.Latency
	if l.Jitter > 0 {
		delay += time.Duration(r.Int64N(int64(l.Jitter)))
	}
	return delay, false, false
}

// send schedules a datagram's delivery to dst after its delay, unless it
// is dropped.
func (n *Network) send(from, to netip.AddrPort, b []byte) {
	n.datagramBytes.Add(int64(len(b)))
	delay, cut, lost := n.fate(from.Addr(), to.Addr())
	if cut || lost {
		return
	}
	n.mu.Lock()
	n.seq++
	heap.Push(&n.flights, flight{at: time.Now().Add(delay), seq: n.seq, to: to, p: packet{from: from, b: b}})
	if !n.running {
		n.running = true
		n.wg.Add(1)
		go n.deliverLoop()
	}
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// flight is a datagram on its way; flights is a heap ordered by arrival
// time, then by the order they were sent.
type flight struct {
	at  time.Time
	seq uint64
	to  netip.AddrPort
	p   packet
}

type flights []flight

func (h flights) Len() int { return len(h) }
func (h flights) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h flights) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *flights) Push(x any)   { *h = append(*h, x.(flight)) }
func (h *flights) Pop() any {
	old := *h
	f := old[len(old)-1]
	old[len(old)-1] = flight{}
	*h = old[:len(old)-1]
	return f
}

// deliverLoop hands every datagram to its endpoint when it arrives: one
// goroutine for the whole network, so that arrivals happen in one order.
func (n *Network) deliverLoop() {
	defer n.wg.Done()
	var due []flight
	for {
		n.mu.Lock()
		now := time.Now()
		due = due[:0]
		for len(n.flights) > 0 && !n.flights[0].at.After(now) {
			due = append(due, heap.Pop(&n.flights).(flight))
		}
		wait := time.Duration(-1)
		if len(n.flights) > 0 {
			wait = n.flights[0].at.Sub(now)
		}
		n.mu.Unlock()
		if len(due) > 0 {
			for _, f := range due {
				n.deliver(f)
			}
			continue
		}
		var t *time.Timer
		var timer <-chan time.Time
		if wait >= 0 {
			t = time.NewTimer(wait)
			timer = t.C
		}
		select {
		case <-n.kick:
		case <-timer:
		case <-n.done:
			if t != nil {
				t.Stop()
			}
			return
		}
		if t != nil {
			t.Stop()
		}
	}
}

// deliver hands f to the endpoint bound at its address now, if any.
func (n *Network) deliver(f flight) {
	n.mu.Lock()
	ep := n.ports[f.to]
	n.mu.Unlock()
	if ep == nil || !ep.push(f.p) {
		n.unbound.Add(1)
		return
	}
	n.delivered.Add(1)
}

// Close stops delivering: datagrams still on their way are dropped.
func (n *Network) Close() {
	n.closeOnce.Do(func() { close(n.done) })
	n.wg.Wait()
}

// Listen binds a datagram endpoint at addr, as net.ListenUDP would.
func (n *Network) Listen(addr netip.AddrPort) (*Endpoint, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.region[addr.Addr()]; !ok {
		return nil, fmt.Errorf("sim: no host %s", addr.Addr())
	}
	if n.ports[addr] != nil {
		return nil, fmt.Errorf("sim: %s: address already in use", addr)
	}
	ep := &Endpoint{net: n, addr: addr, wake: make(chan struct{}, 1), closed: make(chan struct{})}
	n.ports[addr] = ep
	return ep, nil
}

type packet struct {
	from netip.AddrPort
	b    []byte
}

// endpointQueue bounds the datagrams waiting to be read, as a socket's
// receive buffer does; more are dropped.
const endpointQueue = 4096

// Endpoint is a bound datagram socket on a Network: a net.PacketConn.
type Endpoint struct {
	net  *Network
	addr netip.AddrPort

	mu       sync.Mutex
	queue    []packet
	deadline time.Time
	wake     chan struct{} // a packet arrived or the deadline changed
	closed   chan struct{}
	isClosed bool
}

var _ net.PacketConn = (*Endpoint)(nil)

// push queues p for reading; false if the endpoint is closed or full.
func (e *Endpoint) push(p packet) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.isClosed || len(e.queue) >= endpointQueue {
		return false
	}
	e.queue = append(e.queue, p)
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return true
}

// ReadFrom implements net.PacketConn.
func (e *Endpoint) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		e.mu.Lock()
		if e.isClosed {
			e.mu.Unlock()
			return 0, nil, net.ErrClosed
		}
		if len(e.queue) > 0 {
			p := e.queue[0]
			e.queue[0] = packet{}
			e.queue = e.queue[1:]
			e.mu.Unlock()
			return copy(b, p.b), net.UDPAddrFromAddrPort(p.from), nil
		}
		deadline := e.deadline
		e.mu.Unlock()
		var t *time.Timer
		var expired <-chan time.Time
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return 0, nil, os.ErrDeadlineExceeded
			}
			t = time.NewTimer(d)
			expired = t.C
		}
		select {
		case <-e.wake:
		case <-e.closed:
		case <-expired:
		}
		if t != nil {
			t.Stop()
		}
	}
}

// WriteTo implements net.PacketConn.
func (e *Endpoint) WriteTo(b []byte, addr net.Addr) (int, error) {
	e.mu.Lock()
	closed := e.isClosed
	e.mu.Unlock()
	if closed {
		return 0, net.ErrClosed
	}
	to, err := addrPort(addr)
	if err != nil {
		return 0, err
	}
	e.net.send(e.addr, to, append([]byte(nil), b...))
	return len(b), nil
}

func addrPort(a net.Addr) (netip.AddrPort, error) {
	switch a := a.(type) {
	case *net.UDPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("sim: address %v: %w", a, err)
	}
	return ap, nil
}

// Close implements net.PacketConn; the address is free again afterwards.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.isClosed {
		e.mu.Unlock()
		return nil
	}
	e.isClosed = true
	e.queue = nil
	close(e.closed)
	e.mu.Unlock()
	e.net.mu.Lock()
	if e.net.ports[e.addr] == e {
		delete(e.net.ports, e.addr)
	}
	e.net.mu.Unlock()
	return nil
}

// LocalAddr implements net.PacketConn.
func (e *Endpoint) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(e.addr) }

// SetDeadline implements net.PacketConn; only reads wait, so only the
// read deadline matters.
func (e *Endpoint) SetDeadline(t time.Time) error { return e.SetReadDeadline(t) }

// SetReadDeadline implements net.PacketConn.
func (e *Endpoint) SetReadDeadline(t time.Time) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.deadline = t
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return nil
}

// SetWriteDeadline implements net.PacketConn; writes never block.
func (e *Endpoint) SetWriteDeadline(time.Time) error { return nil }

// SetReadBuffer and SetWriteBuffer accept any size, so QUIC does not warn
// that it could not raise them.
func (e *Endpoint) SetReadBuffer(int) error  { return nil }
func (e *Endpoint) SetWriteBuffer(int) error { return nil }

var errRefused = errors.New("sim: connection refused")
