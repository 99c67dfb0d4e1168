package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/history"
	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/version"
	"github.com/meridian-kv/meridian/wan"
)

// Ports every simulated host uses: each node has a host of its own.
const (
	quicPort   = 7000
	gossipPort = 7946
)

// Options shape a simulated cluster. Zero fields take the defaults noted.
type Options struct {
	// Seed drives every random decision of the network; tests print it.
	Seed uint64
	// Regions default to east and west; NodesPerRegion to 3; Replicas
	// (per region, of the default keyspace) to 3.
	Regions        []string
	NodesPerRegion int
	Replicas       int
	// Inside and Between are the links inside a region and between
	// regions; the zero Between means 40 ms each way, the zero Inside
	// 250 µs.
	Inside, Between Link
	// Tweak, if set, adjusts each node's configuration before it starts.
	Tweak func(*node.Config)
	// Clock, if set, gives node id its wall clock (for skew between
	// regions); nil means the runtime's.
	Clock func(id string) func() time.Time
	// Node, if set, adjusts node id's Options before each of its starts,
	// after the cluster has set the network, disk, credentials, logger and
	// clock: a tracer provider, an audit writer. It must leave PacketConn,
	// GossipTransport and FS alone.
	Node func(id string, o *node.Options)
	// Logger receives the nodes' logs; nil discards all but errors.
	Logger *slog.Logger
}

// Cluster is a Meridian cluster whose nodes run in this process on a
// simulated Network, each on an in-memory filesystem that can lose what
// was not synced (vfs.NewCrashableMem). Start it inside a
// testing/synctest bubble so that time is simulated.
type Cluster struct {
	Net *Network

	opts      Options
	ca        *wan.CA
	caPEM     []byte
	order     []string // node ids in start order
	members   map[string]*member
	clients   []*client.Client
	hosts     uint32
	seeds     []string       // the first node of each region
	regionIdx map[string]int // region -> its index in Options.Regions
	perRegion map[string]int // nodes created per region
}

// member is one node's slot: its configuration, host and disk survive
// the node's restarts.
type member struct {
	cfg  node.Config
	host netip.Addr
	fs   *vfs.MemFS
	n    *node.Node // nil while down
	// failSyncs makes every fsync of the node's disk fail; syncsFailed
	// counts the failures injected.
	failSyncs   atomic.Bool
	syncsFailed atomic.Int64
}

// maybeError is the node's disk's fault injector (errorfs).
func (m *member) maybeError(op errorfs.Op) error {
	switch op.Kind {
	case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		if m.failSyncs.Load() {
			m.syncsFailed.Add(1)
			return errorfs.ErrInjected
		}
	}
	return nil
}

// NewCluster creates the network, the certificates and the configuration
// of every node, and starts them all. It does not wait for membership to
// converge: see WaitConverged.
func NewCluster(opts Options) (*Cluster, error) {
	if opts.Regions == nil {
		opts.Regions = []string{"east", "west"}
	}
	if opts.NodesPerRegion == 0 {
		opts.NodesPerRegion = 3
	}
	if opts.Replicas == 0 {
		opts.Replicas = min(3, opts.NodesPerRegion)
	}
	if opts.Between == (Link{}) {
		opts.Between = Link{Latency: 40 * time.Millisecond}
	}
	if opts.Inside == (Link{}) {
		opts.Inside = Link{Latency: 250 * time.Microsecond}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{Net: NewNetwork(opts.Seed), opts: opts, members: map[string]*member{}, regionIdx: map[string]int{}, perRegion: map[string]int{}}
	c.Net.SetLinks(opts.Inside, opts.Between)
	var err error
	if c.ca, _, err = wan.NewCA("sim", time.Now(), 24*time.Hour*365); err != nil {
		return nil, err
	}
	c.caPEM = c.ca.CertPEM
	for ri, dc := range opts.Regions {
		c.regionIdx[dc] = ri
		for range opts.NodesPerRegion {
			c.newMember(dc)
		}
	}
	for _, id := range c.order {
		m := c.members[id]
		if strings.HasSuffix(id, "-1") {
			c.seeds = append(c.seeds, m.cfg.Gossip)
		}
	}
	for _, id := range c.order {
		c.members[id].cfg.Seeds = c.seeds
	}
	for _, id := range c.order {
		if err := c.Start(id); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// newMember creates the configuration and disk of the next node of region
// dc (ids are dc-1, dc-2, …) and returns its id.
func (c *Cluster) newMember(dc string) string {
	c.perRegion[dc]++
	i := c.perRegion[dc]
	id := fmt.Sprintf("%s-%d", dc, i)
	host := netip.AddrFrom4([4]byte{10, byte(c.regionIdx[dc] + 1), byte(i >> 8), byte(i)})
	c.Net.AddHost(host, dc)
	repl := map[string]int{}
	for _, r := range c.opts.Regions {
		repl[r] = c.opts.Replicas
	}
	cfg := node.Config{
		ID:             id,
		DC:             dc,
		Rack:           fmt.Sprintf("rack%d", (i-1)%3+1),
		Listen:         netip.AddrPortFrom(host, quicPort).String(),
		Gossip:         netip.AddrPortFrom(host, gossipPort).String(),
		Seeds:          c.seeds,
		GossipProfile:  "local",
		InsecureGossip: true,
		DataDir:        "/data/" + id,
		TLS:            wan.TLSFiles{CA: "(memory)", Cert: "(memory)", Key: "(memory)"},
		Keyspaces:      map[string]node.Keyspace{"default": {Replication: repl}},
		Auth:           node.AuthConfig{Superusers: []string{"admin"}},
	}
	if c.opts.Tweak != nil {
		c.opts.Tweak(&cfg)
	}
	c.members[id] = &member{cfg: cfg, host: host, fs: vfs.NewCrashableMem()}
	c.order = append(c.order, id)
	return id
}

// Add starts a new node in region dc, joining through the seeds, and
// returns its id. Clients made before do not know it (they reach it
// through the others).
func (c *Cluster) Add(dc string) (string, error) {
	if _, ok := c.regionIdx[dc]; !ok {
		return "", fmt.Errorf("sim: no region %s", dc)
	}
	id := c.newMember(dc)
	return id, c.Start(id)
}

// IDs returns the node ids in region order.
func (c *Cluster) IDs() []string { return append([]string(nil), c.order...) }

// Region returns the ids of region dc's nodes.
func (c *Cluster) Region(dc string) []string {
	var ids []string
	for _, id := range c.order {
		if c.members[id].cfg.DC == dc {
			ids = append(ids, id)
		}
	}
	return ids
}

// Host returns node id's host address (for CutHosts and Isolate).
func (c *Cluster) Host(id string) netip.Addr { return c.members[id].host }

// Node returns node id, or nil while it is down.
func (c *Cluster) Node(id string) *node.Node { return c.members[id].n }

// Config returns node id's configuration.
func (c *Cluster) Config(id string) node.Config { return c.members[id].cfg }

// Start starts node id on its disk (after Kill or PowerLoss).
func (c *Cluster) Start(id string) error {
	m := c.members[id]
	if m.n != nil {
		return fmt.Errorf("sim: %s is running", id)
	}
	cert, key, err := c.ca.IssueRequest(wan.CertRequest{Name: id, Role: wan.RoleNode, Hosts: []string{m.host.String()}, DC: m.cfg.DC, Now: time.Now(), Validity: 24 * time.Hour * 365})
	if err != nil {
		return err
	}
	creds, err := wan.NewCredentials(c.caPEM, cert, key, time.Now())
	if err != nil {
		return err
	}
	pc, err := c.Net.Listen(netip.AddrPortFrom(m.host, quicPort))
	if err != nil {
		return err
	}
	gt, err := c.Net.GossipTransport(netip.AddrPortFrom(m.host, gossipPort))
	if err != nil {
		pc.Close()
		return err
	}
	opts := node.Options{FS: errorfs.Wrap(m.fs, errorfs.InjectorFunc(m.maybeError)), PacketConn: pc, GossipTransport: gt, Credentials: creds, Logger: c.opts.Logger}
	if c.opts.Clock != nil {
		opts.Now = c.opts.Clock(id)
	}
	if c.opts.Node != nil {
		c.opts.Node(id, &opts)
	}
	n, err := node.Start(m.cfg, opts)
	if err != nil {
		pc.Close()
		gt.Shutdown()
		return fmt.Errorf("sim: starting %s: %w", id, err)
	}
	m.n = n
	return nil
}

// Stop stops node id cleanly (node.Close): it tells its peers it leaves.
// Its disk keeps everything; Start starts it again.
func (c *Cluster) Stop(id string) error {
	m := c.members[id]
	if m.n == nil {
		return nil
	}
	err := m.n.Close()
	m.n = nil
	return err
}

// Kill stops node id as a crash of the process would: it leaves no word
// to its peers, and what its disk synced survives (the operating system
// keeps the rest too: see PowerLoss for a machine's crash).
func (c *Cluster) Kill(id string) error {
	m := c.members[id]
	if m.n == nil {
		return nil
	}
	err := m.n.Kill()
	m.n = nil
	return err
}

// PowerLoss crashes node id's machine: the node stops, and its disk keeps
// only what was synced (unsynced data survives with the given percentage
// chance per block, drawn from rng).
func (c *Cluster) PowerLoss(id string, unsyncedPercent int, rng *rand.Rand) error {
	m := c.members[id]
	// Freeze the disk first: what the node does while stopping must not
	// reach the clone.
	clone := m.fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsyncedPercent, RNG: rng})
	err := c.Kill(id)
	m.fs = clone
	return err
}

// Backup copies node id's disk as it is now, synced or not (a snapshot
// of a running machine's volume).
func (c *Cluster) Backup(id string) *vfs.MemFS {
	return c.members[id].fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 100, RNG: rand.New(rand.NewPCG(0, 0))})
}

// Restore puts a Backup back as node id's disk; the node must be down.
// The node comes back with the old data and no word to its peers of what
// it lost: silent divergence, for repair to find.
func (c *Cluster) Restore(id string, disk *vfs.MemFS) error {
	m := c.members[id]
	if m.n != nil {
		return fmt.Errorf("sim: %s is running", id)
	}
	m.fs = disk
	return nil
}

// FailSyncs makes every fsync on node id's disk fail (on) or succeed
// again (off), and returns how many have failed so far.
func (c *Cluster) FailSyncs(id string, on bool) int64 {
	m := c.members[id]
	m.failSyncs.Store(on)
	return m.syncsFailed.Load()
}

// Client returns a client whose home region is dc, connected over the
// simulated network from a host of its own in dc, that knows every node.
// The cluster closes it.
func (c *Cluster) Client(dc string) (*client.Client, error) {
	return c.Dial(client.Config{DC: dc})
}

// Dial returns a client configured by cfg, connected over the simulated
// network from a host of its own in cfg.DC. Fields left zero take these
// values: Nodes every node of the cluster, Credentials a certificate for
// the superuser "admin" issued by the cluster's CA, Timeout 5 s. The
// cluster closes the client (closing it earlier is harmless).
func (c *Cluster) Dial(cfg client.Config) (*client.Client, error) {
	if cfg.Credentials == nil {
		creds, err := c.Credentials("admin", wan.RoleClient)
		if err != nil {
			return nil, err
		}
		cfg.Credentials = creds
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Nodes == nil {
		for _, id := range c.order {
			m := c.members[id]
			cfg.Nodes = append(cfg.Nodes, client.Node{ID: id, DC: m.cfg.DC, Addr: m.cfg.Listen})
		}
	}
	pc, err := c.Endpoint(cfg.DC)
	if err != nil {
		return nil, err
	}
	cfg.PacketConn = pc
	cl, err := client.Dial(context.Background(), &cfg)
	if err != nil {
		pc.Close()
		return nil, err
	}
	c.clients = append(c.clients, cl)
	return cl, nil
}

// Endpoint returns a datagram socket on a new host of its own in region
// dc, for a QUIC dialer or listener the caller drives itself (package
// wan's PacketConn options). The caller closes it.
func (c *Cluster) Endpoint(dc string) (*Endpoint, error) {
	c.hosts++
	host := netip.AddrFrom4([4]byte{10, 200, byte(c.hosts >> 8), byte(c.hosts)})
	c.Net.AddHost(host, dc)
	return c.Net.Listen(netip.AddrPortFrom(host, 40000))
}

// Credentials returns a certificate for name in role, issued now by the
// cluster's CA, with the CA as the only trusted root. A node's
// credentials (RoleNode, its id) name no host: they serve to dial, not to
// listen.
func (c *Cluster) Credentials(name string, role wan.Role) (*wan.Credentials, error) {
	cert, key, err := c.ca.IssueRequest(wan.CertRequest{Name: name, Role: role, Now: time.Now(), Validity: 24 * time.Hour * 365})
	if err != nil {
		return nil, err
	}
	return wan.NewCredentials(c.caPEM, cert, key, time.Now())
}

// CA returns the cluster's certificate authority, for certificates the
// cluster does not issue itself.
func (c *Cluster) CA() *wan.CA { return c.ca }

// WaitConverged waits, polling every simulated 100 ms, until every
// running node sees every other running node up and verified (so every
// ring holds every running node), or until limit of simulated time has
// passed.
func (c *Cluster) WaitConverged(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		err := c.converged()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sim: not converged after %v: %w", limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *Cluster) converged() error {
	var running []string
	for _, id := range c.order {
		if c.members[id].n != nil {
			running = append(running, id)
		}
	}
	for _, id := range running {
		n := c.members[id].n
		for _, peer := range running {
			if peer == id {
				continue
			}
			if st := n.PeerState(peer); st != node.StateUp {
				return fmt.Errorf("%s sees %s %s", id, peer, st)
			}
		}
	}
	return nil
}

// drainTime is how long Close lets simulated time run after stopping the
// nodes: memberlist's probes outlive its Shutdown until their timeouts,
// and a synctest bubble may not end with goroutines left.
const drainTime = time.Minute

// Close closes the clients, stops every running node and lets simulated
// time run on until the goroutines the gossip library leaves behind end.
func (c *Cluster) Close() error {
	defer time.Sleep(drainTime)
	var errs []error
	for _, cl := range c.clients {
		errs = append(errs, cl.Close())
	}
	for _, id := range c.order {
		if n := c.members[id].n; n != nil {
			errs = append(errs, n.Kill())
			c.members[id].n = nil
		}
	}
	c.Net.Close()
	return errors.Join(errs...)
}

// Scan reads keyspace ks straight from the store of every running node,
// not through any request path: node → key → sorted live values. Keys
// whose every sibling is deleted map to no values.
func (c *Cluster) Scan(ks string) (map[string]history.State, error) {
	out := map[string]history.State{}
	for _, id := range c.order {
		n := c.members[id].n
		if n == nil {
			continue
		}
		st := history.State{}
		err := n.Store().Scan(ks, 0, math.MaxUint64, func(_ uint64, key []byte, obj *version.Object) error {
			vals := []string{}
			for _, v := range obj.Values() {
				vals = append(vals, string(v))
			}
			sort.Strings(vals)
			st[string(key)] = vals
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("sim: scanning %s: %w", id, err)
		}
		out[id] = st
	}
	return out, nil
}

// PendingHints counts the hints every running node holds.
func (c *Cluster) PendingHints() int {
	total := 0
	for _, id := range c.order {
		if n := c.members[id].n; n != nil {
			for _, st := range n.PendingHints() {
				total += st.Count
			}
		}
	}
	return total
}
