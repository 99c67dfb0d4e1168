package wan

import (
	"context"
	"net"

	"github.com/quic-go/quic-go"
)

// Refusal describes a connection the transport refused before serving it:
// a certificate that did not verify against the cluster CA, a certificate
// without a name or role, or a role that may not use the ALPN it chose. It
// is handed to Config.OnRefuse (e.g. for an audit log).
type Refusal struct {
	// Remote is the peer's address, when known ("" for a certificate
	// refused during the handshake).
	Remote string
	// Name and Role are what the certificate claims, when it was parsed.
	Name   string
	Role   Role
	Serial string
	// Reason says why, in a sentence.
	Reason string
}

type remoteAddrKey struct{}

// withRemoteAddr is the quic.Transport's ConnContext: every accepted
// connection's context (and so every stream's) carries the peer's address.
func withRemoteAddr(ctx context.Context, ci *quic.ClientInfo) (context.Context, error) {
	return context.WithValue(ctx, remoteAddrKey{}, ci.RemoteAddr), nil
}

// RemoteAddr returns the address of the peer whose request ctx serves
// (the ctx a Handler is given), or "" if unknown.
func RemoteAddr(ctx context.Context) string {
	if a, ok := ctx.Value(remoteAddrKey{}).(net.Addr); ok && a != nil {
		return a.String()
	}
	return ""
}
