package wan

import (
	"container/heap"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Link describes one direction of the network between two datacenters.
type Link struct {
	// Latency is the minimum one-way delay.
	Latency time.Duration
	// Jitter adds a uniformly random extra delay in [0, Jitter). Packets to
	// one destination are never reordered by it.
	Jitter time.Duration
	// Loss is the probability (0..1) that a packet is dropped.
	Loss float64
	// Down drops every packet.
	Down bool
}

// DCPair is a direction between two datacenters.
type DCPair struct{ From, To string }

// LinkStats counts packets on one DCPair.
type LinkStats struct {
	Sent    uint64 // packets written towards the pair's destination
	Delayed uint64 // of those, held back for some latency
	Dropped uint64 // of those, dropped (loss, down link, partition, isolation, queue overflow)
}

// EmulatorStats is a snapshot of an Emulator's counters. Totals include
// packets to unregistered addresses, which are never delayed or dropped
// unless their sender is isolated.
type EmulatorStats struct {
	Sent, Delayed, Dropped uint64
	Pairs                  map[DCPair]LinkStats
}

// maxQueued bounds the packets one wrapped socket holds back; beyond it
// packets are dropped, as a router's full queue would.
const maxQueued = 1 << 16

// Emulator delays and drops UDP packets per (source DC, destination DC) to
// emulate a WAN inside one process: meridian dev, tests and benchmarks.
// Every node's socket is wrapped with Wrap and its address registered with
// Register; the destination's datacenter is found by destination address.
// Packets are delayed and dropped where they are sent; partitions and
// isolation are also enforced where packets are received, which also drops
// packets that were already in flight when the fault began.
//
// Randomness (loss, jitter) comes from one generator seeded by the seed
// given to NewEmulator. All methods are safe for concurrent use.
type Emulator struct {
	mu       sync.Mutex
	rng      *rand.Rand
	dcOf     map[netip.AddrPort]string
	links    map[DCPair]Link
	def      Link
	parts    map[DCPair]bool
	isolated map[netip.AddrPort]bool
	stats    EmulatorStats
}

// NewEmulator returns an emulator with no links set: every packet passes
// undelayed until SetDefault or SetLink says otherwise.
func NewEmulator(seed int64) *Emulator {
	return &Emulator{
		rng:      rand.New(rand.NewPCG(uint64(seed), 0x6d6572696469616e)),
		dcOf:     make(map[netip.AddrPort]string),
		links:    make(map[DCPair]Link),
		parts:    make(map[DCPair]bool),
		isolated: make(map[netip.AddrPort]bool),
		stats:    EmulatorStats{Pairs: make(map[DCPair]LinkStats)},
	}
}

// parseAddr turns "host:port" into an address key, resolving names.
func parseAddr(addr string) (netip.AddrPort, bool) {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return udpKey(ua), true
}

func udpKey(ua *net.UDPAddr) netip.AddrPort {
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func addrKey(a net.Addr) (netip.AddrPort, bool) {
	if ua, ok := a.(*net.UDPAddr); ok {
		return udpKey(ua), true
	}
	return parseAddr(a.String())
}

// Register says that the node at addr ("127.0.0.1:port") is in dc.
// Unparseable addresses are ignored.
func (e *Emulator) Register(addr string, dc string) {
	ap, ok := parseAddr(addr)
	if !ok {
		return
	}
	e.mu.Lock()
	e.dcOf[ap] = dc
	e.mu.Unlock()
}

// SetLink sets the link from fromDC to toDC (one direction).
func (e *Emulator) SetLink(fromDC, toDC string, l Link) {
	e.mu.Lock()
	e.links[DCPair{fromDC, toDC}] = l
	e.mu.Unlock()
}

// SetLinks sets the link between a and b in both directions.
func (e *Emulator) SetLinks(a, b string, l Link) {
	e.SetLink(a, b, l)
	e.SetLink(b, a, l)
}

// SetDefault sets the link between distinct datacenters that have none set.
// Traffic inside a datacenter is never delayed unless SetLink(dc, dc, ...).
func (e *Emulator) SetDefault(l Link) {
	e.mu.Lock()
	e.def = l
	e.mu.Unlock()
}

// Partition drops all packets between datacenters a and b, both ways,
// until Heal. The links' settings are kept for after.
func (e *Emulator) Partition(a, b string) {
	e.mu.Lock()
	e.parts[DCPair{a, b}] = true
	e.parts[DCPair{b, a}] = true
	e.mu.Unlock()
}

// Heal ends a partition between a and b.
func (e *Emulator) Heal(a, b string) {
	e.mu.Lock()
	delete(e.parts, DCPair{a, b})
	delete(e.parts, DCPair{b, a})
	e.mu.Unlock()
}

// Isolate drops every packet to or from the node at addr, whatever its
// destination, until Restore.
func (e *Emulator) Isolate(addr string) {
	if ap, ok := parseAddr(addr); ok {
		e.mu.Lock()
		e.isolated[ap] = true
		e.mu.Unlock()
	}
}

// Restore ends the isolation of addr.
func (e *Emulator) Restore(addr string) {
	if ap, ok := parseAddr(addr); ok {
		e.mu.Lock()
		delete(e.isolated, ap)
		e.mu.Unlock()
	}
}

// Stats returns a snapshot of the counters.
func (e *Emulator) Stats() EmulatorStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stats
	s.Pairs = make(map[DCPair]LinkStats, len(e.stats.Pairs))
	for k, v := range e.stats.Pairs {
		s.Pairs[k] = v
	}
	return s
}

// link returns the effective link for pair; e.mu held.
func (e *Emulator) link(pair DCPair) Link {
	if l, ok := e.links[pair]; ok {
		return l
	}
	if pair.From != pair.To {
		return e.def
	}
	return Link{}
}

// count updates the counters; e.mu held.
func (e *Emulator) count(pair DCPair, known bool, sent, delayed, dropped bool) {
	var ps LinkStats
	if known {
		ps = e.stats.Pairs[pair]
	}
	if sent {
		e.stats.Sent++
		ps.Sent++
	}
	if delayed {
		e.stats.Delayed++
		ps.Delayed++
	}
	if dropped {
		e.stats.Dropped++
		ps.Dropped++
	}
	if known {
		e.stats.Pairs[pair] = ps
	}
}

// outgoing decides the fate of a packet sent from src in srcDC to dst.
func (e *Emulator) outgoing(src netip.AddrPort, srcDC string, dst netip.AddrPort) (delay time.Duration, drop bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	dstDC, known := e.dcOf[dst]
	pair := DCPair{srcDC, dstDC}
	switch {
	case e.isolated[src] || e.isolated[dst]:
		drop = true
	case !known:
	case e.parts[pair]:
		drop = true
	default:
		l := e.link(pair)
		switch {
		case l.Down:
			drop = true
		case l.Loss > 0 && e.rng.Float64() < l.Loss:
			drop = true
		default:
			delay = l.Latency
			if l.Jitter > 0 {
				delay += time.Duration(e.rng.Int64N(int64(l.Jitter)))
			}
		}
	}
	e.count(pair, known, true, delay > 0, drop)
	return delay, drop
}

// incoming reports whether a packet from src arriving at dst in dstDC must
// be dropped: the receiving half of partitions and isolation.
func (e *Emulator) incoming(src, dst netip.AddrPort, dstDC string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	srcDC, known := e.dcOf[src]
	pair := DCPair{srcDC, dstDC}
	drop := e.isolated[src] || e.isolated[dst] || (known && (e.parts[pair] || e.link(pair).Down))
	if drop {
		e.count(pair, known, false, false, true)
	}
	return drop
}

// overflow counts a packet dropped because the send queue is full.
func (e *Emulator) overflow(srcDC string, dst netip.AddrPort) {
	e.mu.Lock()
	dstDC, known := e.dcOf[dst]
	e.count(DCPair{srcDC, dstDC}, known, false, false, true)
	e.mu.Unlock()
}

// Wrap returns pc with the emulator applied to packets it sends from a
// node in dc, and to the partitions and isolation of packets it receives.
// Delayed packets are sent by one goroutine owned by the returned
// connection and stopped by its Close. If pc is bound to an unspecified
// address (0.0.0.0 or ::), the node is taken to be at 127.0.0.1 on the
// same port.
func (e *Emulator) Wrap(pc net.PacketConn, dc string) net.PacketConn {
	self, _ := addrKey(pc.LocalAddr())
	if self.Addr().IsUnspecified() {
		self = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), self.Port())
	}
	c := &emuConn{
		PacketConn: pc,
		e:          e,
		dc:         dc,
		self:       self,
		last:       make(map[netip.AddrPort]time.Time),
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	c.wg.Add(1)
	go c.run()
	return c
}

// emuConn is a wrapped socket.
type emuConn struct {
	net.PacketConn
	e    *Emulator
	dc   string
	self netip.AddrPort

	mu   sync.Mutex
	q    packetQueue
	seq  uint64
	last map[netip.AddrPort]time.Time // latest scheduled delivery per destination

	wake      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

type delayedPacket struct {
	at   time.Time
	seq  uint64
	dst  netip.AddrPort
	addr net.Addr
	b    []byte
}

// packetQueue is a min-heap by delivery time, then by send order.
type packetQueue []*delayedPacket

func (q packetQueue) Len() int { return len(q) }
func (q packetQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q packetQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *packetQueue) Push(x any)   { *q = append(*q, x.(*delayedPacket)) }
func (q *packetQueue) Pop() any {
	old := *q
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return p
}

func (c *emuConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	dst, ok := addrKey(addr)
	if !ok {
		return c.PacketConn.WriteTo(b, addr)
	}
	delay, drop := c.e.outgoing(c.self, c.dc, dst)
	if drop {
		return len(b), nil // UDP: a lost packet is not an error
	}
	now := time.Now()
	c.mu.Lock()
	at := now.Add(delay)
	if last := c.last[dst]; last.After(at) {
		at = last // never overtake an earlier packet to the same destination
	}
	if !at.After(now) {
		c.mu.Unlock()
		return c.PacketConn.WriteTo(b, addr)
	}
	if len(c.q) >= maxQueued {
		c.mu.Unlock()
		c.e.overflow(c.dc, dst)
		return len(b), nil
	}
	c.last[dst] = at
	c.seq++
	heap.Push(&c.q, &delayedPacket{at: at, seq: c.seq, dst: dst, addr: addr, b: append([]byte(nil), b...)})
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return len(b), nil
}

func (c *emuConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil {
			return n, addr, err
		}
		if src, ok := addrKey(addr); ok && c.e.incoming(src, c.self, c.dc) {
			continue
		}
		return n, addr, nil
	}
}

// run sends delayed packets when they are due.
func (c *emuConn) run() {
	defer c.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var due []*delayedPacket
	for {
		c.mu.Lock()
		now := time.Now()
		due = due[:0]
		for len(c.q) > 0 && !c.q[0].at.After(now) {
			p := heap.Pop(&c.q).(*delayedPacket)
			if c.last[p.dst].Equal(p.at) {
				delete(c.last, p.dst)
			}
			due = append(due, p)
		}
		next := time.Duration(-1)
		if len(c.q) > 0 {
			next = c.q[0].at.Sub(now)
		}
		c.mu.Unlock()
		for i, p := range due {
			c.PacketConn.WriteTo(p.b, p.addr)
			due[i] = nil
		}
		if next >= 0 {
			timer.Reset(next)
		}
		select {
		case <-c.done:
			timer.Stop()
			return
		case <-c.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// Close closes the socket and stops the delivery goroutine; packets still
// held back are dropped.
func (c *emuConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		c.closeErr = c.PacketConn.Close()
		c.wg.Wait()
	})
	return c.closeErr
}

// SetReadBuffer and SetWriteBuffer pass buffer sizing through to the socket
// (quic-go asks for larger buffers).
func (c *emuConn) SetReadBuffer(n int) error {
	if s, ok := c.PacketConn.(interface{ SetReadBuffer(int) error }); ok {
		return s.SetReadBuffer(n)
	}
	return nil
}

func (c *emuConn) SetWriteBuffer(n int) error {
	if s, ok := c.PacketConn.(interface{ SetWriteBuffer(int) error }); ok {
		return s.SetWriteBuffer(n)
	}
	return nil
}
