package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/grants"
	"github.com/meridian-kv/meridian/wan"
)

// fence is the room of a failover drill's fence (api.FenceRequest): a
// region cut off from this node as a lost region would be. It cuts at the
// network's edges, not in the data path: the transport fails calls to the
// region's nodes unsent and closes and refuses their connections
// (wan.Transport.SetFence), and the gossip transport drops their packets
// and refuses to dial them (fencedGossip). Everything above sees what a
// region loss shows — replica writes fail and become hints, peers are
// marked down by the calls that fail and by gossip, reads fail over — and
// recovers from the lift as from a region's return: probes find the peers
// again, hints drain, repair runs.
//
// A node of the fenced region cuts every other region off and refuses
// client reads and writes (wan.CodeNotExecuted: the client tries another
// node), so clients fail over as from a dead region. Admin requests
// (status, inspect) are still served: through them a drill sees what the
// fenced region held when it was cut off.
//
// The members cut are those known when the fence went up. Gossip streams
// (serf's push-pull) are cut on the dialling side only, since their source
// port names no node: a fence sent to every node, as the drill does, cuts
// them both ways.
type fence struct {
	mu     sync.Mutex
	region string // "" when no fence is up
	until  time.Time
	timer  *time.Timer
	gen    uint64

	self   atomic.Bool                     // this node's own region is fenced: refuse client reads and writes
	gossip atomic.Pointer[map[string]bool] // gossip addresses ("ip:port") and node names to drop
}

// fencedRegion returns the fenced region, "" if none.
func (f *fence) fencedRegion() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.region
}

// serveFence serves api.TypeFence.
func (n *Node) serveFence(ctx context.Context, from wan.Identity, req *wan.Envelope, reply wan.Replier) {
	var r api.FenceRequest
	if err := req.Decode(&r); err != nil {
		sendClientError(reply, api.Errorf(api.CodeBadRequest, "meridian: malformed fence request: %v", err))
		return
	}
	if !n.authorize(ctx, from, req, "fence", grants.AllKeyspaces, grants.Admin, reply) {
		return
	}
	cerr := r.Validate()
	var res *api.FenceResponse
	if cerr == nil {
		res = n.Fence(r.Region, time.Duration(r.Millis)*time.Millisecond)
	}
	detail := "lift"
	if r.Region != "" && r.Millis > 0 {
		detail = fmt.Sprintf("region %q for %v", r.Region, time.Duration(r.Millis)*time.Millisecond)
	}
	n.auditDone(ctx, from, req, "fence", "", detail, cerr)
	respond(reply, api.TypeFenceReply, res, cerr)
}

// Fence cuts region off from this node for d (see fence), replacing any
// fence up; an empty region or d ≤ 0 lifts it. It returns the fence now up.
func (n *Node) Fence(region string, d time.Duration) *api.FenceResponse {
	f := &n.fence
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.timer != nil {
		f.timer.Stop()
		f.timer = nil
	}
	f.gen++
	if region == "" || d <= 0 {
		f.region, f.until = "", time.Time{}
		n.applyFence("")
		n.log.Warn("fence lifted")
		return n.fenceResponseLocked()
	}
	f.region, f.until = region, time.Now().Add(d)
	gen := f.gen
	f.timer = time.AfterFunc(d, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.gen != gen {
			return
		}
		f.gen++
		f.region, f.until, f.timer = "", time.Time{}, nil
		n.applyFence("")
		n.log.Warn("fence lifted: its time is up")
	})
	names := n.applyFence(region)
	n.log.Warn("fence up: no traffic with these nodes", "region", region, "for", d, "nodes", names)
	if n.fence.self.Load() {
		// Peers whose calls now fail are marked down at once; the prober
		// keeps trying them and finds them again when the fence lifts.
		n.peers.kickProber()
	}
	return n.fenceResponseLocked()
}

// FenceState returns the fence up on this node (Region "" when none).
func (n *Node) FenceState() *api.FenceResponse {
	n.fence.mu.Lock()
	defer n.fence.mu.Unlock()
	return n.fenceResponseLocked()
}

// applyFence cuts this node off from the nodes on the other side of a
// fence of region ("" lifts it) and returns their names.
func (n *Node) applyFence(region string) []string {
	self := region != "" && region == n.cfg.DC
	blocked := map[string]bool{}
	var names []string
	if region != "" {
		for _, m := range n.peers.gossipMembers() {
			if m.id == n.cfg.ID || (self && m.dc == region) || (!self && m.dc != region) {
				continue
			}
			names = append(names, m.id)
			blocked[m.id] = true
			if m.gossip != "" {
				blocked[m.gossip] = true
			}
		}
		// Members known only to the ring (remembered, not in gossip).
		for id, m := range n.peers.current().members {
			if id == n.cfg.ID || blocked[id] || (self && m.DC == region) || (!self && m.DC != region) {
				continue
			}
			names = append(names, id)
			blocked[id] = true
		}
	}
	n.fence.self.Store(self)
	n.fence.gossip.Store(&blocked)
	n.tr.SetFence(names)
	return names
}

func (n *Node) fenceResponseLocked() *api.FenceResponse {
	f := &n.fence
	res := &api.FenceResponse{Node: n.cfg.ID, DC: n.cfg.DC, Region: f.region, Peers: n.tr.Fenced()}
	if !f.until.IsZero() {
		res.Until = f.until.UnixMilli()
	}
	if res.Peers == nil {
		res.Peers = []string{}
	}
	return res
}

// stopFence stops the fence's timer (Close).
func (n *Node) stopFence() {
	n.fence.mu.Lock()
	defer n.fence.mu.Unlock()
	if n.fence.timer != nil {
		n.fence.timer.Stop()
	}
	n.fence.gen++
}

// refuseFenced answers a client read or write on a node of a fenced region
// with a refusal that sends the client elsewhere, and reports whether it
// did.
func (n *Node) refuseFenced(reply wan.Replier) bool {
	if !n.fence.self.Load() {
		return false
	}
	reply.SendError(wan.CodeNotExecuted, fmt.Sprintf("meridian: region %s is fenced off (a failover drill): %s serves no reads or writes until the fence lifts; a node of another region can", n.cfg.DC, n.cfg.ID))
	return true
}

// gossipMember is one member as gossip knows it.
type gossipMember struct {
	id, dc string
	gossip string // "ip:port"
}

// gossipMembers lists the members serf knows, with their gossip addresses.
func (p *peers) gossipMembers() []gossipMember {
	if p.serf == nil {
		return nil
	}
	var out []gossipMember
	for _, m := range p.serf.Members() {
		if m.Tags[tagRole] != roleVal {
			continue
		}
		out = append(out, gossipMember{id: m.Name, dc: m.Tags[tagDC], gossip: net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port)))})
	}
	return out
}

// fencedGossip is serf's transport with the fence applied: packets to and
// from blocked addresses are dropped, and streams to them are refused.
type fencedGossip struct {
	memberlist.NodeAwareTransport
	blocked func(addr string) bool
	packets chan *memberlist.Packet
	streams chan net.Conn
	stop    chan struct{} // closed when Shutdown begins: drop, do not forward
	done    chan struct{} // closed when the inner transport has shut down
	once    sync.Once
}

func newFencedGossip(inner memberlist.NodeAwareTransport, blocked func(string) bool) *fencedGossip {
	g := &fencedGossip{NodeAwareTransport: inner, blocked: blocked, packets: make(chan *memberlist.Packet), streams: make(chan net.Conn),
		stop: make(chan struct{}), done: make(chan struct{})}
	// The forwarders read the inner transport until it has shut down: its
	// listeners block on handing over what they received, and its
	// Shutdown waits for them.
	go func() {
		for {
			select {
			case pk := <-inner.PacketCh():
				if pk.From != nil && g.blocked(pk.From.String()) {
					continue
				}
				select {
				case g.packets <- pk:
				case <-g.stop:
				}
			case <-g.done:
				return
			}
		}
	}()
	go func() {
		for {
			select {
			case c := <-inner.StreamCh():
				select {
				case g.streams <- c:
				case <-g.stop:
					c.Close()
				}
			case <-g.done:
				return
			}
		}
	}()
	return g
}

// errGossipFenced is the failure of a gossip dial to a fenced node.
var errGossipFenced = errors.New("gossip: fenced off")

func (g *fencedGossip) PacketCh() <-chan *memberlist.Packet { return g.packets }
func (g *fencedGossip) StreamCh() <-chan net.Conn           { return g.streams }

func (g *fencedGossip) WriteTo(b []byte, addr string) (time.Time, error) {
	if g.blocked(addr) {
		return time.Now(), nil // sent into a cut link
	}
	return g.NodeAwareTransport.WriteTo(b, addr)
}

func (g *fencedGossip) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if g.blocked(a.Addr) || (a.Name != "" && g.blocked(a.Name)) {
		return time.Now(), nil
	}
	return g.NodeAwareTransport.WriteToAddress(b, a)
}

func (g *fencedGossip) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if g.blocked(addr) {
		return nil, errGossipFenced
	}
	return g.NodeAwareTransport.DialTimeout(addr, timeout)
}

func (g *fencedGossip) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if g.blocked(a.Addr) || (a.Name != "" && g.blocked(a.Name)) {
		return nil, errGossipFenced
	}
	return g.NodeAwareTransport.DialAddressTimeout(a, timeout)
}

// Shutdown shuts the inner transport down while the forwarders drain it
// (memberlist may no longer read, or serf never took the transport).
func (g *fencedGossip) Shutdown() error {
	var err error
	g.once.Do(func() {
		close(g.stop)
		err = g.NodeAwareTransport.Shutdown()
		close(g.done)
	})
	return err
}

// gossipBlocked reports whether the fence drops gossip with addr (an
// "ip:port" or a node name).
func (f *fence) gossipBlocked(addr string) bool {
	m := f.gossip.Load()
	return m != nil && (*m)[addr]
}
