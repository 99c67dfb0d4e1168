package node

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"

	"github.com/meridian-kv/meridian/placement"
)

// Serf tags a node publishes. Gossip is only a hint: a member becomes a
// replica target once a QUIC handshake proved its certificate names it
// (health.verified).
const (
	tagRole = "role"
	tagDC   = "dc"
	tagRack = "rack"
	tagAddr = "addr"
	roleVal = "meridian"
	// tagState is set to stateFailedVal by a node whose store failed: it
	// acknowledges nothing, and peers show it as failed.
	tagState       = "state"
	stateFailedVal = "failed"
)

// memberInfo is one member as the ring and the transport see it.
type memberInfo struct {
	ID, DC, Rack, Addr string
	Status             serf.MemberStatus
	// StoreFailed: the member reports that its store failed.
	StoreFailed bool
}

// view is an immutable snapshot of the membership: the ring every node
// computes identically from the same member set, and addresses.
type view struct {
	ring    *placement.Ring
	members map[string]memberInfo
	// inRing holds the members placed on the ring: this node and those
	// that proved their identity (proven.go).
	inRing map[string]bool
}

// startGossip creates the serf agent, joins the seeds and starts following
// membership events.
func (p *peers) startGossip() error {
	host, portStr, err := net.SplitHostPort(p.cfg.Gossip)
	if err != nil {
		return fmt.Errorf("node: gossip address: %w", err)
	}
	port, _ := strconv.Atoi(portStr)

	var ml *memberlist.Config
	switch p.cfg.GossipProfile {
	case "lan":
		ml = memberlist.DefaultLANConfig()
	case "local":
		ml = memberlist.DefaultLocalConfig()
	default:
		ml = memberlist.DefaultWANConfig()
	}
	ml.BindAddr, ml.BindPort = host, port
	ml.AdvertiseAddr, ml.AdvertisePort = host, port
	logger := log.New(&serfLogWriter{log: p.log}, "", 0)
	gtr := p.gossipTr
	if gtr == nil {
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{host}, BindPort: port, Logger: logger})
		if err != nil {
			return fmt.Errorf("node: starting gossip on %s: %w", p.cfg.Gossip, err)
		}
		if port == 0 {
			port = nt.GetAutoBindPort()
			ml.BindPort, ml.AdvertisePort = port, port
		}
		gtr = nt
	}
	if p.gossipBlocked != nil {
		gtr = newFencedGossip(gtr, p.gossipBlocked)
	}
	ml.Transport = gtr
	if len(p.cfg.GossipKeys) > 0 {
		keys := make([][]byte, len(p.cfg.GossipKeys))
		for i, k := range p.cfg.GossipKeys {
			keys[i], _ = base64.StdEncoding.DecodeString(k) // validated in Config.Validate
		}
		kr, err := memberlist.NewKeyring(keys, keys[0])
		if err != nil {
			return fmt.Errorf("node: gossip keyring: %w", err)
		}
		ml.Keyring = kr
		ml.GossipVerifyIncoming, ml.GossipVerifyOutgoing = true, true
	}
	ml.Logger = logger

	events := make(chan serf.Event, 256)
	sc := serf.DefaultConfig()
	sc.NodeName = p.cfg.ID
	sc.Tags = map[string]string{tagRole: roleVal, tagDC: p.cfg.DC, tagRack: p.cfg.Rack, tagAddr: p.advertisedAddr()}
	sc.MemberlistConfig = ml
	sc.EventCh = events
	sc.Logger = logger
	if p.onDisk {
		// The snapshot lets a restarted node rejoin the peers it knew even
		// if its seeds are down.
		sc.SnapshotPath = filepath.Join(p.cfg.DataDir, "serf.snapshot")
	}
	sc.RejoinAfterLeave = true
	sc.ReconnectTimeout = p.cfg.ReconnectTimeout
	if sc.ReconnectTimeout > 0 {
		sc.TombstoneTimeout = sc.ReconnectTimeout
	}
	p.serf, err = serf.Create(sc)
	if err != nil {
		gtr.Shutdown() // ours to close when serf never took it
		return fmt.Errorf("node: starting gossip on %s: %w", p.cfg.Gossip, err)
	}
	p.refreshView()
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		for {
			select {
			case e := <-events:
				if me, ok := e.(serf.MemberEvent); ok {
					if me.Type == serf.EventMemberReap {
						p.mu.Lock()
						if p.reaped == nil {
							p.reaped = map[string]bool{}
						}
						for _, m := range me.Members {
							p.reaped[m.Name] = true
						}
						p.mu.Unlock()
					}
					p.refreshView()
				}
			case <-p.ctx.Done():
				return
			}
		}
	}()
	if seeds := p.otherSeeds(); len(seeds) > 0 {
		if joined, err := p.serf.Join(seeds, true); err != nil {
			p.log.Warn("could not reach any seed yet; will keep trying", "seeds", seeds, "err", err)
		} else {
			p.log.Info("joined the cluster", "contacted", joined)
		}
		p.refreshView()
		p.bg.Add(1)
		go p.rejoinSeeds()
	}
	return nil
}

// rejoinInterval is how often seeds that are not alive members are
// contacted again. For youngFor after start every seed is, so that a node
// whose join raced with others' learns the whole membership by a full state
// exchange instead of waiting for gossip's periodic one (30s on LAN).
const (
	rejoinInterval = 2 * time.Second
	youngFor       = 30 * time.Second
)

// rejoinSeeds keeps contacting seeds that are not alive members: nodes that
// started before their seeds, or were cut off from them, merge their views
// (a full push-pull) as soon as a seed answers, instead of waiting for
// gossip's periodic state sync.
func (p *peers) rejoinSeeds() {
	defer p.bg.Done()
	started := time.Now()
	t := time.NewTicker(rejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		alive := map[string]bool{}
		for _, m := range p.serf.Members() {
			if m.Status == serf.StatusAlive {
				alive[net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port)))] = true
			}
		}
		var missing []string
		young := time.Since(started) < youngFor
		for _, s := range p.otherSeeds() {
			if !alive[s] || young {
				missing = append(missing, s)
			}
		}
		if len(missing) > 0 {
			if _, err := p.serf.Join(missing, true); err == nil {
				p.refreshView()
			}
		}
	}
}

// otherSeeds returns the configured seeds except this node's own address.
func (p *peers) otherSeeds() []string {
	var out []string
	for _, s := range p.cfg.Seeds {
		if s != p.cfg.Gossip {
			out = append(out, s)
		}
	}
	return out
}

// advertisedAddr is the QUIC address other nodes dial.
func (p *peers) advertisedAddr() string {
	if p.cfg.Advertise != "" {
		return p.cfg.Advertise
	}
	return p.tr.Addr().String()
}

// refreshView rebuilds the ring from serf's member list. Members that
// failed and members that left gracefully both stay on it until serf reaps
// them (reconnect_timeout): a stop and start — docker stop, a service
// restart, an upgrade — is a temporary outage, not a membership change
// (Dynamo §4.8). Were a member that left taken off the ring, the writes
// made while it was away would neither be sent to it nor hinted for it,
// and once it rejoined, a replica again, nothing but repair would bring
// them. A member that left is not usable (health), so its writes are
// hinted, as a failed one's are. Gossip is only a
// hint: a member is placed on the ring once it proved, over mutual TLS,
// that it holds the node certificate for its name (proven.go); until then
// it is shown as unverified and gets no data.
func (p *peers) refreshView() {
	p.mu.Lock()
	defer p.mu.Unlock()
	var infos []memberInfo
	for _, m := range p.serf.Members() {
		if m.Tags[tagRole] != roleVal {
			continue
		}
		infos = append(infos, memberInfo{ID: m.Name, DC: m.Tags[tagDC], Rack: m.Tags[tagRack], Addr: m.Tags[tagAddr], Status: m.Status, StoreFailed: m.Tags[tagState] == stateFailedVal})
	}
	// Verified members serf does not list (yet), as failed ones
	// (remembered.go).
	infos = append(infos, p.rememberLocked(infos, p.reaped)...)
	p.reaped = nil
	sort.Slice(infos, func(i, j int) bool { return infos[i].ID < infos[j].ID })
	old := p.cur.Load()
	same := old != nil && len(old.members) == len(infos)
	pm := make([]placement.Member, 0, len(infos))
	members := make(map[string]memberInfo, len(infos))
	inRing := map[string]bool{}
	for _, m := range infos {
		members[m.ID] = m
		if m.ID == p.cfg.ID || p.provenPeer(m.ID) {
			pm = append(pm, placement.Member{ID: m.ID, DC: m.DC, Rack: m.Rack})
			inRing[m.ID] = true
		}
		if same {
			o, ok := old.members[m.ID]
			same = ok && o.DC == m.DC && o.Rack == m.Rack && o.Addr == m.Addr && old.inRing[m.ID] == inRing[m.ID]
		}
	}
	for _, m := range infos {
		p.health.gossip(m.ID, m.Status, m.StoreFailed)
	}
	if same {
		// Only statuses changed: keep the ring, refresh the statuses.
		p.cur.Store(&view{ring: old.ring, members: members, inRing: inRing})
		return
	}
	ring, err := placement.NewRing(pm, p.cfg.VNodes)
	if err != nil {
		p.log.Error("membership gives no valid ring; keeping the previous one", "err", err)
		return
	}
	p.cur.Store(&view{ring: ring, members: members, inRing: inRing})
	p.log.Info("ring rebuilt", "members", len(infos), "on_ring", len(inRing))
	p.kickProber()
}

// serfLogWriter routes serf and memberlist's log lines into slog: their
// [WARN] and [ERR] lines as warnings and errors, the rest at debug level.
type serfLogWriter struct{ log *slog.Logger }

func (w *serfLogWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	switch {
	case strings.Contains(line, "use of closed network connection"):
		// Gossip still in flight while this node shuts down.
		w.log.Debug(line, "component", "gossip")
	case strings.Contains(line, "[ERR]"):
		w.log.Error(line, "component", "gossip")
	case strings.Contains(line, "[WARN]"):
		w.log.Warn(line, "component", "gossip")
	default:
		w.log.Debug(line, "component", "gossip")
	}
	return len(p), nil
}

var _ io.Writer = (*serfLogWriter)(nil)
