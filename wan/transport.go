package wan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// Handler serves one request stream. It may call reply.Send any number of
// times (streaming replies, e.g. one per replica ack) and then returns; the
// transport then closes the stream. ctx carries the request's deadline and
// is cancelled if the caller gives up or the connection goes away. Handlers
// run concurrently, each in its own goroutine; a panic is recovered and
// reported to the caller as a CodeInternal error.
type Handler interface {
	Serve(ctx context.Context, from Identity, req *Envelope, reply Replier)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, from Identity, req *Envelope, reply Replier)

// Serve calls f.
func (f HandlerFunc) Serve(ctx context.Context, from Identity, req *Envelope, reply Replier) {
	f(ctx, from, req, reply)
}

// Replier sends replies on a request's stream. It is safe for concurrent
// use; calls after the handler has returned fail with ErrClosed.
type Replier interface {
	// Send writes one reply frame. Zero V and ID are filled in (ID with the
	// request's); e itself is not modified.
	Send(e *Envelope) error
	// SendError writes a TypeError reply, which ends the call at the caller
	// with a *RemoteError.
	SendError(code, msg string) error
}

// SendLast writes e as the last reply of its request: the handler sends
// nothing after it, and a later Send fails with ErrClosed. On a reusable
// stream the end of the request's replies (TypeDone) goes out in the same
// stream write, so the reply and its end cost one write instead of two.
// Elsewhere it is Send. An error before anything was written (an envelope
// too large to send) leaves the request open for another reply, as Send's
// does.
func SendLast(r Replier, e *Envelope) error {
	if l, ok := r.(lastSender); ok {
		return l.sendLast(e)
	}
	return r.Send(e)
}

// lastSender is a Replier whose request's replies end with a frame of
// their own, which SendLast writes with the last reply.
type lastSender interface {
	sendLast(e *Envelope) error
}

// Config configures a Transport. The zero value of every optional field
// means its default.
type Config struct {
	// Credentials are the node's CA pool and node certificate. Required.
	Credentials *Credentials
	// ListenAddr is the UDP host:port to bind; ":0" picks a free port.
	// Required.
	ListenAddr string
	// WrapConn, if set, wraps the UDP socket (the WAN emulator hooks in
	// here). A wrapped socket loses quic-go's GSO and batching.
	WrapConn func(net.PacketConn) net.PacketConn
	// PacketConn, if set, is the socket to use instead of binding
	// ListenAddr (a simulated network's endpoint; WrapConn still applies).
	// The Transport owns it and closes it on Close.
	PacketConn net.PacketConn
	// MaxFrame limits one frame's CBOR body in bytes, in both directions.
	// Default DefaultMaxFrame.
	MaxFrame int
	// MaxMessage limits one message in bytes, in both directions: a message
	// larger than MaxFrame travels as several frames (see ReadMessage).
	// Default DefaultMaxMessage; never less than MaxFrame.
	MaxMessage int
	// MaxIncomingStreams bounds concurrent requests per connection, and so
	// concurrent handler goroutines per peer. Default 1024.
	MaxIncomingStreams int64
	// MaxRequestBytesPerConn bounds the bytes held by the requests being
	// read on one connection, all its streams together: a stream whose
	// request would take more is answered CodeOverloaded and reset. A
	// request's bytes count from the moment they are read until it is
	// decoded. Default twice MaxMessage; never less than one MaxMessage
	// with its framing.
	MaxRequestBytesPerConn int64
	// MaxConnsPerPrincipal bounds the connections one client principal
	// (a certificate's role and name) holds to this transport at once; a
	// connection past it is closed at once with an error naming the limit.
	// Default DefaultMaxConnsPerPrincipal.
	MaxConnsPerPrincipal int
	// MaxRequestBytesPerClient bounds the bytes held by the requests being
	// read from one client principal, all its connections together, as
	// MaxRequestBytesPerConn does per connection: without it a principal
	// could hold MaxConnsPerPrincipal times that. Default
	// DefaultMaxRequestBytesPerClient; never less than one frame with its
	// header (a client request fits in one: values are at most a frame).
	// Nodes are bounded per connection only.
	MaxRequestBytesPerClient int64
	// MaxConnsPerNode is MaxConnsPerPrincipal for node certificates.
	// Default DefaultMaxConnsPerNode.
	MaxConnsPerNode int
	// ClientRequestsPerSecond and ClientRequestBurst bound the requests of
	// one client principal, all its connections together (a token bucket):
	// a request past them is answered CodeOverloaded without being served.
	// Nodes are never limited. Defaults DefaultClientRequestsPerSecond and
	// twice the rate (DefaultClientRequestBurst); a negative rate: no
	// limit.
	ClientRequestsPerSecond float64
	ClientRequestBurst      int
	// UnvalidatedHandshakeRate is how many new connections per second (a
	// burst of as many at once) are accepted without validating their
	// source address; past it every new connection must first echo a QUIC
	// Retry token (one more round trip), so spoofed addresses cannot make
	// the transport hold handshake state. It cannot tell clients from
	// nodes: the role is known only after the handshake. Default
	// DefaultUnvalidatedHandshakeRate; negative: validate every
	// connection.
	UnvalidatedHandshakeRate float64
	// IdleTimeout closes a connection that has heard nothing from its peer
	// for this long; keep-alives are sent at a third of it. It also bounds
	// how long a stream may take to deliver its request: IdleTimeout
	// between bytes, and IdleTimeout plus one second per 64 KiB received
	// from the stream's start (so a trickle cannot hold it). Default 30s.
	IdleTimeout time.Duration
	// DialTimeout bounds one dial, handshake included. Default 5s.
	DialTimeout time.Duration
	// Logger receives connection refusals, handler panics and shutdown
	// notes. Default slog.Default().
	Logger *slog.Logger
	// OnConn, if set, is called with +1 when a QUIC connection (accepted
	// or dialled) is established and -1 when it ends: a gauge of open
	// connections. It must not block.
	OnConn func(delta int64)
	// OnSent, if set, is called with the bytes of every request and reply
	// frame this Transport wrote to a stream (application bytes, before
	// QUIC framing and encryption) and the peer's identity, as its
	// certificate names it. It must not block.
	OnSent func(to Identity, bytes int)
	// OnRefuse, if set, is called for every connection refused before it
	// was served (see Refusal). It must not block.
	OnRefuse func(Refusal)
}

// trackConn reports conn's life to onConn.
func trackConn(conn *quic.Conn, onConn func(int64)) {
	if onConn == nil {
		return
	}
	onConn(1)
	context.AfterFunc(conn.Context(), func() { onConn(-1) })
}

// Defaults.
const (
	DefaultMaxIncomingStreams = 1024
	DefaultIdleTimeout        = 30 * time.Second
	DefaultDialTimeout        = 5 * time.Second
)

// Validate reports every problem with c at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Credentials == nil {
		errs = append(errs, errors.New("wan: config: Credentials are required"))
	} else if id := c.Credentials.Identity(); id.Role != RoleNode {
		errs = append(errs, fmt.Errorf("wan: config: a transport needs a node certificate, but %q is a %s certificate", id.Name, id.Role))
	}
	if c.ListenAddr == "" && c.PacketConn == nil {
		errs = append(errs, errors.New("wan: config: ListenAddr is required (host:port; \":0\" picks a port)"))
	}
	if c.MaxFrame < 0 {
		errs = append(errs, fmt.Errorf("wan: config: MaxFrame %d must not be negative", c.MaxFrame))
	}
	if c.MaxMessage < 0 {
		errs = append(errs, fmt.Errorf("wan: config: MaxMessage %d must not be negative", c.MaxMessage))
	}
	if c.MaxIncomingStreams < 0 {
		errs = append(errs, fmt.Errorf("wan: config: MaxIncomingStreams %d must not be negative", c.MaxIncomingStreams))
	}
	if c.MaxRequestBytesPerConn < 0 {
		errs = append(errs, fmt.Errorf("wan: config: MaxRequestBytesPerConn %d must not be negative", c.MaxRequestBytesPerConn))
	}
	if c.MaxConnsPerPrincipal < 0 {
		errs = append(errs, fmt.Errorf("wan: config: MaxConnsPerPrincipal %d must not be negative", c.MaxConnsPerPrincipal))
	}
	if c.MaxRequestBytesPerClient < 0 {
		errs = append(errs, fmt.Errorf("wan: config: MaxRequestBytesPerClient %d must not be negative", c.MaxRequestBytesPerClient))
	}
	if c.MaxConnsPerNode < 0 {
		errs = append(errs, fmt.Errorf("wan: config: MaxConnsPerNode %d must not be negative", c.MaxConnsPerNode))
	}
	if math.IsNaN(c.ClientRequestsPerSecond) || math.IsNaN(c.UnvalidatedHandshakeRate) {
		errs = append(errs, errors.New("wan: config: ClientRequestsPerSecond and UnvalidatedHandshakeRate must be numbers"))
	}
	if c.ClientRequestBurst < 0 {
		errs = append(errs, fmt.Errorf("wan: config: ClientRequestBurst %d must not be negative", c.ClientRequestBurst))
	}
	if c.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("wan: config: IdleTimeout %v must not be negative", c.IdleTimeout))
	}
	if c.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("wan: config: DialTimeout %v must not be negative", c.DialTimeout))
	}
	return errors.Join(errs...)
}

func (c *Config) ensureDefaults() {
	if c.MaxFrame == 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	if c.MaxMessage == 0 {
		c.MaxMessage = DefaultMaxMessage
	}
	c.MaxMessage = max(c.MaxMessage, c.MaxFrame)
	if c.MaxIncomingStreams == 0 {
		c.MaxIncomingStreams = DefaultMaxIncomingStreams
	}
	if c.MaxRequestBytesPerConn == 0 {
		c.MaxRequestBytesPerConn = 2 * int64(c.MaxMessage)
	}
	c.MaxRequestBytesPerConn = max(c.MaxRequestBytesPerConn, wireBytes(c.MaxMessage, c.MaxFrame))
	if c.MaxConnsPerPrincipal == 0 {
		c.MaxConnsPerPrincipal = DefaultMaxConnsPerPrincipal
	}
	if c.MaxRequestBytesPerClient == 0 {
		c.MaxRequestBytesPerClient = DefaultMaxRequestBytesPerClient
	}
	c.MaxRequestBytesPerClient = max(c.MaxRequestBytesPerClient, int64(c.MaxFrame)+frameHeaderLen)
	if c.MaxConnsPerNode == 0 {
		c.MaxConnsPerNode = DefaultMaxConnsPerNode
	}
	if c.ClientRequestsPerSecond == 0 {
		c.ClientRequestsPerSecond = DefaultClientRequestsPerSecond
	}
	if c.ClientRequestBurst == 0 {
		// Twice the rate: a second's worth of requests on top of the rate.
		c.ClientRequestBurst = max(1, int(min(2*c.ClientRequestsPerSecond, 1<<30)))
	}
	if c.UnvalidatedHandshakeRate == 0 {
		c.UnvalidatedHandshakeRate = DefaultUnvalidatedHandshakeRate
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Transport is a node's QUIC endpoint: one UDP socket that accepts node and
// client connections and dials pooled node connections to peers.
type Transport struct {
	cfg  Config
	h    Handler
	log  *slog.Logger
	pc   net.PacketConn
	qtr  *quic.Transport
	ln   *quic.Listener
	pool *pool
	live *liveCredentials // node certificate, CA bundle, revocation list (SetCredentials)
	prin *principals

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	jobs   chan streamJob // streams for idle workers (dispatch)

	streamsServed  atomic.Int64 // streams accepted and served
	reusableServed atomic.Int64 // of which reusable (TypeStream)
	// idleStreamsClosed counts reusable streams ended with TypeStreamIdle.
	idleStreamsClosed atomic.Int64
	// forceIdle makes the next request read on a reusable stream be
	// treated as if it had come after the stream was given up as idle
	// (tests only).
	forceIdle atomic.Bool
	// noReuse makes the transport hand a TypeStream to the handler, as an
	// earlier release did (tests only).
	noReuse atomic.Bool

	wg sync.WaitGroup // accept loop, connection and stream goroutines

	mu      sync.Mutex
	conns   map[*quic.Conn]*budget  // accepted connections, with their request budgets
	connIDs map[*quic.Conn]Identity // the peers of admitted connections (SetFence)
	closed  bool

	fence Fence // nodes this transport exchanges nothing with (SetFence)

	closeOnce sync.Once
	closeErr  error
}

// Listen binds one UDP socket used both to accept connections (ALPNNode and
// ALPNClient) and to dial peers, and starts serving h.
func Listen(cfg Config, h Handler) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("wan: Listen with nil handler")
	}
	cfg.ensureDefaults()
	resetKey, err := cfg.Credentials.statelessResetKey()
	if err != nil {
		return nil, err
	}
	pc := cfg.PacketConn
	if pc == nil {
		ua, err := net.ResolveUDPAddr("udp", cfg.ListenAddr)
		if err != nil {
			return nil, fmt.Errorf("wan: listen address %q: %w", cfg.ListenAddr, err)
		}
		udp, err := net.ListenUDP("udp", ua)
		if err != nil {
			return nil, fmt.Errorf("wan: listen on %s: %w", cfg.ListenAddr, err)
		}
		pc = udp
	}
	if cfg.WrapConn != nil {
		pc = cfg.WrapConn(pc)
	}
	key := quic.StatelessResetKey(resetKey)
	t := &Transport{
		cfg:     cfg,
		h:       h,
		log:     cfg.Logger,
		pc:      pc,
		qtr:     &quic.Transport{Conn: pc, StatelessResetKey: &key, VerifySourceAddress: handshakeGate(cfg.UnvalidatedHandshakeRate)},
		conns:   make(map[*quic.Conn]*budget),
		connIDs: make(map[*quic.Conn]Identity),
		live:    &liveCredentials{},
		prin:    newPrincipals(&cfg),
	}
	t.live.Store(cfg.Credentials)
	t.qtr.ConnContext = withRemoteAddr // handlers learn the peer's address through RemoteAddr
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.jobs = make(chan streamJob)
	serverConf := &quic.Config{
		MaxIdleTimeout:        cfg.IdleTimeout,
		KeepAlivePeriod:       cfg.IdleTimeout / 3,
		MaxIncomingStreams:    cfg.MaxIncomingStreams,
		MaxIncomingUniStreams: -1,
	}
	t.ln, err = t.qtr.Listen(t.live.serverTLS(func(err error) {
		t.log.Warn("wan: refused peer certificate", "err", err)
		t.refused(Refusal{Reason: err.Error()})
	}), serverConf)
	if err != nil {
		t.qtr.Close()
		pc.Close()
		return nil, fmt.Errorf("wan: listen on %s: %w", cfg.ListenAddr, err)
	}
	t.pool = newPool(t.qtr, t.live, ALPNNode, dialConfig(cfg.IdleTimeout), cfg.MaxFrame, cfg.DialTimeout, t.log)
	t.pool.onConn = cfg.OnConn
	t.pool.onSent = cfg.OnSent
	t.pool.maxMessage = cfg.MaxMessage
	t.pool.fence = &t.fence
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

// dialConfig is the QUIC configuration of outgoing connections: the peer
// may not open streams on them.
func dialConfig(idle time.Duration) *quic.Config {
	return &quic.Config{
		MaxIdleTimeout:        idle,
		KeepAlivePeriod:       idle / 3,
		MaxIncomingStreams:    -1,
		MaxIncomingUniStreams: -1,
	}
}

// Addr returns the bound UDP address.
func (t *Transport) Addr() net.Addr { return t.pc.LocalAddr() }

// Call sends req to addr over the pooled node connection (dialled on
// demand; re-dialled when it has died; concurrent callers share one dial),
// on an idle stream of it or a new one (see the package documentation,
// "Streams and frames"), and calls onReply for each reply frame until the
// peer ends the request's replies.
//
// The request goes out with ctx's deadline when req.Deadline is zero, with
// V 1 when V is zero and with a fresh ID when ID is zero; req itself is not
// modified, so one envelope may be sent to many peers concurrently.
//
// A TypeError reply ends the call with a *RemoteError. An error returned by
// onReply ends it with that error. If wantPeer is not empty, the peer's
// certificate must name it (else ErrWrongPeer). Cancelling ctx cancels the
// stream and the call returns ctx's error (wrapped in ErrOutcomeUnknown once
// the request was sent). A call that failed before its request was sent
// returns ErrUnreachable; one that was sent and got no answer,
// ErrOutcomeUnknown (see the package documentation). After a failed dial,
// calls to the address fail fast with ErrUnreachable for a short, growing
// back-off (50ms doubling to 1s).
func (t *Transport) Call(ctx context.Context, addr, wantPeer string, req *Envelope, onReply func(*Envelope) error) error {
	return t.pool.call(ctx, addr, wantPeer, req, onReply)
}

// Close stops accepting, closes every connection (callers and handlers see
// their streams fail), waits for handler goroutines to return and releases
// the socket.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		t.cancel()
		t.ln.Close()
		t.mu.Lock()
		t.closed = true
		conns := make([]*quic.Conn, 0, len(t.conns))
		for c := range t.conns {
			conns = append(conns, c)
		}
		t.mu.Unlock()
		for _, c := range conns {
			c.CloseWithError(codeShutdown, "node shutting down")
		}
		t.pool.close()
		t.wg.Wait()
		t.closeErr = errors.Join(t.qtr.Close(), t.pc.Close())
	})
	return t.closeErr
}

func (t *Transport) acceptLoop() {
	defer t.wg.Done()
	for {
		conn, err := t.ln.Accept(t.ctx)
		if err != nil {
			if t.ctx.Err() == nil {
				t.log.Error("wan: accept failed; no longer accepting connections", "err", err)
			}
			return
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			conn.CloseWithError(codeShutdown, "node shutting down")
			return
		}
		b := &budget{limit: t.cfg.MaxRequestBytesPerConn}
		t.conns[conn] = b
		t.wg.Add(1)
		t.mu.Unlock()
		go t.serveConn(conn, b)
	}
}

// refused reports a refused connection to Config.OnRefuse.
func (t *Transport) refused(r Refusal) {
	if t.cfg.OnRefuse != nil {
		t.cfg.OnRefuse(r)
	}
}

// roleAllowed says which certificate roles may speak which ALPN.
func roleAllowed(alpn string, r Role) bool {
	switch alpn {
	case ALPNNode:
		return r == RoleNode
	case ALPNClient:
		return r == RoleClient || r == RoleNode
	}
	return false
}

func (t *Transport) serveConn(conn *quic.Conn, b *budget) {
	defer t.wg.Done()
	trackConn(conn, t.cfg.OnConn)
	defer func() {
		t.mu.Lock()
		delete(t.conns, conn)
		delete(t.connIDs, conn)
		t.mu.Unlock()
	}()
	cs := conn.ConnectionState().TLS
	if len(cs.PeerCertificates) == 0 {
		conn.CloseWithError(codeWrongRole, "no certificate")
		return
	}
	from, err := t.admit(conn)
	if err != nil {
		t.log.Warn("wan: refused connection", "remote", conn.RemoteAddr().String(), "err", err)
		t.refused(Refusal{Remote: conn.RemoteAddr().String(), Reason: err.Error()})
		conn.CloseWithError(codeCertRefused, err.Error())
		return
	}
	if !roleAllowed(cs.NegotiatedProtocol, from.Role) {
		msg := fmt.Sprintf("a %s certificate (%q) may not use ALPN %q", from.Role, from.Name, cs.NegotiatedProtocol)
		t.log.Warn("wan: refused connection", "remote", conn.RemoteAddr().String(), "peer", from.Name, "role", from.Role, "alpn", cs.NegotiatedProtocol)
		t.refused(Refusal{Remote: conn.RemoteAddr().String(), Name: from.Name, Role: from.Role, Serial: from.Serial, Reason: msg})
		conn.CloseWithError(codeWrongRole, msg)
		return
	}
	if from.Role == RoleNode && t.fence.Has(from.Name) {
		conn.CloseWithError(codeFenced, "fenced off")
		return
	}
	t.mu.Lock()
	t.connIDs[conn] = from
	t.mu.Unlock()
	release, bytes, refusal := t.prin.admit(from, conn.RemoteAddr())
	if refusal != "" {
		conn.CloseWithError(codeTooManyConns, refusal)
		return
	}
	defer release()
	b.parent = bytes // before any stream of conn is served
	for {
		// Until the connection ends: Close closes every connection it finds
		// in t.conns, so this goroutine must not leave the map before that.
		str, err := conn.AcceptStream(conn.Context())
		if err != nil {
			return
		}
		if from.Role == RoleNode && t.fence.Has(from.Name) {
			// Fenced since the connection was admitted (SetFence closes
			// it too; this covers a stream racing that).
			str.CancelRead(streamCancelled)
			str.CancelWrite(streamCancelled)
			conn.CloseWithError(codeFenced, "fenced off")
			return
		}
		t.wg.Add(1)
		t.dispatch(streamJob{from: from, str: str, bud: b})
	}
}

// streamJob is one accepted stream for a worker.
type streamJob struct {
	from Identity
	str  *quic.Stream
	bud  *budget
}

// workerIdle is how long a stream worker waits for another stream before
// it ends.
const workerIdle = 10 * time.Second

// dispatch hands j to an idle stream worker, or starts one. Workers
// outlive their stream: a handler's stack grows once to its depth (QUIC,
// CBOR, the store) per worker instead of once per request, on a fresh
// goroutine whose stack the runtime would otherwise copy as it grows.
func (t *Transport) dispatch(j streamJob) {
	select {
	case t.jobs <- j:
	default:
		go t.worker(j)
	}
}

// worker serves j, then further streams, until none comes for workerIdle
// or the Transport closes.
func (t *Transport) worker(j streamJob) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		t.serveStream(j.from, j.str, j.bud)
		idle.Reset(workerIdle)
		select {
		case j = <-t.jobs:
		case <-idle.C:
			return
		case <-t.ctx.Done():
			return
		}
	}
}

// serveStream reads the request frame of a stream, runs the handler and
// closes the stream; a reusable stream's requests, one after another
// (serveReusable).
func (t *Transport) serveStream(from Identity, str *quic.Stream, bud *budget) {
	defer t.wg.Done()
	t.streamsServed.Add(1)
	r := &replier{str: str, maxFrame: t.cfg.MaxFrame, maxMessage: t.cfg.MaxMessage, to: from, onSent: t.cfg.OnSent}
	rr := newRequestReader(str, bud, t.cfg.IdleTimeout)
	req, err := ReadMessage(rr, t.cfg.MaxFrame, t.cfg.MaxMessage)
	rr.done()
	if err != nil {
		// An empty stream (EOF) has nothing to answer.
		if err != io.EOF {
			t.unreadable(from, str, r, err)
		}
		r.close()
		return
	}
	r.reqID = req.ID
	if req.Type == TypePing {
		r.Send(pingEnvelope)
		r.close()
		str.CancelRead(streamDone)
		return
	}
	if req.Type == TypeStream && !t.noReuse.Load() {
		t.serveReusable(from, str, r, bud)
		r.close()
		return
	}
	if !t.serveRequest(str.Context(), from, req, r, func(d time.Time) { str.SetWriteDeadline(d) }) {
		r.close()
		str.CancelRead(streamDone)
		return
	}
	r.close()

	// The caller closed its side after the request: expect EOF.
	str.SetReadDeadline(time.Now().Add(t.cfg.IdleTimeout))
	var b [1]byte
	if n, err := str.Read(b[:]); n > 0 || err != io.EOF {
		str.CancelRead(streamProtocol)
	}
}

// unreadable answers a request that could not be read, with err, and
// stops reading its stream: over budget is answered overloaded (it was not
// served), a malformed frame bad_request; a stream reset by the caller, timed
// out or whose connection is gone gets no answer.
func (t *Transport) unreadable(from Identity, str *quic.Stream, r *replier, err error) {
	switch {
	case errors.Is(err, errOverBudget):
		t.prin.noteOverBudget(from, err)
		r.SendError(CodeOverloaded, err.Error())
		r.close() // the reply and its end go out before the stop
		str.CancelRead(streamProtocol)
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrFrameTooLarge), errors.Is(err, io.ErrUnexpectedEOF):
		t.log.Debug("wan: bad request frame", "peer", from.Name, "err", err)
		r.SendError(CodeBadRequest, err.Error())
		str.CancelRead(streamProtocol)
	default:
		str.CancelRead(streamCancelled)
	}
}

func (t *Transport) runHandler(ctx context.Context, from Identity, req *Envelope, r Replier) {
	defer func() {
		if v := recover(); v != nil {
			t.log.Error("wan: handler panicked", "peer", from.Name, "type", req.Type, "id", req.ID, "panic", v, "stack", string(debug.Stack()))
			r.SendError(CodeInternal, fmt.Sprintf("handler for message type %d panicked: %v", req.Type, v))
		}
	}()
	t.h.Serve(ctx, from, req, r)
}

// replier writes reply frames to one stream.
type replier struct {
	str        *quic.Stream
	maxFrame   int
	maxMessage int
	reqID      uint64
	to         Identity            // the requester
	onSent     func(Identity, int) // Config.OnSent

	mu     sync.Mutex
	closed bool
	sent   atomic.Int64 // frames sent
}

func (r *replier) sentCount() int64 { return r.sent.Load() }

func (r *replier) Send(e *Envelope) error {
	if e == nil {
		return errors.New("wan: Send of nil envelope")
	}
	c := *e
	if c.ID == 0 {
		c.ID = r.reqID
	}
	frame, err := appendMessage(nil, &c, r.maxFrame, r.maxMessage)
	if err != nil {
		return err
	}
	return r.write(frame, 1)
}

// write writes frames, which hold n messages, in one stream write.
func (r *replier) write(frames []byte, n int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("%w: reply after the handler returned", ErrClosed)
	}
	if _, err := r.str.Write(frames); err != nil {
		return fmt.Errorf("wan: send reply: %w", err)
	}
	r.sent.Add(n)
	if r.onSent != nil {
		r.onSent(r.to, len(frames))
	}
	return nil
}

func (r *replier) SendError(code, msg string) error {
	return r.Send(errorEnvelope(code, msg))
}

// close ends the reply side of the stream (FIN).
func (r *replier) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		r.str.Close()
	}
}

// minRequestRate is the slowest average rate, in bytes per second, at
// which a request may arrive once its first IdleTimeout is spent: a
// request of many frames may take longer than IdleTimeout on a slow link,
// but a peer trickling a byte now and then cannot hold a stream open.
const minRequestRate = 64 << 10

// wireBytes is the most bytes a message of up to maxMessage bytes takes on
// the wire in frames of up to maxFrame bytes (fragment headers included).
func wireBytes(maxMessage, maxFrame int) int64 {
	piece := max(maxFrame-fragmentOverhead, 1)
	frames := int64(maxMessage/piece + 1)
	return int64(maxMessage) + frames*(frameHeaderLen+fragmentOverhead)
}

// errOverBudget is matched (errors.Is) by the error a requestReader
// returns when its connection's or its principal's request budget is
// spent.
var errOverBudget = errors.New("wan: over its request budget")

// overBudgetError says which budget a request could not take bytes from.
type overBudgetError struct{ msg string }

func (e *overBudgetError) Error() string        { return e.msg }
func (e *overBudgetError) Is(target error) bool { return target == errOverBudget }

// budget counts the bytes held by the requests being read on one
// connection, or (parent) on every connection of one client principal:
// bytes read, and buffer space a blocked read waits to fill.
type budget struct {
	limit  int64
	used   atomic.Int64
	parent *budget // the principal's, or nil; set before any stream is served
	owner  string  // the principal of a parent budget, for its errors
}

// take reserves up to n bytes of b and of its parent and returns how many
// it got (0 when either is spent).
func (b *budget) take(n int64) int64 {
	got := b.takeOwn(n)
	if got > 0 && b.parent != nil {
		pg := b.parent.takeOwn(got)
		b.used.Add(pg - got)
		got = pg
	}
	return got
}

func (b *budget) takeOwn(n int64) int64 {
	for {
		used := b.used.Load()
		got := min(n, b.limit-used)
		if got <= 0 {
			return 0
		}
		if b.used.CompareAndSwap(used, used+got) {
			return got
		}
	}
}

func (b *budget) give(n int64) {
	b.used.Add(-n)
	if b.parent != nil {
		b.parent.used.Add(-n)
	}
}

// spentError explains a take that got nothing; held is what the refused
// request had read.
func (b *budget) spentError(held int64) error {
	if p := b.parent; p != nil && p.used.Load() >= p.limit {
		return &overBudgetError{fmt.Sprintf("wan: principal over its request budget: the requests being read on every connection of %s hold its %d bytes (this one %d); retry later, or send fewer large requests at once", p.owner, p.limit, held)}
	}
	return &overBudgetError{fmt.Sprintf("wan: connection over its request budget: the requests being read on this connection hold its %d bytes (this one %d); retry later, or send fewer large requests at once", b.limit, held)}
}

// requestReader reads a request stream against its connection's budget.
// Its read deadline is IdleTimeout after the last bytes arrived, but never
// later than IdleTimeout plus the time the bytes read so far take at
// minRequestRate, counted from the request's first byte.
type requestReader struct {
	str   *quic.Stream
	b     *budget
	idle  time.Duration
	start time.Time
	read  int64 // bytes read, held against b until done
}

func newRequestReader(str *quic.Stream, b *budget, idle time.Duration) *requestReader {
	now := time.Now()
	str.SetReadDeadline(now.Add(idle))
	return &requestReader{str: str, b: b, idle: idle, start: now}
}

func (q *requestReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	// The space a read waits to fill is memory the request already holds.
	got := q.b.take(int64(len(p)))
	if got == 0 {
		return 0, q.b.spentError(q.read)
	}
	n, err := q.str.Read(p[:got])
	q.b.give(got - int64(n))
	if n > 0 && q.read == 0 {
		// The request starts with its first byte: on a reusable stream
		// the wait for it may have been long.
		q.start = time.Now()
	}
	q.read += int64(n)
	if n > 0 {
		now := time.Now()
		deadline := now.Add(q.idle)
		if last := q.start.Add(q.idle + time.Duration(float64(q.read)/minRequestRate*float64(time.Second))); last.Before(deadline) {
			deadline = last
		}
		q.str.SetReadDeadline(deadline)
	}
	return n, err
}

// done returns the request's bytes to the budget: it has been decoded (or
// given up).
func (q *requestReader) done() {
	q.b.give(q.read)
	q.read = 0
}
