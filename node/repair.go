package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/codec"
	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/repair"
	"github.com/meridian-kv/meridian/telemetry"
	"github.com/meridian-kv/meridian/version"
	"github.com/meridian-kv/meridian/wan"
)

// Anti-entropy repair (Dynamo §4.7) between two replicas A and B, for one
// keyspace and one token range: both build a Merkle tree over the keys
// they are both replicas of (repair.BuildTree over a filtered scan); A
// walks B's tree top-down, fetching only the children of differing nodes
// (typeRepairLevel); for the differing leaves A sends B its key digests and
// gets back B's objects that differ and the keys B lacks
// (typeRepairCompare, in batches and chunks: repair_stream.go); A merges
// what it lacks and pushes B what B lacks (typeRepairPush). Everything is merged with version.Merge: repair never
// overwrites, and never resurrects what a tombstone superseded.
//
// The node that receives a client's repair request orchestrates: for every
// pair of datacenters among the requested regions and every segment of the
// ring, it asks each pair of nodes of those datacenters to run that
// session (typeRepairRun), and checkpoints the pair's repair.Progress in
// its store after every segment, so a repair that stops resumes there.

// repairSegments is how many ranges a pass cuts the ring into, and
// diffStride how many tree levels one comparison round trip descends
// (repair's benchmarks: stride 2 halves the round trips for about the
// same hashes).
const (
	repairSegments = 16
	diffStride     = 2
	// repairCPU bounds the repair work that scans the store (tree builds,
	// key lists) running at once on a node, as initiator or responder.
	repairCPU = 1
	// repairSessions bounds the sessions a node orchestrates at once.
	// Sessions spend most of their time waiting on WAN round trips, so
	// many can wait while few compute.
	repairSessions = 16
	// repairSegmentsInFlight is how many segments a manual repair works
	// on at once.
	//
	// These three, with scanIdle, trade repair speed for foreground
	// latency. Measured side by side (BenchmarkPutP99DuringRepair
	// -benchtime 3000x: 6 in-process nodes on 2 cores, put p99 repairing /
	// idle, and how many repairs, the first copying 5000 keys, completed
	// meanwhile; and a full repair --now of an almost empty meridian dev
	// --wan-latency 60ms, 3 regions x 3 nodes):
	//
	//	scan slots            sessions  segments  p99 ratio (repairs)  WAN repair
	//	2 per node, no idle   2         1         1.6x (0)             86 s
	//	2 per node, no idle   16        8         11x (34)             9.6 s
	//	1 per node, idle 1x   16        8         3.0x (4)             9.6 s
	//	1 per process, 1x     16        8         1.6-1.9x (1)         10 s
	//
	// The last was the setting, measured with one slot shared by the
	// process: p99 ratios 1.60, 1.87, 1.97, 1.88 in four runs. The slot is
	// now per node (repairSlots): in production a machine runs one node,
	// so that is the same bound, and the nodes of one process (meridian
	// dev, tests) no longer wait on each other's scans; six nodes on two
	// cores then scan as the "1 per node" row did. With scanIdle 3 (scans at most a quarter of a core) three runs
	// gave 1.72, 1.58, 1.47 (mean 1.59x), but not even the first repair
	// finished during the measurement.
	repairSegmentsInFlight = 8
)

// scanIdle is how many times its scan's duration a CPU slot stays idle
// after each scan (1: a slot scans at most half the time).
const scanIdle = 1

// repairSlots are the node's semaphores for repair work, each node its
// own.
type repairSlots struct {
	cpu, sessions chan struct{}

	mu sync.Mutex
	// idleFor is how long a CPU slot stays taken after a scan that took
	// the given time (scanIdle times as long; tests set it).
	idleFor func(scan time.Duration) time.Duration
	stopped bool          // set by close: slots are released at once
	stop    chan struct{} // closed by close: idle waits end
	idle    sync.WaitGroup
}

func newRepairSlots() *repairSlots {
	return &repairSlots{
		cpu:      make(chan struct{}, repairCPU),
		sessions: make(chan struct{}, repairSessions),
		idleFor:  func(scan time.Duration) time.Duration { return scanIdle * scan },
		stop:     make(chan struct{}),
	}
}

// releaseCPU frees a CPU slot taken for a scan that took scan, after the
// idle time that follows it, or at once once the slots are closed.
func (s *repairSlots) releaseCPU(scan time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	idle := s.idleFor(scan)
	if s.stopped || idle <= 0 {
		<-s.cpu
		return
	}
	s.idle.Add(1)
	go func() {
		defer s.idle.Done()
		t := time.NewTimer(idle)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.stop:
		}
		<-s.cpu
	}()
}

// close ends every idle wait and returns once their slots are released;
// later scans release their slot at once.
func (s *repairSlots) close() {
	s.mu.Lock()
	if !s.stopped {
		s.stopped = true
		close(s.stop)
	}
	s.mu.Unlock()
	s.idle.Wait()
}

// acquire takes a slot of sem, or returns ctx's error.
func acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sharedSource is the store as seen by a repair between this node and
// peer: only the keys of which both are replicas.
type sharedSource struct {
	n    *Node
	ring *placement.Ring
	rep  placement.Replication
	peer string
}

func (s sharedSource) Scan(ks string, from, to uint64, fn func(uint64, []byte, *version.Object) error) error {
	return s.n.store.Scan(ks, from, to, func(tok uint64, key []byte, obj *version.Object) error {
		p := s.ring.Plan(tok, s.rep)
		if !p.Contains(s.n.cfg.ID) || !p.Contains(s.peer) {
			return nil
		}
		return fn(tok, key, obj)
	})
}

func (n *Node) sharedWith(ks, peer string) (sharedSource, error) {
	k, cerr := n.keyspace(ks)
	if cerr != nil {
		return sharedSource{}, cerr
	}
	return sharedSource{n: n, ring: n.ring(), rep: placement.Replication(k.Replication), peer: peer}, nil
}

// treeCache keeps the responder's trees for the few seconds a session
// walks them.
type treeCache struct {
	mu    sync.Mutex
	trees map[string]cachedTree
	// sizes remembers how many keys an initiator's last tree of a session
	// (keyspace, range, peer) held, so the next one is built at the right
	// depth at once instead of counting first.
	sizes map[string]int
}

type cachedTree struct {
	t     *repair.Tree
	built time.Time // for expiry (real time)
	at    time.Time // when its scan started, by n.now (tombstones.go)
}

const treeCacheTTL = time.Minute

func (n *Node) responderTree(ctx context.Context, ks string, r repair.Range, depth int, peer string) (*repair.Tree, error) {
	key := treeKey(ks, r, depth, peer)
	now := time.Now()
	if t, ok := n.repairer.cachedTree(key, now); ok {
		return t, nil
	}
	// One session asks for its tree's levels one round trip at a time, so
	// no two requests build the same tree at once.
	src, err := n.sharedWith(ks, peer)
	if err != nil {
		return nil, err
	}
	at := n.now()
	var t *repair.Tree
	if err := n.repairer.scanning(ctx, func() (err error) {
		t, err = repair.BuildTree(src, ks, r, depth)
		return err
	}); err != nil {
		return nil, err
	}
	n.repairer.keepTree(key, t, now, at)
	return t, nil
}

// treeKey names the responder's tree of one session in the cache.
func treeKey(ks string, r repair.Range, depth int, peer string) string {
	return fmt.Sprintf("%s|%s|%d|%s", ks, r, depth, peer)
}

// serveRepair answers the repair messages of serveReplica.
func (n *Node) serveRepair(ctx context.Context, from string, req *wan.Envelope, send func(wan.MsgType, any)) error {
	switch req.Type {
	case typeRepairLevel:
		var m repairLevel
		if err := decodeRequest(req, &m); err != nil {
			return err
		}
		t, err := n.responderTree(ctx, m.Keyspace, m.Range, m.Depth, m.Peer)
		if err != nil {
			return err
		}
		hashes, err := n.repairer.treeLevel(ctx, t, m.Level, m.Indexes)
		if err != nil {
			return err
		}
		send(typeRepairLevel, &repairHashes{Hashes: hashes})
	case typeRepairDigests:
		return errors.New("node: repair: this node takes digests only in batches (message type 48); run the same version on every node")
	case typeRepairPush:
		var m repairPush
		if err := decodeRequest(req, &m); err != nil {
			return err
		}
		if err := n.mergeMany(ctx, m.Keyspace, m.Objects); err != nil {
			return err
		}
		send(typeRepairPush, &replicaAck{Node: n.cfg.ID})
	case typeRepairDone:
		var m repairDone
		if err := decodeRequest(req, &m); err != nil {
			return err
		}
		if m.Peer != from {
			return fmt.Errorf("session of %s reported done by %s", m.Peer, from)
		}
		// The initiator merged what this node sent and pushed what it
		// lacked: both hold everything this node's tree saw.
		if at, ok := n.repairer.dropTree(m.Keyspace, m.Range, m.Depth, m.Peer); ok {
			if err := n.repairer.recordSynced(m.Keyspace, m.Peer, m.Range, at); err != nil {
				return err
			}
			if err := n.tombstones.closeGateIfSynced(); err != nil {
				return err
			}
		}
		send(typeRepairDone, &replicaAck{Node: n.cfg.ID})
	case typeRepairProgress:
		var m repairRun
		if err := decodeRequest(req, &m); err != nil {
			return err
		}
		ps, err := n.RepairProgress(m.Keyspace)
		if err != nil {
			return err
		}
		var out repairProgressReply
		for _, p := range ps {
			b, err := repair.EncodeProgress(p)
			if err != nil {
				return err
			}
			out.Progress = append(out.Progress, b)
		}
		send(typeRepairProgress, &out)
	case typeRepairRun:
		var m repairRun
		if err := decodeRequest(req, &m); err != nil {
			return err
		}
		st, err := n.repairRange(ctx, m.Keyspace, m.Range, m.Peer, m.BytesPerSecond)
		if err != nil {
			return err
		}
		send(typeRepairRun, &repairStats{Stats: st})
	}
	return nil
}

func sortedObjects(m map[string]*version.Object) []keyObject {
	out := make([]keyObject, 0, len(m))
	for k, o := range m {
		out = append(out, keyObject{Key: []byte(k), Object: o})
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i].Key) < string(out[j].Key) })
	return out
}

// repairPeer is the responder's tree, over QUIC, as repair.Peer sees it.
type repairPeer struct {
	n     *Node
	peer  string
	ks    string
	r     repair.Range
	depth int
	bytes *int64
}

func (p repairPeer) Level(ctx context.Context, level int, indexes []int) ([][]byte, error) {
	out := make([][]byte, 0, len(indexes))
	for len(indexes) > 0 {
		// A request of repairLevelChunk indexes and its answer of as many
		// hashes stay far below a frame however many leaves differ.
		part := indexes[:min(len(indexes), repairLevelChunk)]
		indexes = indexes[len(part):]
		req := &repairLevel{Keyspace: p.ks, Range: p.r, Depth: p.depth, Peer: p.n.cfg.ID, Level: level, Indexes: part}
		*p.bytes += encodedLen(req)
		err := p.n.peers.call(ctx, p.peer, typeRepairLevel, req, func(e *wan.Envelope) error {
			*p.bytes += int64(len(e.Payload))
			var h repairHashes
			if err := e.Decode(&h); err != nil {
				return err
			}
			if len(h.Hashes) != len(part) {
				return fmt.Errorf("%w: %d hashes for %d indexes", repair.ErrPeerProtocol, len(h.Hashes), len(part))
			}
			out = append(out, h.Hashes...)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// repairLevelChunk bounds the node indexes of one tree-level request
// (answered with 17 bytes per index).
const repairLevelChunk = 1 << 14

func encodedLen(v any) int64 {
	b, _ := codec.Marshal(v)
	return int64(len(b))
}

// repairRange runs one session: this node (the initiator) against peer,
// over range r of keyspace ks.
// Bytes to the peer's region are paced at rate bytes per second (0: no
// limit).
//
// A session whose connection to the peer was lost with a request in
// flight runs once more, on a new connection: everything a session sends
// is a read or a merge, so repeating it is safe. That is what a peer that
// restarted does to the connection this node still holds to its previous
// process (it answers with a stateless reset); without the second run,
// the first repair after a restart failed its ranges with that peer.
func (n *Node) repairRange(ctx context.Context, ks string, r repair.Range, peer string, rate int64) (repair.RangeStats, error) {
	st, err := n.repairSession(ctx, ks, r, peer, rate)
	if err != nil && errors.Is(err, wan.ErrOutcomeUnknown) && ctx.Err() == nil {
		n.log.Info("repair session lost its connection; running it again", "keyspace", ks, "range", r.String(), "peer", peer, "err", err)
		sent := st.BytesSent // the first run's bytes crossed the link too
		st, err = n.repairSession(ctx, ks, r, peer, rate)
		st.BytesSent += sent
	}
	return st, err
}

func (n *Node) repairSession(ctx context.Context, ks string, r repair.Range, peer string, rate int64) (st repair.RangeStats, err error) {
	depth := -1
	ctx, span := n.tracer.Start(ctx, "repair.range "+peer, trace.WithAttributes(telemetry.Namespace(ks), telemetry.Node(peer)))
	defer func() { spanError(span, err); span.End() }()
	src, err := n.sharedWith(ks, peer)
	if err != nil {
		return st, err
	}
	started := n.now()
	defer func() {
		if err == nil {
			err = n.finishSession(ctx, ks, r, peer, started, depth)
		}
	}()
	sizeKey := fmt.Sprintf("%s|%s|%s", ks, r, peer)
	guess := 0 // DefaultDepth
	if size, ok := n.repairer.treeSize(sizeKey); ok {
		guess = repair.DepthFor(size)
	}
	var local *repair.Tree
	err = n.repairer.scanning(ctx, func() (err error) {
		if local, err = repair.BuildTree(src, ks, r, guess); err != nil {
			return err
		}
		if d := repair.DepthFor(local.Count()); d != local.Depth() {
			// Size the tree to the range: about 2 keys a leaf keeps what
			// differing leaves drag along small (see repair's doc).
			local, err = repair.BuildTree(src, ks, r, d)
		}
		return err
	})
	if err != nil {
		return st, err
	}
	n.repairer.setTreeSize(sizeKey, local.Count())
	depth = local.Depth()
	st.KeysCompared = int64(local.Count())
	peerTree := repairPeer{n: n, peer: peer, ks: ks, r: r, depth: local.Depth(), bytes: &st.BytesSent}
	leaves, _, err := repair.DiffWithPeerStride(ctx, local, peerTree, diffStride)
	if err != nil {
		return st, fmt.Errorf("comparing trees with %s: %w", peer, err)
	}
	if len(leaves) == 0 {
		return st, nil
	}
	return st, n.exchangeKeys(ctx, span, src, ks, r, local.Depth(), leaves, peer, rate, &st)
}

// finishSession tells the responder the session completed and records it
// on both sides, for tombstone collection and the read gate.
func (n *Node) finishSession(ctx context.Context, ks string, r repair.Range, peer string, started time.Time, depth int) error {
	if depth < 0 {
		return nil
	}
	if err := n.peers.call(ctx, peer, typeRepairDone, &repairDone{Keyspace: ks, Range: r, Depth: depth, Peer: n.cfg.ID}, decodeAck); err != nil {
		return fmt.Errorf("finishing the session with %s: %w", peer, err)
	}
	if err := n.repairer.recordSynced(ks, peer, r, started); err != nil {
		return err
	}
	return n.tombstones.closeGateIfSynced()
}

// subset returns the entries of m whose keys are in keys.
func subset(m, keys map[string]*version.Object) map[string]*version.Object {
	out := make(map[string]*version.Object, len(keys))
	for k := range keys {
		if o, ok := m[k]; ok {
			out[k] = o
		}
	}
	return out
}

// progressName is where a datacenter pair's checkpoint lives in the store.
func progressName(ks string, pair [2]string) string {
	return fmt.Sprintf("progress/%s/%s/%s", ks, pair[0], pair[1])
}

// RepairProgress returns the checkpoints of every datacenter pair this
// node has orchestrated repairs of, for keyspace ks.
func (n *Node) RepairProgress(ks string) ([]repair.Progress, error) {
	dcs := n.ring().DCs()
	var out []repair.Progress
	for i, a := range dcs {
		for _, b := range dcs[i:] {
			p, err := n.repairer.loadProgress(ks, [2]string{a, b})
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// repairNow orchestrates a repair of keyspace ks between every pair of
// datacenters among regions (all when empty), reporting progress.
func (n *Node) repairNow(ctx context.Context, r *api.RepairRequest, report func(*api.RepairProgress)) *api.ClientError {
	ks, cerr := n.keyspace(r.Keyspace)
	if cerr != nil {
		return cerr
	}
	if cerr := r.Validate(); cerr != nil {
		return cerr
	}
	ring := n.ring()
	var dcs []string
	for _, dc := range ring.DCs() {
		if ks.Replication[dc] == 0 {
			continue
		}
		if len(r.Regions) == 0 || slices.Contains(r.Regions, dc) {
			dcs = append(dcs, dc)
		}
	}
	for _, want := range r.Regions {
		if !slices.Contains(dcs, want) {
			return api.Errorf(api.CodeBadRequest, "meridian: region %q holds no replicas of keyspace %q", want, r.Keyspace)
		}
	}
	// Pairs inside a datacenter first: what a replica lacks then comes over
	// the LAN from a local peer when one has it, and the WAN carries only
	// the rest.
	var pairs [][2]string
	for _, a := range dcs {
		pairs = append(pairs, [2]string{a, a})
	}
	for i, a := range dcs {
		for _, b := range dcs[i+1:] {
			pairs = append(pairs, [2]string{a, b})
		}
	}
	start := time.Now()
	segments := repair.Segments(repairSegments)
	prog := &api.RepairProgress{PairsTotal: len(pairs), RangesTotal: len(pairs) * len(segments)}
	var (
		todo     = make([][][2]string, len(segments)) // per segment, its pairs still to repair, in order
		left     = map[[2]string]int{}                // segments still to repair, per pair
		mu       sync.Mutex                           // guards prog, left, failed and firstEr
		failed   int                                  // segments (of a pair) that failed
		firstEr  error
		firstSeg string
	)
	for _, pair := range pairs {
		cp, err := n.repairer.loadProgress(r.Keyspace, pair)
		if err != nil {
			return api.Errorf(api.CodeInternal, "meridian: repair checkpoint: %v", err)
		}
		for i, seg := range segments {
			if done(cp, seg) {
				prog.RangesDone++ // finished before a restart or a closed window
				continue
			}
			todo[i] = append(todo[i], pair)
			left[pair]++
		}
	}
	for _, pair := range pairs {
		if left[pair] == 0 {
			prog.PairsDone++
		}
	}
	// Segments run several at once: sessions mostly wait on WAN round
	// trips, and the node's repair slots bound the work they do. The pairs
	// of one segment run in order, so a later pair finds what an earlier
	// one already fixed.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Segments' failures are counted below, not returned: one must not
	// cancel the others. sem bounds them and, unlike SetLimit, gives up
	// when ctx ends.
	var g errgroup.Group
	sem := make(chan struct{}, repairSegmentsInFlight)
	for i, seg := range segments {
		if len(todo[i]) == 0 {
			continue
		}
		if acquire(ctx, sem) != nil {
			break
		}
		g.Go(func() error {
			defer func() { <-sem }()
			for _, pair := range todo[i] {
				segStart := n.now()
				st, err := n.repairPairRange(ctx, r.Keyspace, pair, seg, r.BytesPerSecond)
				if err == nil {
					task := repair.Task{Kind: repair.TaskPass, Pair: pair, Keyspace: r.Keyspace, Range: seg}
					if err = n.repairer.recordRepair(task, st, segStart); err != nil {
						err = fmt.Errorf("saving repair checkpoint: %w", err)
					}
				}
				mu.Lock()
				if err != nil {
					// A segment that fails (an unreachable replica, an object
					// too large to send) stops only itself: the other
					// segments go on, so one bad key never holds up the
					// rest of the ring.
					failed++
					if firstEr == nil {
						firstEr = err
						firstSeg = fmt.Sprintf("%s/%s %s", pair[0], pair[1], seg)
					}
					mu.Unlock()
					n.log.Warn("repair of a segment failed; the other segments go on, and the next repair retries it", "keyspace", r.Keyspace, "pair", pair[0]+"/"+pair[1], "range", seg.String(), "err", err)
					if ctx.Err() != nil {
						return nil
					}
					continue
				}
				prog.Pair = pair[0] + "/" + pair[1]
				prog.RangesDone++
				prog.KeysCompared += st.KeysCompared
				prog.KeysFixed += st.KeysFixed
				prog.BytesSent += st.BytesSent
				prog.ElapsedMillis = time.Since(start).Milliseconds()
				if left[pair]--; left[pair] == 0 {
					prog.PairsDone++
				}
				report(prog)
				mu.Unlock()
			}
			return nil
		})
	}
	g.Wait()
	if firstEr != nil {
		return api.Errorf(api.CodeUnavailable, "meridian: repair of %d of %d ranges failed, first %s (the others are done and saved; run it again to retry them): %v", failed, prog.RangesTotal, firstSeg, firstEr)
	}
	if err := ctx.Err(); err != nil {
		return api.Errorf(api.CodeUnavailable, "meridian: repair stopped (progress is saved; run it again to resume): %v", err)
	}
	prog.Done = true
	prog.ElapsedMillis = time.Since(start).Milliseconds()
	report(prog)
	return nil
}

// done reports whether the checkpoint's current pass already covers seg.
func done(p repair.Progress, seg repair.Range) bool {
	return slices.ContainsFunc(p.Done, func(d repair.Range) bool { return covers(d, seg) })
}

// covers reports whether range r holds all of seg.
func covers(r, seg repair.Range) bool {
	return r.Contains(seg.From) && (r.To == 0 || (seg.To != 0 && seg.To <= r.To))
}

// repairPairRange repairs seg between every node of pair[0] and every node
// of pair[1] that share keys, within the node's session slots.
//
// rate is the budget in bytes per second to each destination region (0: no
// limit). Every node of pair[0] initiates sessions, each pacing its own
// sends, so each gets an equal share.
func (n *Node) repairPairRange(ctx context.Context, ks string, pair [2]string, seg repair.Range, rate int64) (repair.RangeStats, error) {
	members := n.ring().Members()
	if rate > 0 {
		initiators := 0
		for _, m := range members {
			if m.DC == pair[0] {
				initiators++
			}
		}
		rate = max(1, rate/int64(max(1, initiators)))
	}
	var sessions [][2]string
	for _, a := range members {
		if a.DC != pair[0] {
			continue
		}
		for _, b := range members {
			if b.DC != pair[1] || a.ID == b.ID || (pair[0] == pair[1] && a.ID > b.ID) {
				continue
			}
			sessions = append(sessions, [2]string{a.ID, b.ID})
		}
	}
	var (
		mu    sync.Mutex
		total repair.RangeStats
		errs  []error
	)
	for _, round := range sessionRounds(sessions) {
		// Every session's error is kept (errs), and none cancels the
		// others: the slots, not SetLimit, bound them, so waiting for one
		// gives up when ctx ends.
		var g errgroup.Group
		for _, s := range round {
			a, b := s[0], s[1]
			if err := acquire(ctx, n.repairer.slots.sessions); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				break
			}
			g.Go(func() error {
				defer func() { <-n.repairer.slots.sessions }()
				var st repair.RangeStats
				var err error
				if a == n.cfg.ID {
					st, err = n.repairRange(ctx, ks, seg, b, rate)
				} else {
					err = n.peers.call(ctx, a, typeRepairRun, &repairRun{Keyspace: ks, Range: seg, Peer: b, BytesPerSecond: rate}, func(e *wan.Envelope) error {
						var rs repairStats
						if err := e.Decode(&rs); err != nil {
							return err
						}
						st = rs.Stats
						return nil
					})
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, fmt.Errorf("%s with %s: %w", a, b, err))
					return nil
				}
				total.Add(st)
				return nil
			})
		}
		g.Wait()
	}
	return total, errors.Join(errs...)
}

// sessionRounds orders sessions (pairs of node ids) into rounds in which
// no node takes part twice. Rounds run one after another, so a replica
// that lacks keys gets them from its first session, and its later sessions
// find nothing left to send, instead of every peer pushing it the same
// keys at once.
func sessionRounds(sessions [][2]string) [][][2]string {
	var rounds [][][2]string
	left := slices.Clone(sessions)
	for len(left) > 0 {
		busy := map[string]bool{}
		var round, rest [][2]string
		for _, s := range left {
			if busy[s[0]] || busy[s[1]] {
				rest = append(rest, s)
				continue
			}
			busy[s[0]], busy[s[1]] = true, true
			round = append(round, s)
		}
		rounds = append(rounds, round)
		left = rest
	}
	return rounds
}

// maxRepairLinks bounds the span links a repair session records.
const maxRepairLinks = 32

// linkFixed links a repair span to the writes whose versions it carried
// (each sibling keeps its write's trace), so an operator can follow a
// repaired key in the trace viewer back to the write it came from.
func linkFixed(span trace.Span, sets ...map[string]*version.Object) {
	links := 0
	for _, set := range sets {
		for _, o := range set {
			for _, s := range o.Siblings {
				if links >= maxRepairLinks {
					return
				}
				for _, l := range linkTo(s.Trace) {
					span.AddLink(l)
					links++
				}
			}
		}
	}
}
