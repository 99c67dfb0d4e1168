package wan

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// Dial back-off after a failed dial: from backoffMin doubling to backoffMax.
// Meanwhile calls to that address fail at once with ErrUnreachable.
const (
	backoffMin = 50 * time.Millisecond
	backoffMax = time.Second
)

// QUIC application (connection) error codes.
const (
	codeShutdown  quic.ApplicationErrorCode = 0x0   // the peer is closing
	codeWrongRole quic.ApplicationErrorCode = 0x101 // certificate role not allowed on this ALPN
)

// QUIC stream error codes.
const (
	streamCancelled quic.StreamErrorCode = 0x1 // the caller gave up (context done)
	streamProtocol  quic.StreamErrorCode = 0x2 // unexpected or malformed data
	streamDone      quic.StreamErrorCode = 0x3 // the reader needs no more data
)

// pool keeps one connection per peer address over one quic.Transport and
// runs calls on it: the shared half of Transport and Dialer.
type pool struct {
	qtr      *quic.Transport
	live     *liveCredentials // shared with the Transport, if any
	tlsConf  *tls.Config      // reads live at every handshake
	qconf    *quic.Config
	maxFrame int
	dialTO   time.Duration
	log      *slog.Logger
	onConn   func(int64)         // see Config.OnConn
	onSent   func(Identity, int) // see Config.OnSent
	// verifyAfter, if positive, makes a call on a connection that has not
	// heard from its peer for this long ping it first (see
	// DialerOptions.VerifyAfter).
	verifyAfter time.Duration
	// maxMessage bounds a message that spans several frames (ReadMessage).
	maxMessage int
	// fence, if set, names the peers calls must not reach (Transport.SetFence).
	fence *Fence

	ctx    context.Context // cancelled by close; parent of every dial
	cancel context.CancelFunc
	nextID atomic.Uint64
	// reuse holds the idle reusable streams of each address (reuse.go).
	reuse reuseState

	mu     sync.Mutex
	peers  map[string]*peer
	closed bool
	wg     sync.WaitGroup // dial goroutines
}

// peer is the pool's state for one address; guarded by pool.mu.
type peer struct {
	conn     *quic.Conn
	id       Identity
	heard    time.Time    // conn last proved alive: dialled, replied or answered a ping
	dial     *dialAttempt // in flight, or nil
	lastErr  error
	failures int
	retryAt  time.Time
}

// dialAttempt is one dial shared by every caller that wants the address
// while it runs. Its fields are written before done is closed.
type dialAttempt struct {
	done chan struct{}
	conn *quic.Conn
	id   Identity
	err  error
}

func newPool(qtr *quic.Transport, live *liveCredentials, alpn string, qconf *quic.Config, maxFrame int, dialTimeout time.Duration, log *slog.Logger) *pool {
	ctx, cancel := context.WithCancel(context.Background())
	return &pool{
		qtr: qtr, live: live, tlsConf: live.clientTLS(alpn), qconf: qconf, maxFrame: maxFrame, maxMessage: DefaultMaxMessage, dialTO: dialTimeout, log: log,
		ctx: ctx, cancel: cancel, peers: make(map[string]*peer),
	}
}

// get returns a live connection to addr, dialling if there is none. Callers
// arriving during a dial wait for it; a recent failure fails fast.
func (p *pool) get(ctx context.Context, addr string) (*quic.Conn, Identity, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, Identity{}, ErrClosed
	}
	pe := p.peers[addr]
	if pe == nil {
		pe = &peer{}
		p.peers[addr] = pe
	}
	if pe.conn != nil {
		if pe.conn.Context().Err() == nil {
			c, id := pe.conn, pe.id
			p.mu.Unlock()
			return c, id, nil
		}
		pe.conn = nil
	}
	a := pe.dial
	if a == nil {
		if now := time.Now(); now.Before(pe.retryAt) {
			err := fmt.Errorf("%w: %s: last dial failed (retrying after %v): %w", ErrUnreachable, addr, pe.retryAt.Sub(now).Round(time.Millisecond), pe.lastErr)
			p.mu.Unlock()
			return nil, Identity{}, err
		}
		a = &dialAttempt{done: make(chan struct{})}
		pe.dial = a
		p.wg.Add(1)
		go p.dial(addr, pe, a)
	}
	p.mu.Unlock()

	select {
	case <-a.done:
		// Take this attempt's result even if the connection has died since:
		// the call then reports why, rather than dialling in a loop.
		return a.conn, a.id, a.err
	case <-ctx.Done():
		return nil, Identity{}, fmt.Errorf("wan: connect to %s: %w", addr, ctx.Err())
	}
}

// connected reports whether ready would return a pooled connection to
// addr at once (Dialer.Connected).
func (p *pool) connected(addr, wantPeer string) bool {
	if p.fence.Has(wantPeer) {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pe := p.peers[addr]
	switch {
	case p.closed || pe == nil || pe.conn == nil || pe.conn.Context().Err() != nil:
		return false
	case wantPeer != "" && pe.id.Name != wantPeer, p.fence.Has(pe.id.Name):
		return false
	case p.quiet(pe):
		return false
	}
	return true
}

// quiet reports whether pe's connection has gone without word from its
// peer for longer than verifyAfter, so a call pings it first (verify).
// The caller holds p.mu.
func (p *pool) quiet(pe *peer) bool {
	return p.verifyAfter > 0 && time.Since(pe.heard) > p.verifyAfter
}

// dial runs one dial attempt, detached from any caller's context so one
// impatient caller does not fail the others.
func (p *pool) dial(addr string, pe *peer, a *dialAttempt) {
	defer p.wg.Done()
	conn, id, verifiedBy, err := p.connect(addr)

	p.mu.Lock()
	pe.dial = nil
	if err == nil && verifiedBy != p.live.Load() {
		// New credentials were set during the handshake, and their sweep
		// of the pool did not see this connection: check it now.
		if _, verr := p.live.Load().verifyChain(peerCerts(conn), x509.ExtKeyUsageServerAuth, time.Now()); verr != nil {
			conn.CloseWithError(codeCertRefused, verr.Error())
			conn, err = nil, verr
		}
	}
	switch {
	case err == nil && p.closed:
		conn.CloseWithError(codeShutdown, "closing")
		conn, err = nil, ErrClosed
	case err == nil:
		pe.conn, pe.id, pe.heard = conn, id, time.Now()
		pe.failures, pe.lastErr, pe.retryAt = 0, nil, time.Time{}
	default:
		pe.failures++
		pe.lastErr = err
		pe.retryAt = time.Now().Add(backoff(pe.failures))
		if f := p.refusal(addr, err); f != nil {
			err = fmt.Errorf("%w: %w", ErrUnreachable, f)
		} else {
			err = fmt.Errorf("%w: %s: %w", ErrUnreachable, addr, err)
		}
	}
	p.mu.Unlock()
	a.conn, a.id, a.err = conn, id, err
	close(a.done)
}

func backoff(failures int) time.Duration {
	d := backoffMin
	for i := 1; i < failures && d < backoffMax; i++ {
		d *= 2
	}
	return min(d, backoffMax)
}

// connect dials addr and returns the connection, its peer's identity and
// the credentials that verified it.
func (p *pool) connect(addr string) (*quic.Conn, Identity, *Credentials, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.dialTO)
	defer cancel()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, Identity{}, nil, err
	}
	creds := p.live.Load()
	conn, err := p.qtr.Dial(ctx, ua, p.tlsConf.Clone(), p.qconf)
	if err != nil {
		return nil, Identity{}, nil, err
	}
	cs := conn.ConnectionState().TLS
	if len(cs.PeerCertificates) == 0 {
		conn.CloseWithError(codeShutdown, "no certificate")
		return nil, Identity{}, nil, errors.New("peer presented no certificate")
	}
	// The handshake verified the chain with the credentials current then;
	// this takes the identity (and checks again with creds, loaded before
	// the dial, so that a swap during it is noticed by the caller).
	id, err := creds.verifyChain(cs.PeerCertificates, x509.ExtKeyUsageServerAuth, time.Now())
	if err != nil {
		conn.CloseWithError(codeShutdown, "bad certificate")
		return nil, Identity{}, nil, err
	}
	p.log.Debug("wan: connected", "addr", addr, "peer", id.Name, "serial", id.Serial, "alpn", cs.NegotiatedProtocol)
	trackConn(conn, p.onConn)
	return conn, id, creds, nil
}

// call runs one request; see Transport.Call. It goes on an idle stream of
// the connection when there is one, else on a new one that stays open for
// later calls (see reuse.go); to a peer that refuses reusable streams, on
// a new stream of its own.
func (p *pool) call(ctx context.Context, addr, wantPeer string, req *Envelope, onReply func(*Envelope) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("wan: call %s: %w", addr, err)
	}
	if req == nil {
		return errors.New("wan: call with nil request")
	}
	e := p.stamp(ctx, req)
	frame, err := appendMessage(nil, &e, p.maxFrame, p.maxMessage)
	if err != nil {
		return fmt.Errorf("wan: request to %s: %w", addr, err)
	}
	for attempt := 0; ; attempt++ {
		conn, id, err := p.ready(ctx, addr, wantPeer)
		if err != nil {
			return err
		}
		if p.reuse.refused(addr) {
			return p.callOnNewStream(ctx, addr, conn, id, frame, onReply)
		}
		again, err := p.callReusing(ctx, addr, conn, id, e.ID, frame, onReply, attempt < maxReuseAttempts)
		if !again {
			return err
		}
	}
}

// stamp returns a copy of req (the caller may send one envelope to many
// peers at once) with the version, a fresh request id and ctx's deadline
// filled in where req has none.
func (p *pool) stamp(ctx context.Context, req *Envelope) Envelope {
	e := *req
	if e.V == 0 {
		e.V = Version
	}
	if e.ID == 0 {
		e.ID = p.nextID.Add(1)
	}
	if d, ok := ctx.Deadline(); ok && e.Deadline == 0 {
		e.Deadline = d.UnixNano()
	}
	return e
}

// ready returns the connection a request to addr goes on: it checks the
// fence, takes the pooled connection (dialling one if needed), checks that
// the peer is wantPeer and pings a quiet connection. An error means
// nothing was sent.
func (p *pool) ready(ctx context.Context, addr, wantPeer string) (*quic.Conn, Identity, error) {
	if p.fence.Has(wantPeer) {
		return nil, Identity{}, errFenced(wantPeer, addr)
	}
	conn, id, err := p.get(ctx, addr)
	if err != nil {
		return nil, Identity{}, err
	}
	if p.fence.Has(id.Name) {
		return nil, Identity{}, errFenced(id.Name, addr)
	}
	if wantPeer != "" && id.Name != wantPeer {
		return nil, Identity{}, fmt.Errorf("%w: %s presents a certificate for %q, want %q", ErrWrongPeer, addr, id.Name, wantPeer)
	}
	if err := p.verify(ctx, addr, conn); err != nil {
		return nil, Identity{}, err
	}
	return conn, id, nil
}

// callOnNewStream sends frame, a request, on a new stream of conn that
// ends with it, and reads the replies to the stream's end.
func (p *pool) callOnNewStream(ctx context.Context, addr string, conn *quic.Conn, id Identity, frame []byte, onReply func(*Envelope) error) error {
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return p.callError(ctx, addr, err)
	}
	stop := context.AfterFunc(ctx, func() {
		str.CancelWrite(streamCancelled)
		str.CancelRead(streamCancelled)
	})
	defer stop()

	// The request counts as sent once the stream has accepted its whole
	// frame. A Write that fails part-way put only a prefix into STREAM
	// frames; the peer acts on a request only after reading all of it, so
	// such a request was not delivered (ErrUnreachable). From here on, a
	// call without an answer is ErrOutcomeUnknown.
	if n, err := str.Write(frame); n < len(frame) {
		str.CancelRead(streamCancelled)
		if err == nil {
			err = io.ErrShortWrite
		}
		return p.callError(ctx, addr, err)
	}
	str.Close()
	if p.onSent != nil {
		p.onSent(id, len(frame))
	}
	for replies := 0; ; replies++ {
		r, err := ReadMessage(str, p.maxFrame, p.maxMessage)
		if err == io.EOF {
			if replies == 0 && ctx.Err() != nil {
				// The handler gave up at the shared deadline and closed the
				// stream without an answer: report the deadline, not an
				// empty success.
				return fmt.Errorf("%w: call %s: %w", ErrOutcomeUnknown, addr, ctx.Err())
			}
			return nil
		}
		if err != nil {
			str.CancelRead(streamProtocol)
			return p.replyError(ctx, addr, err)
		}
		p.heardFrom(addr, conn)
		if r.Type == TypeError {
			str.CancelRead(streamDone)
			var ep ErrorPayload
			if err := r.Decode(&ep); err != nil {
				return fmt.Errorf("wan: error reply from %s: %w", addr, err)
			}
			return &RemoteError{Code: ep.Code, Message: ep.Message}
		}
		if err := onReply(r); err != nil {
			str.CancelRead(streamDone)
			return err
		}
	}
}

// heardFrom records that conn, the pooled connection to addr, just
// carried a frame from its peer.
func (p *pool) heardFrom(addr string, conn *quic.Conn) {
	if p.verifyAfter <= 0 {
		return
	}
	p.mu.Lock()
	if pe := p.peers[addr]; pe != nil && pe.conn == conn {
		pe.heard = time.Now()
	}
	p.mu.Unlock()
}

// verify pings conn, the pooled connection to addr, if it has not heard
// from its peer for verifyAfter. A connection whose peer was killed stays
// open until the idle timeout (QUIC ignores ICMP); a request sent on it in
// the meantime would end with its outcome unknown. A ping that gets no
// answer within pingTimeout closes the connection and fails the call with
// ErrUnreachable: the request was not sent.
func (p *pool) verify(ctx context.Context, addr string, conn *quic.Conn) error {
	if p.verifyAfter <= 0 {
		return nil
	}
	p.mu.Lock()
	pe := p.peers[addr]
	quiet := pe != nil && pe.conn == conn && p.quiet(pe)
	p.mu.Unlock()
	if !quiet {
		return nil
	}
	timeout := pingTimeout(conn)
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := ping(pctx, conn, p.maxFrame)
	if err == nil {
		p.heardFrom(addr, conn)
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("wan: call %s: %w", addr, ctxErr)
	}
	conn.CloseWithError(codeShutdown, "peer did not answer a ping")
	p.log.Debug("wan: closed a silent connection", "addr", addr, "err", err)
	return fmt.Errorf("%w: %s: the connection was quiet and its peer did not answer a ping within %v: %w", ErrUnreachable, addr, timeout.Round(time.Millisecond), err)
}

// pingTimeout is how long a ping may take on conn: a generous multiple of
// its smoothed RTT on top of a floor for a loaded machine.
func pingTimeout(conn *quic.Conn) time.Duration {
	return 500*time.Millisecond + 4*conn.ConnectionStats().SmoothedRTT
}

// pingEnvelope is the request and the reply of a ping.
var pingEnvelope = &Envelope{V: Version, Type: TypePing, Payload: []byte{0xf6}} // CBOR null

// ping sends a TypePing on a new stream of conn and waits for any answer:
// a reply frame of any type, or the end of the stream (a peer whose
// transport predates TypePing hands it to its handler, which answers or
// closes the stream). Either proves the peer alive.
func ping(ctx context.Context, conn *quic.Conn, maxFrame int) error {
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() {
		str.CancelWrite(streamCancelled)
		str.CancelRead(streamCancelled)
	})
	defer stop()
	frame, err := appendFrame(nil, pingEnvelope, maxFrame)
	if err != nil {
		return err
	}
	if _, err := str.Write(frame); err != nil {
		return err
	}
	str.Close()
	if _, err := ReadFrame(str, maxFrame); err != nil && err != io.EOF {
		return err
	}
	str.CancelRead(streamDone)
	return nil
}

// replyError explains a failure to read a reply of a sent request: the
// peer may have acted on it.
func (p *pool) replyError(ctx context.Context, addr string, err error) error {
	if errors.Is(err, ErrMalformed) || errors.Is(err, ErrFrameTooLarge) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: reply from %s: %w", ErrOutcomeUnknown, addr, err)
	}
	return p.sentCallError(ctx, addr, err)
}

// callError explains a stream or connection error of a call whose request
// was not sent: the peer cannot have acted on it.
func (p *pool) callError(ctx context.Context, addr string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("wan: call %s: %w", addr, ctxErr)
	}
	if f := p.refusal(addr, err); f != nil {
		return f
	}
	return fmt.Errorf("%w: %s: stream or connection lost before the request was sent: %w", ErrUnreachable, addr, err)
}

// sentCallError explains a stream or connection error of a call whose
// request was sent: the peer may have acted on it.
func (p *pool) sentCallError(ctx context.Context, addr string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%w: call %s: %w", ErrOutcomeUnknown, addr, ctxErr)
	}
	if f := p.refusal(addr, err); f != nil {
		// A peer that refuses our certificate closes the connection
		// before it accepts any stream: nothing was served.
		return f
	}
	var se *quic.StreamError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: call %s: stream aborted: %w", ErrOutcomeUnknown, addr, err)
	}
	return fmt.Errorf("%w: %s: connection lost after the request was sent: %w", ErrOutcomeUnknown, addr, err)
}

// refusal explains the peer refusing our certificate, or returns nil.
func (p *pool) refusal(addr string, err error) error {
	var ae *quic.ApplicationError
	if errors.As(err, &ae) && ae.Remote && ae.ErrorCode == codeWrongRole {
		return fmt.Errorf("%w: %s: %s", ErrForbidden, addr, ae.ErrorMessage)
	}
	if errors.As(err, &ae) && ae.Remote && ae.ErrorCode == codeCertRefused {
		return fmt.Errorf("%w: %s closed the connection: it no longer accepts our certificate: %s", ErrForbidden, addr, ae.ErrorMessage)
	}
	if errors.As(err, &ae) && ae.Remote && ae.ErrorCode == codeTooManyConns {
		// Closed before any stream was served: nothing was executed.
		return fmt.Errorf("%w: %s refused the connection: %s", ErrUnreachable, addr, ae.ErrorMessage)
	}
	var te *quic.TransportError
	if errors.As(err, &te) && te.Remote && te.ErrorCode.IsCryptoError() {
		own := p.live.Load().id
		return fmt.Errorf("%w: %s refused the TLS handshake (%v): check that our certificate (%s, serial %s) is issued by the cluster CA, has not expired and is not on the cluster's revocation list", ErrForbidden, addr, err, own, own.Serial)
	}
	return nil
}

// close closes every pooled connection and waits for dials in flight.
func (p *pool) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.cancel()
	var conns []*quic.Conn
	for _, pe := range p.peers {
		if pe.conn != nil {
			conns = append(conns, pe.conn)
			pe.conn = nil
		}
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.CloseWithError(codeShutdown, "closing")
	}
	p.wg.Wait()
}
