package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.yaml.in/yaml/v3"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/consistency"
	"github.com/meridian-kv/meridian/telemetry"
	"github.com/meridian-kv/meridian/wan"
)

// QuorumError is the per-datacenter shortfall of a request.
type QuorumError = consistency.QuorumError

// Error is a node's refusal of a request; Code is one of the api.Code*
// constants.
type Error = api.ClientError

// ErrNoNodes is returned when no configured node could be reached: the
// request was sent to none of them (a write was not applied).
var ErrNoNodes = errors.New("client: no node reachable")

// ErrOutcomeUnknown is returned for a write (put or delete) that reached a
// node but got no answer: the connection was lost or the deadline passed
// after the request was sent. The write may have been applied, so the
// client did not send it to another node (a blind retry would add a second
// sibling). Read the key to see whether it was before writing again.
var ErrOutcomeUnknown = errors.New("client: the write may have been applied")

// ErrOverloaded is returned when every node tried refused the request as
// overloaded (its principal over the node's request rate, or too many
// request bytes in flight), in each of overloadRounds+1 rounds: the request
// was executed by none of them, so it may be retried as it is, later.
var ErrOverloaded = errors.New("client: nodes overloaded; the request was not applied, retry it later")

// A request every node refused as overloaded is sent round the nodes again
// after overloadPause, doubling, at most overloadRounds more times (within
// its deadline).
const (
	overloadRounds = 3
	overloadPause  = 50 * time.Millisecond
)

// Node is one node the client may talk to.
type Node struct {
	ID   string `yaml:"id"`
	DC   string `yaml:"dc"`
	Addr string `yaml:"addr"`
}

// Config configures a client. Zero fields mean their defaults.
type Config struct {
	// DC is the client's own datacenter: its nodes are tried first.
	DC string `yaml:"dc"`
	// Nodes are the nodes to talk to.
	Nodes []Node `yaml:"nodes"`
	// Regions orders failover: when no node of DC answers, the nodes of
	// these regions are tried in this order. Default: the other regions in
	// the order their first node appears in Nodes.
	Regions []string `yaml:"regions,omitempty"`
	// Keyspace is the default keyspace; default "default".
	Keyspace string `yaml:"keyspace,omitempty"`
	// Timeout bounds a request whose ctx has no deadline; default 5s.
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// TLS names the cluster CA and the client's certificate and key.
	TLS wan.TLSFiles `yaml:"tls"`
	// HTTP lists the HTTPS gateway of each node that serves one, by node
	// id ("https://host:port"; docs/protocol.md). This client speaks QUIC
	// and does not use it: it is there for HTTP clients and curl, which
	// use the same TLS files.
	HTTP map[string]string `yaml:"http,omitempty"`
	// Credentials, if set, are used instead of loading TLS.
	Credentials *wan.Credentials `yaml:"-"`
	// TracerProvider receives a client span per request, whose context
	// travels to the cluster so the whole request is one trace; nil means
	// no tracing.
	TracerProvider trace.TracerProvider `yaml:"-"`
	// PacketConn, if set, is the socket the client uses instead of
	// binding an ephemeral UDP port: a simulated network's endpoint. The
	// client owns it and closes it on Close.
	PacketConn net.PacketConn `yaml:"-"`
}

// LoadConfig reads a YAML client configuration (as meridian dev writes).
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client: reading config: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("client: config %s: %w", path, err)
	}
	return &c, nil
}

// Client talks to a Meridian cluster. It is safe for concurrent use.
type Client struct {
	cfg    Config
	tracer trace.Tracer
	dialer *wan.Dialer
	groups [][]Node // nodes by region: own DC first, then the failover regions in order
	local  int      // how many nodes the own DC has
	next   atomic.Uint64

	bg     context.Context // cancelled by Close; parent of the probes
	stop   context.CancelFunc
	probes sync.WaitGroup

	mu   sync.Mutex
	down map[string]*downState // node id -> failures, back-off
}

// downState is what the client remembers of a node that failed at the
// transport level; guarded by Client.mu.
type downState struct {
	failures int
	retryAt  time.Time // when to probe it again
	probing  bool
}

// Connection timing: a dead node is given up on after dialTimeout (QUIC
// ignores ICMP, so only a timeout tells), and a connection whose node died
// is noticed within idleTimeout by keepalives.
const (
	dialTimeout = 1500 * time.Millisecond
	idleTimeout = 6 * time.Second
)

// verifyAfter: a request on a connection that has heard nothing from its
// node for this long first pings the node (one round trip), so a request
// is not sent into the connection of a node killed since (which QUIC only
// notices at idleTimeout): it goes to another node instead, and a write's
// outcome stays known. See wan.DialerOptions.VerifyAfter.
const verifyAfter = time.Second

// hedgeDelay paces failover. A request dials its first candidate; each
// time hedgeDelay passes without a connection (or a dial fails) it also
// dials the next one, with at most one more dial in flight than the home
// region has nodes, and sends the request to the first node that connects.
// A node of a dead region thus costs hedgeDelay, not dialTimeout, and
// another region is reached well inside the request's deadline (3 dead home
// nodes: about 3 × hedgeDelay). Only connections are raced: the request
// itself goes to one node at a time.
const hedgeDelay = 200 * time.Millisecond

// A node that failed at the transport level is tried only after the others
// (so requests skip it at once) until a background probe connects to it
// again. Probes run downMin after the failure, the wait doubling with each
// failed probe up to downMax.
const (
	downMin = time.Second
	downMax = 30 * time.Second
)

// Dial prepares a client. It loads the credentials and checks the
// configuration; connections are made on first use.
func Dial(ctx context.Context, cfg *Config) (*Client, error) {
	if cfg == nil || len(cfg.Nodes) == 0 {
		return nil, errors.New("client: the configuration lists no nodes")
	}
	c := &Client{cfg: *cfg}
	if c.cfg.Keyspace == "" {
		c.cfg.Keyspace = "default"
	}
	if c.cfg.Timeout == 0 {
		c.cfg.Timeout = 5 * time.Second
	}
	creds := cfg.Credentials
	if creds == nil {
		var err error
		if creds, err = wan.LoadCredentials(cfg.TLS, time.Now()); err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
	}
	d, err := wan.NewDialer(creds, &wan.DialerOptions{PacketConn: cfg.PacketConn, DialTimeout: dialTimeout, IdleTimeout: idleTimeout, VerifyAfter: verifyAfter})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c.dialer = d
	c.tracer = telemetry.Tracer(cfg.TracerProvider)
	c.next.Store(rand.Uint64()) // spread independent clients over the local nodes
	c.down = map[string]*downState{}
	c.bg, c.stop = context.WithCancel(context.Background())
	regions := []string{cfg.DC}
	seen := map[string]bool{cfg.DC: true}
	for _, r := range cfg.Regions {
		if !seen[r] {
			regions, seen[r] = append(regions, r), true
		}
	}
	for _, n := range cfg.Nodes {
		if !seen[n.DC] {
			regions, seen[n.DC] = append(regions, n.DC), true
		}
	}
	for _, r := range regions {
		var g []Node
		for _, n := range cfg.Nodes {
			if n.DC == r {
				g = append(g, n)
			}
		}
		if len(g) > 0 {
			c.groups = append(c.groups, g)
		}
		if r == cfg.DC {
			c.local = len(g)
		}
	}
	return c, nil
}

// Close stops the client's probes and releases its connections.
func (c *Client) Close() error {
	c.mu.Lock()
	c.stop() // under mu: no background work starts after this (goBackground)
	c.mu.Unlock()
	c.probes.Wait()
	return c.dialer.Close()
}

// goBackground runs f in a goroutine that Close waits for, unless the
// client is closed; it reports whether f was started. The caller must hold
// c.mu.
func (c *Client) goBackground(f func()) bool {
	if c.bg.Err() != nil {
		return false
	}
	c.probes.Add(1)
	go func() {
		defer c.probes.Done()
		f()
	}()
	return true
}

// WriteOptions tune one write. A nil *WriteOptions means all defaults.
type WriteOptions struct {
	// Keyspace; "" means the client's default.
	Keyspace string
	// Consistency is a level (ONE, LOCAL_ONE, LOCAL_QUORUM, EACH_QUORUM,
	// QUORUM, ALL) or a per-datacenter vector "east=2,west=1"; "" means
	// the keyspace's default.
	Consistency string
	// Context is the causal context of a previous read; the write then
	// supersedes every sibling that read returned. "" is a blind write.
	Context string
}

// ReadOptions tune one read.
type ReadOptions struct {
	Keyspace    string
	Consistency string
}

// GetResult is the outcome of a read.
type GetResult struct {
	// Values holds every sibling; empty when the key does not exist or is
	// deleted. More than one value means concurrent writes: resolve them
	// by writing with Context.
	Values [][]byte
	// Writers names the write (dot) that produced each value.
	Writers []string
	// Context is the opaque causal context to pass to the next write.
	Context string
	// Deleted is true when the key's latest state is a delete.
	Deleted bool
	// Acked counts the replicas that answered, per datacenter.
	Acked map[string]int
}

// PutResult is the outcome of a write.
type PutResult struct {
	Context     string
	Siblings    int
	Acked       map[string]int
	Warning     string
	Coordinator string
}

// Get reads a key.
func (c *Client) Get(ctx context.Context, key []byte, o *ReadOptions) (*GetResult, error) {
	if o == nil {
		o = &ReadOptions{}
	}
	if err := api.CheckKey(key); err != nil {
		return nil, err
	}
	var res api.GetResponse
	if err := c.do(ctx, "get", c.ks(o.Keyspace), o.Consistency, api.TypeGet, &api.GetRequest{Keyspace: c.ks(o.Keyspace), Key: key, Consistency: o.Consistency}, api.TypeGetReply, &res); err != nil {
		return nil, err
	}
	out := &GetResult{Context: res.Context, Deleted: res.Deleted, Acked: res.Acked}
	for _, s := range res.Siblings {
		out.Values = append(out.Values, s.Value)
		out.Writers = append(out.Writers, s.Writer)
	}
	return out, nil
}

// Put writes a value.
func (c *Client) Put(ctx context.Context, key, value []byte, o *WriteOptions) (*PutResult, error) {
	return c.write(ctx, key, value, false, o)
}

// Delete deletes a key. With o.Context it supersedes exactly what that
// read returned; a concurrent write not seen survives as a sibling.
func (c *Client) Delete(ctx context.Context, key []byte, o *WriteOptions) (*PutResult, error) {
	return c.write(ctx, key, nil, true, o)
}

func (c *Client) write(ctx context.Context, key, value []byte, del bool, o *WriteOptions) (*PutResult, error) {
	if o == nil {
		o = &WriteOptions{}
	}
	if err := api.CheckKey(key); err != nil {
		return nil, err
	}
	req := &api.PutRequest{Keyspace: c.ks(o.Keyspace), Key: key, Value: value, Delete: del, Context: o.Context, Consistency: o.Consistency}
	var res api.PutResponse
	op := "put"
	if del {
		op = "delete"
	}
	if err := c.do(ctx, op, req.Keyspace, o.Consistency, api.TypePut, req, api.TypePutReply, &res); err != nil {
		return nil, err
	}
	return &PutResult{Context: res.Context, Siblings: res.Siblings, Acked: res.Acked, Warning: res.Warning, Coordinator: res.Coordinator}, nil
}

// Status asks a node for its view of the cluster.
func (c *Client) Status(ctx context.Context) (*api.StatusResponse, error) {
	var res api.StatusResponse
	return &res, c.do(ctx, "status", "", "", api.TypeStatus, &api.StatusRequest{}, api.TypeStatusReply, &res)
}

// Inspect asks every replica of a key, in every datacenter, what it holds.
func (c *Client) Inspect(ctx context.Context, keyspace string, key []byte) (*api.InspectResponse, error) {
	if err := api.CheckKey(key); err != nil {
		return nil, err
	}
	var res api.InspectResponse
	return &res, c.do(ctx, "inspect", c.ks(keyspace), "", api.TypeInspect, &api.InspectRequest{Keyspace: c.ks(keyspace), Key: key}, api.TypeInspectReply, &res)
}

// RepairOptions tune a repair run now; the zero value (or nil) repairs the
// client's keyspace across every region with no rate limit.
type RepairOptions struct {
	// Keyspace; "" means the client's default.
	Keyspace string
	// Regions whose replicas to compare; empty means all.
	Regions []string
	// BytesPerSecond bounds the repair traffic to each destination region;
	// 0 means no limit.
	BytesPerSecond int64
}

// Repair runs an anti-entropy repair now, calling progress (if set) after
// every range; it returns the final report. It takes as long as the repair:
// give ctx a deadline to match. A repair that stops resumes where it
// stopped when run again.
func (c *Client) Repair(ctx context.Context, o *RepairOptions, progress func(*api.RepairProgress)) (*api.RepairProgress, error) {
	if o == nil {
		o = &RepairOptions{}
	}
	if o.BytesPerSecond < 0 {
		return nil, fmt.Errorf("client: negative repair rate %d", o.BytesPerSecond)
	}
	var res api.RepairProgress
	req := &api.RepairRequest{Keyspace: c.ks(o.Keyspace), Regions: o.Regions, BytesPerSecond: o.BytesPerSecond}
	err := c.doStream(ctx, "repair", req.Keyspace, "", api.TypeRepair, req, api.TypeRepairReply, &res, func() {
		if progress != nil {
			p := res
			progress(&p)
		}
	})
	if err == nil && !res.Done {
		err = errors.New("client: the repair ended without a final report")
	}
	return &res, err
}

// RepairStatus returns, per datacenter pair, the last completed repair,
// the pass in progress and the next window.
func (c *Client) RepairStatus(ctx context.Context, keyspace string) (*api.RepairStatusResponse, error) {
	var res api.RepairStatusResponse
	return &res, c.do(ctx, "repair.status", c.ks(keyspace), "", api.TypeRepairStatus, &api.RepairStatusRequest{Keyspace: c.ks(keyspace)}, api.TypeRepairStatusReply, &res)
}

// Ring returns the preference list of a key.
func (c *Client) Ring(ctx context.Context, keyspace string, key []byte) (*api.RingResponse, error) {
	var res api.RingResponse
	return &res, c.do(ctx, "ring", c.ks(keyspace), "", api.TypeRing, &api.RingRequest{Keyspace: c.ks(keyspace), Key: key}, api.TypeRingReply, &res)
}

func (c *Client) ks(s string) string {
	if s == "" {
		return c.cfg.Keyspace
	}
	return s
}

// candidates returns the nodes to try for one request: the own region's
// nodes first, then the failover regions' in order, each region's from a
// rotating start to spread load (a failover region takes the whole load of
// a dead one); nodes that recently failed go last, so the client fails over
// while its region is down, and fails back once a probe has connected to
// them again.
func (c *Client) candidates() []Node {
	out := make([]Node, 0, len(c.cfg.Nodes))
	start := int(c.next.Add(1) % (1 << 30))
	for _, g := range c.groups {
		for i := range g {
			out = append(out, g[(start+i)%len(g)])
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.down) == 0 {
		return out // every node up: nothing to reorder or probe
	}
	now := time.Now()
	var up, down []Node
	for _, n := range out {
		st, ok := c.down[n.ID]
		if !ok {
			up = append(up, n)
			continue
		}
		down = append(down, n)
		if !st.probing && !now.Before(st.retryAt) {
			st.probing = c.goBackground(func() { c.probe(n) })
		}
	}
	return append(up, down...)
}

// probe tries to connect to a node marked down, without sending anything:
// on success the node is preferred again, else its back-off grows.
func (c *Client) probe(n Node) {
	ctx, cancel := context.WithTimeout(c.bg, dialTimeout+time.Second)
	defer cancel()
	err := c.dialer.Connect(ctx, n.Addr, n.ID)
	switch {
	case err == nil:
		c.markUp(n.ID)
	case c.bg.Err() == nil:
		c.markDown(n.ID)
	}
}

// markDown records a transport failure of node id: it goes last in the
// candidates until a probe, downMin doubling to downMax later, reaches it.
func (c *Client) markDown(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.down[id]
	if st == nil {
		st = &downState{}
		c.down[id] = st
	}
	st.failures++
	st.probing = false
	wait := downMin
	for i := 1; i < st.failures && wait < downMax; i++ {
		wait *= 2
	}
	st.retryAt = time.Now().Add(min(wait, downMax))
}

// markSuspect puts node id last in the candidates while a dial to it, in
// flight, decides whether it is down.
func (c *Client) markSuspect(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down[id] == nil {
		c.down[id] = &downState{probing: true}
	}
}

func (c *Client) markUp(id string) {
	c.mu.Lock()
	delete(c.down, id)
	c.mu.Unlock()
}

// connect races connections to cands (see hedgeDelay) and returns the first
// candidate that connected, the candidates left to try after it (in order,
// without those whose dial failed) and an error per failed dial. ok is false
// when none connected before ctx ended or every dial failed. Nothing is
// sent.
//
// A dial outlives the request that started it (bounded by dialTimeout, and
// stopped by Close): its verdict still marks the node down or up, so a
// long-lived client does not wait on a dead node it raced past again.
func (c *Client) connect(ctx context.Context, cands []Node) (chosen Node, rest []Node, ok bool, errs []error) {
	if c.dialer.Connected(cands[0].Addr, cands[0].ID) {
		// The first choice's connection is up: no race to run (the race
		// would pick it first).
		return cands[0], cands[1:], true, nil
	}
	type result struct {
		i   int
		err error
	}
	results := make(chan result, len(cands)) // never blocks a dialler
	failed := make([]bool, len(cands))
	limit := max(c.local+1, 2) // room for one node of another region
	next, inflight := 0, 0
	start := func() {
		i := next
		next++
		inflight++
		n := cands[i]
		c.mu.Lock()
		started := c.goBackground(func() {
			dctx, cancel := context.WithTimeout(c.bg, dialTimeout+time.Second)
			defer cancel()
			err := c.dialer.Connect(dctx, n.Addr, n.ID)
			switch {
			case err == nil:
				c.markUp(n.ID)
			case c.bg.Err() == nil:
				c.markDown(n.ID)
			}
			results <- result{i, err}
		})
		c.mu.Unlock()
		if !started {
			results <- result{i, fmt.Errorf("client: closed: %w", wan.ErrClosed)}
		}
	}
	start()
	hedge := time.NewTimer(hedgeDelay)
	defer hedge.Stop()
	for {
		select {
		case r := <-results:
			inflight--
			if r.err == nil {
				for j, n := range cands {
					if j != r.i && !failed[j] {
						rest = append(rest, n)
					}
					if j < next && j != r.i && !failed[j] {
						// Raced past while still dialling: tried last until
						// its dial ends and marks it up or down.
						c.markSuspect(n.ID)
					}
				}
				return cands[r.i], rest, true, errs
			}
			failed[r.i] = true
			n := cands[r.i]
			errs = append(errs, fmt.Errorf("%s (%s): %w", n.ID, n.Addr, r.err))
			switch {
			case next < len(cands):
				start()
				hedge.Reset(hedgeDelay)
			case inflight == 0:
				return Node{}, nil, false, errs
			}
		case <-hedge.C:
			if next < len(cands) && inflight < limit {
				start()
			}
			hedge.Reset(hedgeDelay)
		case <-ctx.Done():
			for i := range next {
				if !failed[i] {
					errs = append(errs, fmt.Errorf("%s (%s): connecting: %w", cands[i].ID, cands[i].Addr, ctx.Err()))
				}
			}
			return Node{}, nil, false, errs
		}
	}
}

// do sends one request, failing over between nodes. Connections are raced
// (connect); the request goes to one node at a time. A node's definitive
// answer — a reply or a refusal — ends the request. A request that was not
// sent (no connection, or it died before the request left) is sent to the
// next node. A read whose node went silent after it was sent is also tried
// on the next node; a write is not, since it may have been applied (a
// blind retry would add a sibling): it fails with ErrOutcomeUnknown.
func (c *Client) do(ctx context.Context, op, ks, cons string, t wan.MsgType, req any, replyType wan.MsgType, res any) (err error) {
	return c.doStream(ctx, op, ks, cons, t, req, replyType, res, nil)
}

// onReply returns the reply callback of a call answered by replies of
// replyType, each decoded into res (then onEach, if set, is called), or by
// a client error, decoded into *cerr.
func onReply(replyType wan.MsgType, res any, cerr **api.ClientError, onEach func()) func(*wan.Envelope) error {
	return func(e *wan.Envelope) error {
		switch e.Type {
		case replyType:
			if err := e.Decode(res); err != nil {
				return err
			}
			if onEach != nil {
				onEach()
			}
			return nil
		case api.TypeClientError:
			*cerr = &api.ClientError{}
			return e.Decode(*cerr)
		}
		return fmt.Errorf("client: unexpected reply type %d", e.Type)
	}
}

// doStream is do for requests answered by several replies: each is decoded
// into res and then onEach (if set) is called.
func (c *Client) doStream(ctx context.Context, op, ks, cons string, t wan.MsgType, req any, replyType wan.MsgType, res any, onEach func()) (err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
	}
	ctx, span := c.tracer.Start(ctx, telemetry.SpanName(op, ks), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(telemetry.DBSystemNameKey.String(telemetry.SystemName), telemetry.Operation(op),
			telemetry.Namespace(ks), telemetry.Consistency(cons), telemetry.DC(c.cfg.DC)))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	env, err := wan.NewEnvelope(t, req)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	env.Trace.Traceparent, env.Trace.Tracestate = telemetry.Inject(ctx)
	write := t == api.TypePut
	var errs []error
	reached := false    // some node got the request
	overloaded := false // some node refused it unexecuted, as overloaded
	rounds := 0         // rounds of every node refusing it as overloaded
	cands := c.candidates()
	for len(cands) > 0 && ctx.Err() == nil {
		n, rest, ok, derrs := c.connect(ctx, cands)
		errs = append(errs, derrs...)
		if !ok {
			break
		}
		cands = rest
		var cerr *api.ClientError
		answered := false
		span.SetAttributes(telemetry.ServerAddressKey.String(n.Addr), telemetry.Node(n.ID))
		decode := onReply(replyType, res, &cerr, onEach)
		err := c.dialer.Call(ctx, n.Addr, n.ID, env, func(e *wan.Envelope) error {
			answered = true
			return decode(e)
		})
		if err == nil {
			c.markUp(n.ID)
			if cerr != nil {
				return cerr
			}
			return nil
		}
		var re *wan.RemoteError
		if errors.As(err, &re) && re.Code == wan.CodeOverloaded {
			// Refused before it was executed: the next node may take it.
			// When every node refused, go round again after a pause, a
			// few times (the refusal says to retry later).
			overloaded = true
			errs = append(errs, fmt.Errorf("%s (%s): %w", n.ID, n.Addr, err))
			if len(cands) == 0 && !reached && rounds < overloadRounds {
				t := time.NewTimer(overloadPause << rounds)
				select {
				case <-t.C:
					rounds++
					cands = c.candidates()
				case <-ctx.Done():
					t.Stop()
				}
			}
			continue
		}
		if errors.As(err, &re) && re.Code == wan.CodeNotExecuted {
			// Refused before it was executed (the node's store failed, or
			// its region is fenced off): the next node may take it at
			// once, and later requests try this one last until a probe
			// reaches it again.
			c.markDown(n.ID)
			errs = append(errs, fmt.Errorf("%s (%s): %w", n.ID, n.Addr, err))
			continue
		}
		if errors.As(err, &re) {
			if write && (re.Code == wan.CodeDeadlineExceeded || re.Code == wan.CodeInternal) {
				// The node took the write and gave up (or failed) before
				// answering: it may have applied it.
				return fmt.Errorf("%w: %s sent to %s, which did not finish it: %w; read the key to see whether it was, before writing again", ErrOutcomeUnknown, op, n.ID, err)
			}
			return fmt.Errorf("client: %s refused the request: %w", n.ID, err)
		}
		if errors.Is(err, wan.ErrUnreachable) || (errors.Is(err, wan.ErrOutcomeUnknown) && ctx.Err() == nil) {
			c.markDown(n.ID) // the connection failed, not merely the deadline
		}
		if write {
			switch {
			case errors.Is(err, wan.ErrOutcomeUnknown) || answered:
				return fmt.Errorf("%w: %s sent to %s (%s) got no complete answer: %w; read the key to see whether it was, before writing again", ErrOutcomeUnknown, op, n.ID, n.Addr, err)
			case !notSent(err):
				return fmt.Errorf("client: %s to %s (%s): %w", op, n.ID, n.Addr, err)
			}
		}
		reached = reached || !notSent(err)
		errs = append(errs, fmt.Errorf("%s (%s): %w", n.ID, n.Addr, err))
	}
	if len(errs) == 0 && ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	if overloaded && !reached {
		return fmt.Errorf("%w: %w", ErrOverloaded, errors.Join(errs...))
	}
	if reached {
		// A node got the request (a read, status…) but did not answer it.
		return fmt.Errorf("client: %s: no node answered: %w", op, errors.Join(errs...))
	}
	return fmt.Errorf("%w: %w", ErrNoNodes, errors.Join(errs...))
}

// notSent reports whether a failed call certainly did not deliver its
// request, so that a write may go to another node.
func notSent(err error) bool {
	if errors.Is(err, wan.ErrOutcomeUnknown) {
		return false
	}
	return errors.Is(err, wan.ErrUnreachable) || errors.Is(err, wan.ErrWrongPeer) || errors.Is(err, wan.ErrForbidden) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) // ended before it was sent
}
