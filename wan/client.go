package wan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// Dialer makes pooled client connections (ALPNClient) to nodes, without a
// listener: the client library's transport. It is safe for concurrent use.
type Dialer struct {
	pc   net.PacketConn
	qtr  *quic.Transport
	pool *pool

	closeOnce sync.Once
	closeErr  error
}

// DialerOptions tune a Dialer. A nil *DialerOptions means defaults.
type DialerOptions struct {
	// Wrap, if set, wraps the UDP socket (the WAN emulator hooks in here).
	Wrap func(net.PacketConn) net.PacketConn
	// PacketConn, if set, is the socket to use instead of binding an
	// ephemeral UDP port (a simulated network's endpoint; Wrap still
	// applies). The Dialer owns it and closes it on Close.
	PacketConn net.PacketConn
	// DialTimeout bounds one dial, handshake included; default
	// DefaultDialTimeout. Clients that fail over between nodes want it
	// short: QUIC ignores ICMP, so only a timeout reveals a dead node.
	DialTimeout time.Duration
	// IdleTimeout closes a connection that heard nothing from its peer;
	// default DefaultIdleTimeout. Keepalives go every IdleTimeout/3.
	IdleTimeout time.Duration
	// VerifyAfter, if positive, makes a call on a connection that has
	// heard nothing from its peer for this long ping the peer first (one
	// round trip). If the ping is not answered in time the connection is
	// closed and the call fails with ErrUnreachable, its request not sent,
	// instead of sending it into a connection whose peer may be dead (QUIC
	// only notices at IdleTimeout) and ending with ErrOutcomeUnknown.
	// Default 0: never.
	VerifyAfter time.Duration
}

// NewDialer binds an ephemeral UDP port and returns a Dialer that presents
// creds, which may be a client or a node certificate.
func NewDialer(creds *Credentials, opts *DialerOptions) (*Dialer, error) {
	if creds == nil {
		return nil, errors.New("wan: NewDialer needs credentials")
	}
	var o DialerOptions
	if opts != nil {
		o = *opts
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	wrap := o.Wrap
	pc := o.PacketConn
	if pc == nil {
		udp, err := net.ListenUDP("udp", &net.UDPAddr{})
		if err != nil {
			return nil, err
		}
		pc = udp
	}
	if wrap != nil {
		pc = wrap(pc)
	}
	qtr := &quic.Transport{Conn: pc}
	live := &liveCredentials{}
	live.Store(creds)
	p := newPool(qtr, live, ALPNClient, dialConfig(o.IdleTimeout), DefaultMaxFrame, o.DialTimeout, slog.Default())
	p.verifyAfter = o.VerifyAfter
	return &Dialer{pc: pc, qtr: qtr, pool: p}, nil
}

// Call runs one request; it behaves as Transport.Call.
func (d *Dialer) Call(ctx context.Context, addr, wantPeer string, req *Envelope, onReply func(*Envelope) error) error {
	return d.pool.call(ctx, addr, wantPeer, req, onReply)
}

// Connect makes sure a pooled connection to addr is up, dialling one if
// needed (sharing a dial in flight) and checking, if wantPeer is not empty,
// that the peer's certificate names it. It sends no request: a client can
// race connections to several nodes and then send a request to exactly
// one. A quiet connection is verified as by Call (see
// DialerOptions.VerifyAfter). Errors are those of Call before its request
// is sent (ErrUnreachable, ErrWrongPeer, ErrForbidden, or ctx's error).
func (d *Dialer) Connect(ctx context.Context, addr, wantPeer string) error {
	conn, id, err := d.pool.get(ctx, addr)
	if err != nil {
		return err
	}
	if wantPeer != "" && id.Name != wantPeer {
		return fmt.Errorf("%w: %s presents a certificate for %q, want %q", ErrWrongPeer, addr, id.Name, wantPeer)
	}
	return d.pool.verify(ctx, addr, conn)
}

// Connected reports whether a request to addr would go out at once on a
// pooled connection: one is up, its peer is wantPeer (if not empty), and
// it has heard from its peer recently enough to need no ping first
// (DialerOptions.VerifyAfter). It never dials or waits; false only means
// Connect has work to do.
func (d *Dialer) Connected(addr, wantPeer string) bool {
	return d.pool.connected(addr, wantPeer)
}

// Close closes every connection and the socket.
func (d *Dialer) Close() error {
	d.closeOnce.Do(func() {
		d.pool.close()
		d.closeErr = errors.Join(d.qtr.Close(), d.pc.Close())
	})
	return d.closeErr
}
