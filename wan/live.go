package wan

import (
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// codeCertRefused closes a connection whose peer's certificate is no
// longer accepted after new credentials were set: it is revoked, or no
// longer verifies against the CA bundle.
const codeCertRefused quic.ApplicationErrorCode = 0x102

// liveCredentials are the current credentials of a Transport or Dialer.
// Every handshake reads them, so they can be replaced while connections
// run (certificate rotation, a new CA bundle, a new revocation list).
type liveCredentials struct {
	atomic.Pointer[Credentials]
	mu sync.Mutex // serialises set
}

// set checks that next keeps the identity of the current credentials and
// stores it. A process's identity (role and name) cannot change at run time:
// its peers know it by that name.
func (live *liveCredentials) set(next *Credentials) (prev *Credentials, err error) {
	if next == nil {
		return nil, errors.New("wan: SetCredentials with nil credentials")
	}
	cur := live.Load()
	if next.id.Role != cur.id.Role || next.id.Name != cur.id.Name {
		return nil, fmt.Errorf("wan: refusing the new certificate (serial %s): it names %s, but this process runs as %s; an identity cannot change at run time: issue the new certificate for %q, or restart with the new identity",
			next.id.Serial, next.id, cur.id, cur.id.Name)
	}
	live.Store(next)
	return cur, nil
}

// peerCerts returns the certificate chain conn's peer presented.
func peerCerts(conn *quic.Conn) []*x509.Certificate {
	return conn.ConnectionState().TLS.PeerCertificates
}

// SetCredentials replaces the transport's credentials at run time: new
// handshakes, accepted and dialled, present the new certificate and verify
// peers against the new CA bundle and revocation list. Open connections
// stay up, except those whose peer's certificate is now revoked or no
// longer verifies: they are closed with an application error that names
// the reason. The new certificate must name the same node; otherwise
// nothing changes and the error says why. It returns the number of
// connections closed.
//
// The QUIC stateless reset key stays the one derived from the key the
// transport started with; after a restart on a rotated key, peers' stale
// connections from before it are not reset and end at the idle timeout.
func (t *Transport) SetCredentials(c *Credentials) (closed int, err error) {
	t.live.mu.Lock()
	defer t.live.mu.Unlock()
	if _, err := t.live.set(c); err != nil {
		return 0, err
	}
	// Accepted connections: a connection whose handshake raced with the
	// swap and is registered after this sweep is checked again by
	// serveConn against the new credentials (admit).
	now := time.Now()
	type bad struct {
		conn *quic.Conn
		err  error
	}
	var refused []bad
	t.mu.Lock()
	for conn := range t.conns {
		if _, err := c.verifyChain(peerCerts(conn), x509.ExtKeyUsageClientAuth, now); err != nil {
			refused = append(refused, bad{conn, err})
		}
	}
	t.mu.Unlock()
	for _, b := range refused {
		t.log.Warn("wan: closing a connection whose peer certificate is no longer accepted", "remote", b.conn.RemoteAddr().String(), "err", b.err)
		b.conn.CloseWithError(codeCertRefused, b.err.Error())
	}
	return len(refused) + t.pool.closeUntrusted(c, now), nil
}

// Credentials returns the transport's current credentials.
func (t *Transport) Credentials() *Credentials { return t.live.Load() }

// admit re-verifies an accepted connection's peer against the current
// credentials: its handshake may have been verified by credentials
// replaced since.
func (t *Transport) admit(conn *quic.Conn) (Identity, error) {
	return t.live.Load().verifyChain(peerCerts(conn), x509.ExtKeyUsageClientAuth, time.Now())
}

// SetCredentials replaces the dialer's credentials at run time, as
// Transport.SetCredentials does: new connections use them, and pooled
// connections to nodes whose certificates are now revoked or no longer
// verify are closed. The new certificate must have the same role and name.
func (d *Dialer) SetCredentials(c *Credentials) (closed int, err error) {
	d.pool.live.mu.Lock()
	defer d.pool.live.mu.Unlock()
	if _, err := d.pool.live.set(c); err != nil {
		return 0, err
	}
	return d.pool.closeUntrusted(c, time.Now()), nil
}

// Credentials returns the dialer's current credentials.
func (d *Dialer) Credentials() *Credentials { return d.pool.live.Load() }

// closeUntrusted closes the pooled connections whose servers' certificates
// c does not accept, and returns how many it closed.
func (p *pool) closeUntrusted(c *Credentials, now time.Time) int {
	type bad struct {
		addr string
		conn *quic.Conn
		err  error
	}
	var refused []bad
	p.mu.Lock()
	for addr, pe := range p.peers {
		if pe.conn == nil {
			continue
		}
		if _, err := c.verifyChain(peerCerts(pe.conn), x509.ExtKeyUsageServerAuth, now); err != nil {
			refused = append(refused, bad{addr, pe.conn, err})
			pe.conn = nil
		}
	}
	p.mu.Unlock()
	for _, b := range refused {
		p.log.Warn("wan: closing a connection whose peer certificate is no longer accepted", "addr", b.addr, "err", b.err)
		b.conn.CloseWithError(codeCertRefused, b.err.Error())
	}
	return len(refused)
}
