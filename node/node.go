package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/memberlist"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/grants"
	"github.com/meridian-kv/meridian/placement"
	"github.com/meridian-kv/meridian/store"
	"github.com/meridian-kv/meridian/telemetry"
	"github.com/meridian-kv/meridian/wan"
)

// Options are the run-time dependencies of a node that do not belong in
// its configuration file. The zero value is production.
type Options struct {
	// FS is the store's filesystem; nil means the real disk.
	FS vfs.FS
	// WrapConn wraps the node's UDP socket, e.g. with a shared
	// wan.Emulator; it overrides Config.WANEmulation.
	WrapConn func(net.PacketConn) net.PacketConn
	// PacketConn, if set, is the QUIC socket instead of one bound to
	// Config.Listen, and GossipTransport serf's transport instead of
	// sockets bound to Config.Gossip: a simulated network's endpoints
	// (package sim). The node owns both and closes them on Close.
	PacketConn      net.PacketConn
	GossipTransport memberlist.NodeAwareTransport
	// Credentials, if set, are used instead of loading Config.TLS.
	Credentials *wan.Credentials
	// ConfigPath is the file Config was read from, if any: Reload re-reads
	// its tls section. Without it Reload re-reads the files Config.TLS
	// names.
	ConfigPath string
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Now is the wall clock; nil means time.Now. It gives every wall time
	// the node records or decides by: write stamps, grant stamps, hint ages
	// and expiry, certificate validity, repair windows and schedules,
	// tombstone collection and the read gate, the alive and fresh marks on
	// disk, when a remembered member was last seen (and so when it is
	// forgotten), and the store's and the audit log's times. Latencies,
	// timeouts and tickers use the runtime's clock.
	Now func() time.Time
	// TracerProvider and MeterProvider receive the node's spans and
	// metrics; nil means no-op. MetricsHandler, if set, is served at
	// /metrics on Config.Admin.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	MetricsHandler http.Handler
	// Audit, if set, receives the audit log instead of Config.Audit.Path.
	Audit io.Writer
}

// Node is one running Meridian node.
type Node struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	store *store.Store
	tr    *wan.Transport

	peers       *peers      // membership, peer health and call (peers.go)
	handoff     *handoff    // hint delivery and its counters (handoff.go)
	coordinator coordinator // writes coordinated here whose copies are in flight (writeahead.go)
	batches     *batcher    // replica writes and reads to a peer, coalesced (batch.go)
	repairer    *repairer   // repair state: trees, slots, budget, checkpoints, dirty set, session book (repairer.go)
	tombstones  *tombstones // tombstone collection and the read gate (tombstones.go)
	onDisk      bool        // the store is on the real disk, in cfg.DataDir

	ident identity // who this node is: its actor, incarnations, store health (identity.go)

	// The node stopping itself on a fatal condition (identity.go).
	fatalOnce sync.Once
	fatalCh   chan struct{}
	fatalErr  error

	auth  authz     // grants and superusers (auth.go)
	audit *auditLog // audit.go

	reencrypt reencryption // meridian reencrypt running here (encryption.go)
	fence     fence        // a failover drill's fence (fence.go)

	tracer       trace.Tracer
	metrics      *telemetry.Metrics
	admin        *http.Server
	adminAddr    string
	gateway      *http.Server // the HTTP gateway, if Config.HTTP (gateway.go)
	gatewayAddr  string
	gatewayConns sync.Map // net.Conn -> *gatewayConn (gateway.go)
	reqs         reqStats // recent request latencies, for the status page (reqstats.go)
	unregister   func()

	// bg tracks background work (fan-out tails, read repair) so Close can
	// wait for it.
	bg       sync.WaitGroup
	bgCtx    context.Context
	bgStop   context.CancelFunc
	bgJobs   chan func(context.Context) // to an idle background worker
	jobCtx   *jobContexts               // the contexts background jobs run under
	inflight atomic.Int64               // background request work (fan-out tails, read repair) running
	closed   atomic.Bool

	reload reloadState // Reload (reload.go)

	// refuseBatches makes the node answer a replica batch as a node of an
	// earlier release does, as an unknown message type (tests only:
	// export_test.go).
	refuseBatches atomic.Bool
	// refuseDigests does the same for digest batches.
	refuseDigests atomic.Bool
}

// Start opens the store, binds the transport and begins serving.
func Start(cfg Config, opts Options) (*Node, error) {
	// The node keeps its own copy of the keyspaces: the caller's map stays
	// the caller's.
	cfg.Keyspaces = maps.Clone(cfg.Keyspaces)
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("node: invalid configuration: %w", err)
	}
	n := &Node{cfg: cfg, log: opts.Logger, now: opts.Now, fatalCh: make(chan struct{})}
	if n.log == nil {
		n.log = slog.Default()
	}
	n.log = n.log.With("node", cfg.ID, "dc", cfg.DC)
	if n.now == nil {
		n.now = time.Now
	}
	var err error
	n.tracer = telemetry.Tracer(opts.TracerProvider)
	if n.metrics, err = telemetry.NewMetrics(opts.MeterProvider); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	creds := opts.Credentials
	if creds == nil {
		creds, err = wan.LoadCredentials(cfg.TLS, n.now())
		if err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
	}
	if id := creds.Identity(); id.Name != cfg.ID || id.Role != wan.RoleNode {
		return nil, fmt.Errorf("node: certificate %s names %s %q, but this node is %q: issue a node certificate for it", cfg.TLS.Cert, id.Role, id.Name, cfg.ID)
	}
	wrap := opts.WrapConn
	if wrap == nil && cfg.WANEmulation != nil {
		em := wan.NewEmulator(time.Now().UnixNano())
		for addr, dc := range cfg.WANEmulation.Peers {
			em.Register(addr, dc)
		}
		em.SetDefault(wan.Link{Latency: cfg.WANEmulation.Latency, Jitter: cfg.WANEmulation.Jitter, Loss: cfg.WANEmulation.Loss})
		wrap = func(pc net.PacketConn) net.PacketConn { return em.Wrap(pc, cfg.DC) }
	}

	n.onDisk = opts.FS == nil
	keyring, err := cfg.Encryption.loadKeyring()
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.store, err = store.Open(cfg.DataDir, &store.Options{FS: opts.FS, Logger: n.log, Now: n.now, NodeID: cfg.ID, Keyring: keyring, RowCacheSize: cfg.RowCacheBytes})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if err := n.startIdentity(); err != nil {
		n.store.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	if err := n.startAuth(); err != nil {
		n.store.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	if n.audit, err = openAudit(&n.cfg, n.onDisk, opts.Audit, n.log, n.now); err != nil {
		n.store.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	n.bgCtx, n.bgStop = context.WithCancel(context.Background())
	n.bgJobs = make(chan func(context.Context))
	n.jobCtx = newJobContexts(n.bgCtx, n.cfg.Limits.RequestTimeout, time.Now)
	n.reload.configPath, n.reload.files = opts.ConfigPath, cfg.TLS
	// The rooms exist before the transport serves: handlers use them.
	n.peers = newPeers(n, opts.GossipTransport)
	n.peers.gossipBlocked = n.fence.gossipBlocked
	if n.repairer, err = newRepairer(n); err != nil {
		n.audit.close()
		n.store.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	n.tombstones = newTombstones(n)
	n.batches = newBatcher(n.bgCtx, n.tracer, func(f func()) bool {
		return n.goBackground(func(context.Context) { f() })
	}, n.sendBatch)
	n.tr, err = wan.Listen(wan.Config{
		Credentials: creds,
		ListenAddr:  cfg.Listen,
		PacketConn:  opts.PacketConn,
		WrapConn:    wrap,
		Logger:      n.log,
		MaxMessage:  cfg.messageLimit(),
		IdleTimeout: peerIdleTimeout,
		DialTimeout: peerDialTimeout,
		OnConn:      func(d int64) { n.metrics.QUICConnections.Add(context.Background(), d) },
		OnSent:      n.countSent,
		OnRefuse:    n.auditRefusal,

		MaxConnsPerPrincipal:     cfg.Limits.MaxConnsPerClient,
		MaxConnsPerNode:          cfg.Limits.MaxConnsPerNode,
		MaxRequestBytesPerClient: cfg.Limits.MaxRequestBytesPerClient,
		ClientRequestsPerSecond:  cfg.Limits.ClientRequestsPerSecond,
		ClientRequestBurst:       cfg.Limits.ClientRequestBurst,
		UnvalidatedHandshakeRate: cfg.Limits.UnvalidatedHandshakesPerSecond,
	}, wan.HandlerFunc(n.serve))
	if err != nil {
		n.audit.close()
		n.store.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	n.peers.tr = n.tr
	n.handoff = newHandoff(n)
	n.peers.onUp = func(string) { n.handoff.kick() }
	if err := n.tombstones.openGate(); err != nil {
		n.tr.Close()
		n.store.Close()
		n.audit.close()
		return nil, fmt.Errorf("node: %w", err)
	}
	if err := n.peers.startGossip(); err != nil {
		n.tr.Close()
		n.store.Close()
		n.audit.close()
		return nil, err
	}
	if err := n.registerGauges(opts.MeterProvider); err != nil {
		n.Kill()
		return nil, fmt.Errorf("node: %w", err)
	}
	if cfg.Admin != "" {
		if err := n.startAdmin(opts.MetricsHandler); err != nil {
			n.Kill()
			return nil, err
		}
	}
	if cfg.HTTP != "" {
		if err := n.startGateway(); err != nil {
			n.Kill()
			return nil, err
		}
	}
	n.bg.Add(7)
	go n.runGrantSync()
	go n.watchDirectory()
	go n.watchName()
	go n.peers.runProber(n.probe)
	go n.handoff.run()
	go n.runRepairScheduler()
	go n.runTombstoneSweeper()
	n.log.Info("node started", "incarnation", n.store.Identity().Incarnation, "listen", n.tr.Addr().String(), "gossip", cfg.Gossip, "members", len(n.peers.current().members), "keyspaces", len(cfg.Keyspaces))
	return n, nil
}

// registerGauges registers the node's observable gauges: hints pending per
// target, the last full repair per datacenter pair (of the pairs whose
// repairs this node ran), the requests whose work goes on after their
// answer, and whether reads are gated.
func (n *Node) registerGauges(mp metric.MeterProvider) error {
	var unregs []func()
	n.unregister = func() {
		for _, u := range unregs {
			u()
		}
	}
	gauges := []struct {
		name, unit, desc string
		cb               func(observe func(int64, ...attribute.KeyValue))
	}{
		{"meridian.hints.pending", "{hint}", "Hints this node holds, waiting for delivery, per target.",
			func(observe func(int64, ...attribute.KeyValue)) {
				for target, st := range n.store.HintStats() {
					observe(int64(st.Count), telemetry.HintTarget(target))
				}
			}},
		{"meridian.repair.last_full", "s", "When the last repair covering the whole ring completed between two datacenters (Unix seconds), for the pairs this node ran.",
			func(observe func(int64, ...attribute.KeyValue)) {
				for ks := range n.cfg.Keyspaces {
					ps, err := n.RepairProgress(ks)
					if err != nil {
						continue
					}
					for _, p := range ps {
						if !p.LastFullCompleted.IsZero() {
							observe(p.LastFullCompleted.Unix(), telemetry.Namespace(ks), telemetry.DC(p.Pair[0]), telemetry.ReplicaDC(p.Pair[1]))
						}
					}
				}
			}},
		{"meridian.store.row_cache.size", "By", "Bytes the row cache holds (row_cache_bytes is its budget).",
			func(observe func(int64, ...attribute.KeyValue)) { observe(n.store.RowCacheStats().Bytes) }},
		{"meridian.requests.background", "{request}", "Requests answered whose work goes on here: copies to replicas past the quorum, read repair.",
			func(observe func(int64, ...attribute.KeyValue)) { observe(n.inflight.Load()) }},
		{"meridian.reads.gated", "1", "1 while this node, back from an outage longer than the tombstone grace, refuses reads of ranges it has not repaired.",
			func(observe func(int64, ...attribute.KeyValue)) {
				v := int64(0)
				if n.Gated() {
					v = 1
				}
				observe(v)
			}},
	}
	for _, g := range gauges {
		u, err := telemetry.RegisterGauge(mp, g.name, g.unit, g.desc, g.cb)
		if err != nil {
			return err
		}
		unregs = append(unregs, u)
	}
	counters := []struct {
		name, desc string
		count      func(store.RowCacheStats) uint64
	}{
		{"meridian.store.row_cache.hits", "Object reads the row cache answered.", func(st store.RowCacheStats) uint64 { return st.Hits }},
		{"meridian.store.row_cache.misses", "Object reads the row cache could not answer, which went to Pebble.", func(st store.RowCacheStats) uint64 { return st.Misses }},
	}
	for _, c := range counters {
		u, err := telemetry.RegisterCounter(mp, c.name, "{read}", c.desc, func(observe func(int64, ...attribute.KeyValue)) {
			observe(int64(c.count(n.store.RowCacheStats())))
		})
		if err != nil {
			return err
		}
		unregs = append(unregs, u)
	}
	return nil
}

// ID returns the node id.
func (n *Node) ID() string { return n.cfg.ID }

// DC returns the node's datacenter.
func (n *Node) DC() string { return n.cfg.DC }

// Addr returns the bound QUIC address.
func (n *Node) Addr() net.Addr { return n.tr.Addr() }

// Store exposes the node's store (tests, inspection).
func (n *Node) Store() *store.Store { return n.store }

// Peer connection timing: keepalives every IdleTimeout/3 notice a dead peer
// within peerIdleTimeout, and a dial to a dead address gives up after
// peerDialTimeout (QUIC ignores ICMP, so only a timeout tells).
const (
	peerIdleTimeout = 6 * time.Second
	peerDialTimeout = 2 * time.Second
)

// Close leaves the cluster gracefully (other nodes take this node out of
// the ring), stops serving, waits for background work and closes the store.
func (n *Node) Close() error {
	if !n.closed.CompareAndSwap(false, true) {
		return nil
	}
	n.stopFence()
	var errs []error
	if err := n.peers.leave(); err != nil {
		errs = append(errs, fmt.Errorf("leaving the cluster: %w", err))
	}
	errs = append(errs, n.peers.shutdown(), n.stopAdmin(), n.stopGateway())
	n.bgStop()
	errs = append(errs, n.tr.Close())
	n.bg.Wait()
	n.repairer.close()
	// A clean stop records when the node was last alive, so its outage is
	// measured from here (see tombstones.openGate).
	errs = append(errs, n.tombstones.markAlive(n.now()), n.store.Close(), n.audit.close())
	return errors.Join(errs...)
}

// Kill stops the node without leaving the cluster, as a crash would (for
// tests): peers see it fail, not leave.
func (n *Node) Kill() error {
	if !n.closed.CompareAndSwap(false, true) {
		return nil
	}
	n.stopFence()
	var errs []error
	errs = append(errs, n.peers.shutdown())
	errs = append(errs, n.stopAdmin(), n.stopGateway())
	n.bgStop()
	errs = append(errs, n.tr.Close())
	n.bg.Wait()
	n.repairer.close()
	errs = append(errs, n.store.Close(), n.audit.close())
	return errors.Join(errs...)
}

// countSent counts bytes sent to a peer or client under the destination's
// region (meridian.wan.sent).
func (n *Node) countSent(to wan.Identity, bytes int) {
	dc := "client"
	if to.Role == wan.RoleNode {
		dc = "unknown"
		if v := n.peers.current(); v != nil {
			if m, ok := v.members[to.Name]; ok {
				dc = m.DC
			}
		}
	}
	n.metrics.CountSent(context.Background(), dc, bytes)
}

// storeErr reports why the store failed, or nil while it works.
func (n *Node) storeErr() error {
	if err := n.store.Err(); err != nil {
		return err
	}
	if n.ident.storeFailed.Load() {
		return errStoreFailed
	}
	return nil
}

// errStoreFailed: the store's directory check failed (watchDirectory).
var errStoreFailed = errors.New("its data directory check failed")

// goBackground runs f as tracked background work bounded by the request
// timeout, unless the node is closing (it then reports false and f does
// not run). An idle background worker takes it, or a new one starts: a
// worker outlives its job, so the stack a call to a replica grows to
// (QUIC, CBOR, the store) is grown once per worker rather than once per
// call, on a fresh goroutine whose stack the runtime would copy as it
// grew.
func (n *Node) goBackground(f func(ctx context.Context)) bool {
	if n.closed.Load() {
		return false
	}
	n.bg.Add(1)
	n.inflight.Add(1)
	select {
	case n.bgJobs <- f:
	default:
		go n.bgWorker(f)
	}
	return true
}

// bgWorkerIdle is how long a background worker waits for another job
// before it ends.
const bgWorkerIdle = 10 * time.Second

// bgWorker runs f, then further jobs, until none comes for bgWorkerIdle
// or the node closes.
func (n *Node) bgWorker(f func(ctx context.Context)) {
	idle := time.NewTimer(bgWorkerIdle)
	defer idle.Stop()
	for {
		n.runBackground(f)
		idle.Reset(bgWorkerIdle)
		select {
		case f = <-n.bgJobs:
		case <-idle.C:
			return
		case <-n.bgCtx.Done():
			return
		}
	}
}

// runBackground runs one background job under the request timeout
// (jobContexts).
func (n *Node) runBackground(f func(ctx context.Context)) {
	defer n.bg.Done()
	defer n.inflight.Add(-1)
	f(n.jobCtx.get())
}

// goBackgroundFrom is goBackground for work that continues a request: it
// keeps the request's span as parent (so fan-out spans join its trace) but
// not its cancellation.
func (n *Node) goBackgroundFrom(reqCtx context.Context, f func(ctx context.Context)) {
	sc := trace.SpanContextFromContext(reqCtx)
	if !sc.IsValid() {
		n.goBackground(f) // outside any trace: no span to keep
		return
	}
	n.goBackground(func(ctx context.Context) {
		f(trace.ContextWithSpanContext(ctx, sc))
	})
}

// serve dispatches one request stream.
func (n *Node) serve(ctx context.Context, from wan.Identity, req *wan.Envelope, reply wan.Replier) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.Limits.RequestTimeout)
		defer cancel()
	}
	if (req.Type == typeReplicaBatch && n.refuseBatches.Load()) || ((req.Type == typeDigestBatch || req.Type == typeRelayDigests) && n.refuseDigests.Load()) {
		reply.SendError(api.CodeBadRequest, fmt.Sprintf("meridian: unknown message type %d", req.Type))
		return
	}
	switch req.Type {
	case api.TypePut, api.TypeGet:
		// A node whose store failed executes no read or write, not even
		// as a coordinator: it says so before touching anything, so the
		// client (or a forwarding peer) sends the request to another node
		// and the write's outcome stays known.
		if err := n.storeErr(); err != nil {
			reply.SendError(wan.CodeNotExecuted, fmt.Sprintf("meridian: the store of %s failed (%v): it serves no reads or writes until restarted on a working disk; another node can", n.cfg.ID, err))
			return
		}
		if n.refuseFenced(reply) {
			return
		}
	}
	switch req.Type {
	case api.TypePut:
		var r api.PutRequest
		if err := req.Decode(&r); err != nil {
			sendClientError(reply, api.Errorf(api.CodeBadRequest, "meridian: malformed put request: %v", err))
			return
		}
		if r.Forwarded && from.Role != wan.RoleNode {
			sendClientError(reply, api.Errorf(api.CodeBadRequest, "meridian: only nodes may forward requests"))
			return
		}
		op := "put"
		if r.Delete {
			op = "delete"
		}
		// A forwarded write was authorized by the node the client called.
		if !r.Forwarded && !n.authorize(ctx, from, req, op, r.Keyspace, grants.Write, reply) {
			return
		}
		ctx, done := n.startRequest(ctx, req, op, r.Keyspace, r.Consistency)
		res, cerr := n.put(ctx, &r)
		var acked map[string]int
		if res != nil {
			acked = res.Acked
		}
		done(cerr, acked, -1)
		respond(reply, api.TypePutReply, res, cerr)
	case api.TypeGet:
		var r api.GetRequest
		if err := req.Decode(&r); err != nil {
			sendClientError(reply, api.Errorf(api.CodeBadRequest, "meridian: malformed get request: %v", err))
			return
		}
		if !n.authorize(ctx, from, req, "get", r.Keyspace, grants.Read, reply) {
			return
		}
		ctx, done := n.startRequest(ctx, req, "get", r.Keyspace, r.Consistency)
		res, cerr := n.get(ctx, &r)
		if res != nil {
			done(nil, res.Acked, len(res.Siblings))
		} else {
			done(cerr, nil, -1)
		}
		respond(reply, api.TypeGetReply, res, cerr)
	case api.TypeStatus:
		if !n.authorize(ctx, from, req, "status", grants.AllKeyspaces, grants.Admin, reply) {
			return
		}
		n.auditDone(ctx, from, req, "status", "", "", nil)
		respond(reply, api.TypeStatusReply, n.status(ctx), nil)
	case api.TypeInspect:
		var r api.InspectRequest
		if err := req.Decode(&r); err != nil {
			sendClientError(reply, api.Errorf(api.CodeBadRequest, "meridian: malformed inspect request: %v", err))
			return
		}
		if !n.authorize(ctx, from, req, "inspect", r.Keyspace, grants.Admin, reply) {
			return
		}
		res, cerr := n.inspect(ctx, &r)
		n.auditDone(ctx, from, req, "inspect", r.Keyspace, fmt.Sprintf("key %q", truncate(r.Key, 64)), cerr)
		respond(reply, api.TypeInspectReply, res, cerr)
	case api.TypeRepair:
		var r api.RepairRequest
		if err := req.Decode(&r); err != nil {
			sendClientError(reply, api.Errorf(api.CodeBadRequest, "meridian: malformed repair request: %v", err))
			return
		}
		if !n.authorize(ctx, from, req, "repair", r.Keyspace, grants.Admin, reply) {
			return
		}
		cerr := n.repairNow(ctx, &r, func(p *api.RepairProgress) {
			if env, err := wan.NewEnvelope(api.TypeRepairReply, p); err == nil {
				reply.Send(env)
			}
		})
		n.auditDone(ctx, from, req, "repair", r.Keyspace, fmt.Sprintf("regions %v", r.Regions), cerr)
		if cerr != nil {
			sendClientError(reply, cerr)
		}
	case api.TypeRepairStatus:
		var r api.RepairStatusRequest
		if err := req.Decode(&r); err != nil {
			sendClientError(reply, api.Errorf(api.CodeBadRequest, "meridian: malformed repair status request: %v", err))
			return
		}
		if !n.authorize(ctx, from, req, "repair status", r.Keyspace, grants.Admin, reply) {
			return
		}
		res, cerr := n.repairStatus(ctx, r.Keyspace)
		n.auditDone(ctx, from, req, "repair status", r.Keyspace, "", cerr)
		respond(reply, api.TypeRepairStatusReply, res, cerr)
	case api.TypeReencrypt, typeReencryptNode:
		n.serveReencrypt(ctx, from, req, reply)
	case api.TypeRing:
		var r api.RingRequest
		if err := req.Decode(&r); err != nil {
			sendClientError(reply, api.Errorf(api.CodeBadRequest, "meridian: malformed ring request: %v", err))
			return
		}
		if !n.authorize(ctx, from, req, "ring", grants.AllKeyspaces, grants.Admin, reply) {
			return
		}
		res, cerr := n.ringOf(&r)
		n.auditDone(ctx, from, req, "ring", r.Keyspace, "", cerr)
		respond(reply, api.TypeRingReply, res, cerr)
	case api.TypeFence:
		n.serveFence(ctx, from, req, reply)
	case api.TypeGrant:
		n.serveGrant(ctx, from, req, reply)
	case api.TypeGrants:
		n.serveGrants(ctx, from, req, reply)
	case typeGrantPush, typeGrantSync:
		if from.Role != wan.RoleNode {
			n.auditRequest(ctx, from, req, "grant sync", "", AuditForbidden, "", "node-to-node message from a non-node certificate")
			reply.SendError(api.CodeForbidden, "meridian: node-to-node messages need a node certificate")
			return
		}
		n.serveGrantSync(from.Name, req, reply)
	case typeReplicaWrite, typeRelayWrite, typeReplicaRead, typeRelayRead, typeReplicaBatch, typeDigestBatch, typeRelayDigests, typePing, typeHintWrite, typeHintDeliver,
		typeRepairLevel, typeRepairDigests, typeRepairPush, typeRepairRun, typeRepairProgress, typeRepairDone,
		typeRepairCompare:
		if from.Role != wan.RoleNode {
			n.auditRequest(ctx, from, req, opName(req.Type), "", AuditForbidden, "", "node-to-node message from a non-node certificate")
			reply.SendError(api.CodeForbidden, "meridian: node-to-node messages need a node certificate")
			return
		}
		ctx, span := n.startServe(ctx, req, telemetry.Node(from.Name))
		n.serveReplica(ctx, from.Name, req, reply)
		span.End()
	default:
		reply.SendError(api.CodeBadRequest, fmt.Sprintf("meridian: unknown message type %d", req.Type))
	}
}

// respond sends a request's answer, its last reply (wan.SendLast), or
// the client error that stands in for it.
func respond[T any](reply wan.Replier, t wan.MsgType, res *T, cerr *api.ClientError) {
	if cerr != nil {
		sendClientError(reply, cerr)
		return
	}
	env, err := wan.NewEnvelope(t, res)
	if err == nil {
		err = wan.SendLast(reply, env)
	}
	if err != nil {
		// The caller must hear why, not an empty answer (an inspect of a
		// key too large to ship once printed "replicas": null).
		code := api.CodeInternal
		if errors.Is(err, wan.ErrFrameTooLarge) {
			code = api.CodeTooLarge
		}
		sendClientError(reply, api.Errorf(code, "meridian: could not send the reply: %v", err))
	}
}

func sendClientError(reply wan.Replier, cerr *api.ClientError) {
	env, err := wan.NewEnvelope(api.TypeClientError, cerr)
	if err != nil {
		reply.SendError(cerr.Code, cerr.Message)
		return
	}
	reply.Send(env)
}

// ring returns the current ring.
func (n *Node) ring() *placement.Ring { return n.peers.ring() }

// planFor validates a request's keyspace and key and returns the key's
// preference list.
func (n *Node) planFor(ksName string, key []byte) (Keyspace, placement.Plan, *api.ClientError) {
	ks, cerr := n.keyspace(ksName)
	if cerr != nil {
		return Keyspace{}, placement.Plan{}, cerr
	}
	if err := api.CheckKey(key); err != nil {
		return Keyspace{}, placement.Plan{}, err.(*api.ClientError)
	}
	return ks, n.ring().Plan(placement.KeyToken(key), placement.Replication(ks.Replication)), nil
}

// keyspace returns the named keyspace's settings.
func (n *Node) keyspace(name string) (Keyspace, *api.ClientError) { return keyspaceOf(&n.cfg, name) }

// keyspaceOf returns the settings of cfg's keyspace name.
func keyspaceOf(cfg *Config, name string) (Keyspace, *api.ClientError) {
	ks, ok := cfg.Keyspaces[name]
	if !ok {
		names := make([]string, 0, len(cfg.Keyspaces))
		for k := range cfg.Keyspaces {
			names = append(names, k)
		}
		sort.Strings(names)
		return Keyspace{}, api.Errorf(api.CodeUnknownKeyspace, "meridian: unknown keyspace %q (this cluster has: %v)", name, names)
	}
	return ks, nil
}

// Members returns the ids of the members in this node's ring.
func (n *Node) Members() []string { return n.peers.ids() }

// BackgroundWork reports how many request tails (fan-out to replicas still
// running after the answer, read repairs) are in flight.
func (n *Node) BackgroundWork() int64 { return n.inflight.Load() }

// PeerState returns a peer's state as this node sees it: up, suspect,
// down or left.
func (n *Node) PeerState(id string) string { return n.peers.state(id) }
