package wan

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// This file lets a request that arrives by another way than a QUIC stream
// of the client ALPN (the node's HTTP gateway) take the path a stream's
// request takes: the same certificate checks, the same per-principal
// request rate and request byte budget, the same deadline handling and
// the same handler, whose replies are the same envelopes.

// HTTPSConfig returns the TLS configuration of a gateway that serves
// clients beside this transport: TLS 1.3, the node's current certificate,
// and a client certificate required and verified against the current CA
// bundle and revocation list, as a QUIC handshake is. Refused
// certificates go to Config.OnRefuse. The caller (net/http) adds its
// ALPN protocols.
func (t *Transport) HTTPSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return &t.live.Load().cert, nil
		},
		ClientAuth:             tls.RequireAnyClientCert,
		SessionTicketsDisabled: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			_, err := t.live.Load().verifyPeer(raw, x509.ExtKeyUsageClientAuth)
			if err != nil {
				t.log.Warn("wan: gateway refused peer certificate", "err", err)
				t.refused(Refusal{Reason: err.Error()})
			}
			return err
		},
	}
}

// Authenticate re-verifies the certificate chain a gateway's client
// presented against the current credentials (they may have changed since
// its handshake) and returns its identity. A client certificate and a node
// certificate may both use the client protocol.
func (t *Transport) Authenticate(certs []*x509.Certificate) (Identity, error) {
	id, err := t.live.Load().verifyChain(certs, x509.ExtKeyUsageClientAuth, time.Now())
	if err != nil {
		return Identity{}, err
	}
	if !roleAllowed(ALPNClient, id.Role) {
		return Identity{}, fmt.Errorf("wan: a %s certificate (%q) may not use the client protocol", id.Role, id.Name)
	}
	return id, nil
}

// AdmitConn counts a gateway connection of from against its principal's
// connection limit, which its QUIC connections share, or refuses it with
// a message naming the limit. The caller calls release once the
// connection has ended.
func (t *Transport) AdmitConn(from Identity, remote net.Addr) (release func(), refusal string) {
	release, _, refusal = t.prin.admit(from, remote)
	return release, refusal
}

// ReadRequest reads the body of a gateway request from from, of at most
// limit bytes, holding its bytes against from's request byte budget (the
// one its QUIC streams share) while it reads, as a stream's request is
// held until it is decoded. A body over limit is refused with an error
// wrapping ErrFrameTooLarge; one the budget cannot hold, with a
// *RemoteError of CodeOverloaded: it was not served.
func (t *Transport) ReadRequest(from Identity, body io.Reader, limit int) ([]byte, error) {
	var parent *budget
	if from.Role != RoleNode {
		t.prin.mu.Lock()
		parent = t.prin.get(principalKey(from)).bytes
		t.prin.mu.Unlock()
	}
	b := &budget{limit: int64(limit) + 1, parent: parent}
	var buf []byte
	held := int64(0)
	defer func() { b.give(held) }()
	chunk := make([]byte, 32<<10)
	for {
		got := b.take(int64(len(chunk)))
		if got == 0 {
			if int64(len(buf)) > int64(limit) {
				return nil, fmt.Errorf("%w: request body over the %d-byte limit", ErrFrameTooLarge, limit)
			}
			err := b.spentError(held)
			t.prin.noteOverBudget(from, err)
			return nil, &RemoteError{Code: CodeOverloaded, Message: err.Error()}
		}
		n, err := body.Read(chunk[:got])
		b.give(got - int64(n))
		held += int64(n)
		buf = append(buf, chunk[:n]...)
		if len(buf) > limit {
			return nil, fmt.Errorf("%w: request body over the %d-byte limit", ErrFrameTooLarge, limit)
		}
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// ServeLocal serves req, which from sent by another way than a QUIC
// stream, as serveStream serves a stream's request once it is read: it
// takes one request from the principal's rate, refuses a request whose
// deadline has passed, runs the handler with the deadline on ctx (a panic
// is a CodeInternal error), and answers CodeDeadlineExceeded when the
// handler gave up at the deadline without an answer. remote is the
// caller's address, for the handler's RemoteAddr. It returns the replies,
// in order, as the caller of Call would read them: each reply is held to
// the message limit as on a stream.
func (t *Transport) ServeLocal(ctx context.Context, from Identity, remote net.Addr, req *Envelope) []*Envelope {
	r := &localReplier{maxMessage: t.cfg.MaxMessage, reqID: req.ID, to: from, onSent: t.cfg.OnSent}
	if remote != nil {
		ctx = context.WithValue(ctx, remoteAddrKey{}, remote)
	}
	t.serveRequest(ctx, from, req, r, nil)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return r.out
}

// replySink is where a request's replies go: a stream, or a list.
type replySink interface {
	Replier
	sentCount() int64
}

// serveRequest runs a request that has been read: the principal's rate,
// the deadline, the handler. setWriteDeadline, if set, bounds the reply
// writes by the request's deadline. It reports whether the handler ran.
func (t *Transport) serveRequest(ctx context.Context, from Identity, req *Envelope, r replySink, setWriteDeadline func(time.Time)) bool {
	if ok, why := t.prin.allow(from); !ok {
		r.SendError(CodeOverloaded, why)
		return false
	}
	if req.Deadline != 0 {
		deadline := time.Unix(0, req.Deadline)
		if !time.Now().Before(deadline) {
			r.SendError(CodeDeadlineExceeded, fmt.Sprintf("deadline %s passed before the request was served", deadline.UTC().Format(time.RFC3339Nano)))
			return false
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
		if setWriteDeadline != nil {
			// Replies nobody waits for must not block the handler for ever.
			setWriteDeadline(deadline)
		}
	}
	t.runHandler(ctx, from, req, r)
	if r.sentCount() == 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// The handler gave up at the deadline without an answer: say so,
		// rather than end the stream as if it had nothing to say. The
		// write deadline (the request's) has passed too: allow a moment.
		if setWriteDeadline != nil {
			setWriteDeadline(time.Now().Add(time.Second))
		}
		r.SendError(CodeDeadlineExceeded, "the request's deadline passed before the handler answered")
	}
	return true
}

// localReplier keeps the replies of a request served by ServeLocal.
type localReplier struct {
	maxMessage int
	reqID      uint64
	to         Identity
	onSent     func(Identity, int)

	mu     sync.Mutex
	closed bool
	out    []*Envelope
	sent   atomic.Int64
}

func (r *localReplier) Send(e *Envelope) error {
	if e == nil {
		return errors.New("wan: Send of nil envelope")
	}
	c := *e
	if c.ID == 0 {
		c.ID = r.reqID
	}
	if c.V == 0 {
		c.V = Version
	}
	body, err := encodeEnvelope(&c)
	if err != nil {
		return err
	}
	if len(body) > r.maxMessage {
		return fmt.Errorf("%w: %d-byte message of type %d exceeds the %d-byte message limit (it was not sent)", ErrFrameTooLarge, len(body), c.Type, r.maxMessage)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("%w: reply after the handler returned", ErrClosed)
	}
	r.out = append(r.out, &c)
	r.sent.Add(1)
	if r.onSent != nil {
		r.onSent(r.to, len(body))
	}
	return nil
}

func (r *localReplier) SendError(code, msg string) error {
	return r.Send(errorEnvelope(code, msg))
}

func (r *localReplier) sentCount() int64 { return r.sent.Load() }
