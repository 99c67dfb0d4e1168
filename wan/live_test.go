package wan

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// dialerT returns a Dialer presenting creds, closed when the test ends.
func dialerT(t *testing.T, creds *Credentials) *Dialer {
	t.Helper()
	d, err := NewDialer(creds, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// pooled returns the dialer's pooled connection to addr and its peer's
// identity as the handshake saw it.
func pooled(p *pool, addr string) (*quic.Conn, Identity) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pe := p.peers[addr]; pe != nil {
		return pe.conn, pe.id
	}
	return nil, Identity{}
}

func TestSetCredentialsSwapsServedCertificate(t *testing.T) {
	ca := testCA(t, "cluster")
	first := testCreds(t, ca, "node-1", RoleNode)
	srv, _ := listenT(t, first, echoHandler)
	addr := srv.Addr().String()
	ctx := testCtx(t)

	old := dialerT(t, testCreds(t, ca, "cli", RoleClient))
	if _, err := echo(ctx, old, addr, "node-1", 1); err != nil {
		t.Fatal(err)
	}
	oldConn, id := pooled(old.pool, addr)
	if id.Serial != first.Identity().Serial {
		t.Fatalf("first handshake saw serial %s, want %s", id.Serial, first.Identity().Serial)
	}

	second := testCreds(t, ca, "node-1", RoleNode)
	if n, err := srv.SetCredentials(second); err != nil || n != 0 {
		t.Fatalf("SetCredentials: closed %d, %v", n, err)
	}
	// A new handshake gets the new certificate...
	fresh := dialerT(t, testCreds(t, ca, "cli", RoleClient))
	if _, err := echo(ctx, fresh, addr, "node-1", 2); err != nil {
		t.Fatal(err)
	}
	if _, id := pooled(fresh.pool, addr); id.Serial != second.Identity().Serial || id.Serial == first.Identity().Serial {
		t.Fatalf("handshake after the swap saw serial %s, want the new %s", id.Serial, second.Identity().Serial)
	}
	// ...and the connection made before it stays up.
	if _, err := echo(ctx, old, addr, "node-1", 3); err != nil {
		t.Fatal(err)
	}
	if c, _ := pooled(old.pool, addr); c != oldConn {
		t.Fatal("the connection from before the swap was replaced")
	}

	// The node's own dials present the new certificate too.
	var seen atomic.Value
	peer, _ := listenT(t, testCreds(t, ca, "node-2", RoleNode), HandlerFunc(func(ctx context.Context, from Identity, req *Envelope, reply Replier) {
		seen.Store(from.Serial)
		echoHandler(ctx, from, req, reply)
	}))
	if _, err := echo(ctx, srv, peer.Addr().String(), "node-2", 1); err != nil {
		t.Fatal(err)
	}
	if s, _ := seen.Load().(string); s != second.Identity().Serial {
		t.Fatalf("peer saw serial %q, want %s", s, second.Identity().Serial)
	}

	// Another identity is refused and changes nothing.
	for _, c := range []*Credentials{testCreds(t, ca, "node-9", RoleNode), testCreds(t, ca, "node-1", RoleClient)} {
		if _, err := srv.SetCredentials(c); err == nil || !strings.Contains(err.Error(), "identity cannot change") {
			t.Fatalf("SetCredentials(%s): %v, want a refusal", c.Identity(), err)
		} else {
			t.Logf("refused: %v", err)
		}
	}
	if srv.Credentials() != second {
		t.Fatal("a refused swap replaced the credentials")
	}
}

func TestRevokedSerialRefusedBothWays(t *testing.T) {
	ca := testCA(t, "cluster")
	cli := testCreds(t, ca, "cli", RoleClient)
	node2 := testCreds(t, ca, "node-2", RoleNode)
	srvCreds, err := testCreds(t, ca, "node-1", RoleNode).WithRevoked(strings.ToUpper(cli.Identity().Serial), node2.Identity().Serial)
	if err != nil {
		t.Fatal(err)
	}
	srv, logs := listenT(t, srvCreds, echoHandler)
	addr := srv.Addr().String()
	ctx := testCtx(t)

	// A revoked client is refused at the handshake; the error names its
	// serial, and so does the server's log.
	_, err = echo(ctx, dialerT(t, cli), addr, "", 1)
	if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), cli.Identity().Serial) {
		t.Fatalf("revoked client: %v, want ErrForbidden naming serial %s", err, cli.Identity().Serial)
	}
	t.Logf("revoked client: %v", err)
	eventually(t, 5*time.Second, "server logs the revoked serial", func() error {
		if logs.Contains("revocation list") && logs.Contains(cli.Identity().Serial) {
			return nil
		}
		return errNotYet
	})
	// A revoked node cannot call in either...
	n2, _ := listenT(t, node2, echoHandler)
	if _, err := echo(ctx, n2, addr, "", 1); !errors.Is(err, ErrForbidden) {
		t.Fatalf("revoked node calling in: %v", err)
	}
	// ...nor is it called: the revoking node refuses the server it dials.
	_, err = echo(ctx, srv, n2.Addr().String(), "", 1)
	if !errors.Is(err, ErrRevoked) || !strings.Contains(err.Error(), node2.Identity().Serial) {
		t.Fatalf("calling a revoked node: %v, want ErrRevoked naming serial %s", err, node2.Identity().Serial)
	}
	t.Logf("calling a revoked node: %v", err)
	// A client that is not revoked is served.
	if _, err := echo(ctx, dialerT(t, testCreds(t, ca, "other", RoleClient)), addr, "node-1", 1); err != nil {
		t.Fatal(err)
	}
}

func TestReloadClosesConnectionOfNewlyRevokedClient(t *testing.T) {
	ca := testCA(t, "cluster")
	base := testCreds(t, ca, "node-1", RoleNode)
	srv, logs := listenT(t, base, echoHandler)
	addr := srv.Addr().String()
	ctx := testCtx(t)

	bad, good := testCreds(t, ca, "mallory", RoleClient), testCreds(t, ca, "alice", RoleClient)
	dBad, dGood := dialerT(t, bad), dialerT(t, good)
	for _, d := range []*Dialer{dBad, dGood} {
		if _, err := echo(ctx, d, addr, "node-1", 1); err != nil {
			t.Fatal(err)
		}
	}
	goodConn, _ := pooled(dGood.pool, addr)

	revoking, err := base.WithRevoked(bad.Identity().Serial)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := srv.SetCredentials(revoking); err != nil || n != 1 {
		t.Fatalf("SetCredentials closed %d connections (%v), want 1", n, err)
	}
	// The revoked client's connection is closed with an error naming why;
	// it cannot connect again.
	eventually(t, 10*time.Second, "revoked client's call fails", func() error {
		_, err := echo(ctx, dBad, addr, "node-1", 2)
		if err == nil {
			return errNotYet
		}
		if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), bad.Identity().Serial) {
			t.Fatalf("revoked client: %v, want ErrForbidden naming serial %s", err, bad.Identity().Serial)
		}
		t.Logf("revoked client: %v", err)
		return nil
	})
	if !logs.Contains("no longer accepted") {
		t.Error("no log line for the closed connection")
	}
	// The other client keeps its connection.
	if _, err := echo(ctx, dGood, addr, "node-1", 3); err != nil {
		t.Fatal(err)
	}
	if c, _ := pooled(dGood.pool, addr); c != goodConn {
		t.Fatal("the unrevoked client's connection was replaced")
	}
}

func TestDialerSetCredentialsClosesUntrustedNodes(t *testing.T) {
	ca, other := testCA(t, "cluster"), testCA(t, "new cluster")
	srv, _ := listenT(t, testCreds(t, ca, "node-1", RoleNode), echoHandler)
	addr := srv.Addr().String()
	ctx := testCtx(t)
	d := dialerT(t, testCreds(t, ca, "cli", RoleClient))
	if _, err := echo(ctx, d, addr, "node-1", 1); err != nil {
		t.Fatal(err)
	}
	// The client moves to a CA bundle without the node's CA: the pooled
	// connection to the node is closed, and a new one is refused.
	if n, err := d.SetCredentials(testCreds(t, other, "cli", RoleClient)); err != nil || n != 1 {
		t.Fatalf("SetCredentials closed %d (%v), want 1", n, err)
	}
	if _, err := echo(ctx, d, addr, "", 2); err == nil || !strings.Contains(err.Error(), "not signed by the cluster CA") {
		t.Fatalf("call after the swap: %v", err)
	}
	if _, err := d.SetCredentials(testCreds(t, other, "bob", RoleClient)); err == nil {
		t.Fatal("a dialer took credentials of another name")
	}
}

func TestPrincipalFromURISAN(t *testing.T) {
	ca := testCA(t, "cluster")
	var got atomic.Value
	srv, _ := listenT(t, testCreds(t, ca, "node-1", RoleNode), HandlerFunc(func(ctx context.Context, from Identity, req *Envelope, reply Replier) {
		got.Store(from)
		echoHandler(ctx, from, req, reply)
	}))
	ctx := testCtx(t)
	issue := func(r CertRequest) *Credentials {
		r.Now, r.Validity = time.Now(), time.Hour
		certPEM, keyPEM, err := ca.IssueRequest(r)
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewCredentials(ca.CertPEM, certPEM, keyPEM, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		req  CertRequest
		want string
	}{
		{CertRequest{Name: "laptop-7", Role: RoleClient, Principal: "alice"}, "alice"},
		{CertRequest{Name: "bob", Role: RoleClient}, "bob"},
		{CertRequest{Name: "node-3", Role: RoleNode, DC: "east"}, "node-3"},
	} {
		c := issue(tc.req)
		if _, err := echo(ctx, dialerT(t, c), srv.Addr().String(), "node-1", 1); err != nil {
			t.Fatal(err)
		}
		id, _ := got.Load().(Identity)
		if id.Name != tc.want || id.Role != tc.req.Role || id.Serial != FormatSerial(c.Leaf().SerialNumber) {
			t.Errorf("%+v: handler saw %+v, want principal %q", tc.req, id, tc.want)
		}
		if tc.req.DC != "" && NodeDC(c.Leaf()) != tc.req.DC {
			t.Errorf("node certificate records dc %q, want %q", NodeDC(c.Leaf()), tc.req.DC)
		}
	}
	if _, _, err := ca.IssueRequest(CertRequest{Name: "n", Role: RoleNode, Principal: "x", Now: time.Now(), Validity: time.Hour}); err == nil {
		t.Error("a node certificate named a principal")
	}
}

func TestParseSerial(t *testing.T) {
	for in, want := range map[string]string{
		"3f2a":               "3f2a",
		"3F:2A":              "3f2a",
		" 00:3f:2a ":         "3f2a",
		"0x3F2A":             "3f2a",
		"01":                 "1",
		"DEADBEEFdeadbeef00": "deadbeefdeadbeef00",
	} {
		if got, err := ParseSerial(in); err != nil || got != want {
			t.Errorf("ParseSerial(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "xyz", "12 34", "-1", ":"} {
		if _, err := ParseSerial(in); err == nil {
			t.Errorf("ParseSerial(%q) accepted", in)
		}
	}
}

func TestLoadCredentialsRevocationList(t *testing.T) {
	ca := testCA(t, "cluster")
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certPEM, keyPEM, err := ca.Issue("node-1", RoleNode, nil, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f := TLSFiles{CA: write("ca.pem", ca.CertPEM), Cert: write("n.pem", certPEM), Key: write("n-key.pem", keyPEM),
		Revoked:     []string{"AB:CD"},
		RevokedFile: write("revoked.txt", []byte("# revoked\n01:02 # lost laptop\n\n  ff\n")),
	}
	c, err := f.Load(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Revoked(), ","); got != "102,abcd,ff" {
		t.Fatalf("revoked %s", got)
	}
	// A bad line is named.
	write("revoked.txt", []byte("01\nnot-a-serial\n"))
	if _, err := f.Load(time.Now()); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad revocation file: %v", err)
	}
	// Revoking one's own certificate is refused at load.
	write("revoked.txt", []byte(c.Identity().Serial+"\n"))
	if _, err := f.Load(time.Now()); !errors.Is(err, ErrRevoked) {
		t.Fatalf("own certificate revoked: %v", err)
	} else {
		t.Log(err)
	}
}
