package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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

// ErrNoNodes is returned when no configured node could be reached.
var ErrNoNodes = errors.New("client: no node reachable")

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
	// Credentials, if set, are used instead of loading TLS.
	Credentials *wan.Credentials `yaml:"-"`
	// TracerProvider receives a client span per request, whose context
	// travels to the cluster so the whole request is one trace; nil means
	// no tracing.
	TracerProvider trace.TracerProvider `yaml:"-"`
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
	order  []Node // own DC first, then the failover regions in order
	local  int    // how many of order are in the own DC
	next   atomic.Uint64

	mu   sync.Mutex
	down map[string]time.Time // node id -> when to try it first again
}

// Connection timing: a dead node is given up on after dialTimeout (QUIC
// ignores ICMP, so only a timeout tells), and a connection whose node died
// is noticed within idleTimeout by keepalives.
const (
	dialTimeout = 1500 * time.Millisecond
	idleTimeout = 6 * time.Second
)

// downFor is how long a node that failed at the transport level is tried
// only after the others; then the client fails back to it.
const downFor = 3 * time.Second

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
	d, err := wan.NewDialer(creds, &wan.DialerOptions{DialTimeout: dialTimeout, IdleTimeout: idleTimeout})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c.dialer = d
	c.tracer = telemetry.Tracer(cfg.TracerProvider)
	c.next.Store(rand.Uint64()) // spread independent clients over the local nodes
	c.down = map[string]time.Time{}
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
		for _, n := range cfg.Nodes {
			if n.DC == r {
				c.order = append(c.order, n)
			}
		}
	}
	for _, n := range c.order {
		if n.DC == cfg.DC {
			c.local++
		}
	}
	return c, nil
}

// Close releases the client's connections.
func (c *Client) Close() error { return c.dialer.Close() }

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
// nodes first (from a rotating start, to spread load), then the failover
// regions' in order; nodes that recently failed go last, so the client
// fails over while its region is down and fails back once the down mark
// expires.
func (c *Client) candidates() []Node {
	out := make([]Node, 0, len(c.order))
	start := 0
	if c.local > 0 {
		start = int(c.next.Add(1) % uint64(c.local))
	}
	for i := range c.order {
		idx := i
		if i < c.local {
			idx = (start + i) % c.local
		}
		out = append(out, c.order[idx])
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	var up, down []Node
	for _, n := range out {
		if until, ok := c.down[n.ID]; ok && now.Before(until) {
			down = append(down, n)
		} else {
			up = append(up, n)
		}
	}
	return append(up, down...)
}

func (c *Client) markDown(id string) {
	c.mu.Lock()
	c.down[id] = time.Now().Add(downFor)
	c.mu.Unlock()
}

func (c *Client) markUp(id string) {
	c.mu.Lock()
	delete(c.down, id)
	c.mu.Unlock()
}

// do sends one request, failing over between nodes. A node's definitive
// answer — a reply or a refusal — ends the request. A node that cannot be
// reached (no connection) is skipped for the next; a write that reached a
// node but got no answer is not retried elsewhere, since it may have been
// applied (a blind retry would add a sibling).
func (c *Client) do(ctx context.Context, op, ks, cons string, t wan.MsgType, req any, replyType wan.MsgType, res any) (err error) {
	return c.doStream(ctx, op, ks, cons, t, req, replyType, res, nil)
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
	var errs []error
	for _, n := range c.candidates() {
		var cerr *api.ClientError
		span.SetAttributes(telemetry.ServerAddressKey.String(n.Addr), telemetry.Node(n.ID))
		err := c.dialer.Call(ctx, n.Addr, n.ID, env, func(e *wan.Envelope) error {
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
				cerr = &api.ClientError{}
				return e.Decode(cerr)
			}
			return fmt.Errorf("client: unexpected reply type %d", e.Type)
		})
		if err == nil {
			c.markUp(n.ID)
			if cerr != nil {
				return cerr
			}
			return nil
		}
		var re *wan.RemoteError
		if errors.As(err, &re) {
			return fmt.Errorf("client: %s refused the request: %w", n.ID, err)
		}
		c.markDown(n.ID)
		errs = append(errs, fmt.Errorf("%s (%s): %w", n.ID, n.Addr, err))
		if ctx.Err() != nil || (t == api.TypePut && !errors.Is(err, wan.ErrUnreachable)) {
			break
		}
	}
	return fmt.Errorf("%w: %w", ErrNoNodes, errors.Join(errs...))
}
