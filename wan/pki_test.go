package wan

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func parsePEMCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIssueAndVerify(t *testing.T) {
	now := time.Now()
	ca, caKey, err := NewCA("test cluster CA", now, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if nb := ca.Cert.NotBefore; !ca.Cert.IsCA || nb.After(now.Add(-time.Hour)) || nb.Before(now.Add(-time.Hour-time.Second)) {
		t.Fatalf("CA: IsCA %v, NotBefore %v", ca.Cert.IsCA, ca.Cert.NotBefore)
	}
	certPEM, keyPEM, err := ca.Issue("node-1", RoleNode, []string{"127.0.0.1", "node-1.example", "10.0.0.1:7000", "::1"}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf := parsePEMCert(t, certPEM)
	if leaf.Subject.CommonName != "node-1" || !slices.Equal(leaf.Subject.OrganizationalUnit, []string{"node"}) {
		t.Fatalf("subject %v", leaf.Subject)
	}
	if !slices.Equal(leaf.DNSNames, []string{"node-1.example"}) {
		t.Fatalf("DNS SANs %v", leaf.DNSNames)
	}
	wantIPs := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1"), net.ParseIP("::1")}
	if len(leaf.IPAddresses) != len(wantIPs) {
		t.Fatalf("IP SANs %v", leaf.IPAddresses)
	}
	for i, ip := range wantIPs {
		if !leaf.IPAddresses[i].Equal(ip) {
			t.Fatalf("IP SANs %v, want %v", leaf.IPAddresses, wantIPs)
		}
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		t.Fatalf("EKU %v", leaf.ExtKeyUsage)
	}

	creds, err := NewCredentials(ca.CertPEM, certPEM, keyPEM, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := creds.Identity(); got != (Identity{Name: "node-1", Role: RoleNode, Serial: FormatSerial(leaf.SerialNumber)}) {
		t.Fatalf("identity %+v", got)
	}

	// LoadCA restores a CA that issues certificates the same pool accepts.
	ca2, err := LoadCA(ca.CertPEM, caKey)
	if err != nil {
		t.Fatal(err)
	}
	cPEM, kPEM, err := ca2.Issue("cli", RoleClient, nil, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := NewCredentials(ca.CertPEM, cPEM, kPEM, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := cc.Identity(); got != (Identity{Name: "cli", Role: RoleClient, Serial: FormatSerial(cc.Leaf().SerialNumber)}) {
		t.Fatalf("identity %+v", got)
	}
	if _, err := cc.verifyPeer([][]byte{creds.Leaf().Raw}, x509.ExtKeyUsageServerAuth); err != nil {
		t.Fatalf("peer verification: %v", err)
	}

	// And from files.
	dir := t.TempDir()
	files := TLSFiles{CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, "n.crt"), Key: filepath.Join(dir, "n.key")}
	for path, b := range map[string][]byte{files.CA: ca.CertPEM, files.Cert: certPEM, files.Key: keyPEM} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fc, err := files.Load(now)
	if err != nil {
		t.Fatal(err)
	}
	if fc.Identity().Name != "node-1" {
		t.Fatalf("identity %+v", fc.Identity())
	}
}

func TestLoadCARefusesMismatchedKey(t *testing.T) {
	ca := testCA(t, "a")
	_, otherKey, err := NewCA("b", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(ca.CertPEM, otherKey); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Fatalf("got %v", err)
	}
}

func TestIssueRefusesBadInput(t *testing.T) {
	ca := testCA(t, "ca")
	if _, _, err := ca.Issue("n", Role("admin"), nil, time.Now(), time.Hour); err == nil {
		t.Fatal("unknown role accepted")
	}
	if _, _, err := ca.Issue("", RoleNode, nil, time.Now(), time.Hour); err == nil {
		t.Fatal("empty name accepted")
	}
}

func TestCredentialsErrors(t *testing.T) {
	now := time.Now()
	ca := testCA(t, "cluster")
	foreign := testCA(t, "foreign")
	certPEM, keyPEM, err := ca.Issue("node-1", RoleNode, nil, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expiredPEM, expiredKey, err := ca.Issue("node-1", RoleNode, nil, now.Add(-3*time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	futurePEM, futureKey, err := ca.Issue("node-1", RoleNode, nil, now.Add(5*time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreignPEM, foreignKey, err := foreign.Issue("node-1", RoleNode, nil, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, err := ca.Issue("node-2", RoleNode, nil, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name          string
		ca, cert, key []byte
		want          []string
	}{
		{"expired", ca.CertPEM, expiredPEM, expiredKey, []string{"expired at", now.Add(-2 * time.Hour).UTC().Format("2006-01-02T15"), "reissue", "meridian dev --config-only"}},
		{"not yet valid", ca.CertPEM, futurePEM, futureKey, []string{"not valid until", "clock"}},
		{"foreign CA", ca.CertPEM, foreignPEM, foreignKey, []string{"not signed by the cluster CA", `"foreign"`}},
		{"key mismatch", ca.CertPEM, certPEM, otherKey, []string{"does not belong"}},
		{"bad CA PEM", []byte("garbage"), certPEM, keyPEM, []string{"CA certificate", "no PEM"}},
		{"bad cert PEM", ca.CertPEM, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), keyPEM, []string{"bad certificate"}},
		{"bad key PEM", ca.CertPEM, certPEM, []byte("nope"), []string{"private key", "no PEM"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewCredentials(tc.ca, tc.cert, tc.key, now)
			if err == nil {
				t.Fatal("accepted")
			}
			t.Log(err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadCredentialsMissingFile(t *testing.T) {
	dir := t.TempDir()
	f := TLSFiles{CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, "n.crt"), Key: filepath.Join(dir, "n.key")}
	_, err := LoadCredentials(f, time.Now())
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), f.CA) {
		t.Fatalf("got %v", err)
	}
	_, err = LoadCredentials(TLSFiles{}, time.Now())
	for _, w := range []string{"tls.ca", "tls.cert", "tls.key"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Fatalf("error %v does not mention %s", err, w)
		}
	}
}

func TestHandshakeRefusesForeignCA(t *testing.T) {
	ca := testCA(t, "cluster")
	foreign := testCA(t, "foreign")
	srv, logs := listenT(t, testCreds(t, ca, "node-1", RoleNode), echoHandler)
	addr := srv.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// A node of another cluster cannot call in: it does not trust our node...
	intruder, _ := listenT(t, testCreds(t, foreign, "node-x", RoleNode), echoHandler)
	if _, err := echo(ctx, intruder, addr, "", 1); err == nil {
		t.Fatal("foreign node's call succeeded")
	} else if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "not signed by the cluster CA") {
		t.Fatalf("got %v, want ErrUnreachable explaining the CA", err)
	} else {
		t.Logf("foreign server refused: %v", err)
	}
	// ...and when it does (the cluster CA certificate is no secret), our
	// node refuses its certificate.
	certPEM, keyPEM, err := foreign.Issue("node-y", RoleNode, nil, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	both := append(append([]byte(nil), ca.CertPEM...), foreign.CertPEM...)
	sneaky, err := NewCredentials(both, certPEM, keyPEM, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	intruder2, _ := listenT(t, sneaky, echoHandler)
	if _, err := echo(ctx, intruder2, addr, "", 1); !errors.Is(err, ErrForbidden) {
		t.Fatalf("foreign node's call: %v, want ErrForbidden", err)
	} else {
		t.Logf("foreign client refused: %v", err)
	}
	eventually(t, 5*time.Second, "server logs the refusal", func() error {
		if logs.Contains("not signed by the cluster CA") {
			return nil
		}
		return errNotYet
	})

	// Nor can we call a node of another cluster.
	member, _ := listenT(t, testCreds(t, ca, "node-2", RoleNode), echoHandler)
	if _, err := echo(ctx, member, intruder.Addr().String(), "", 1); err == nil || !strings.Contains(err.Error(), "not signed by the cluster CA") {
		t.Fatalf("calling a foreign node: %v", err)
	}

	// The server keeps serving its own cluster.
	got, err := echo(ctx, member, addr, "node-1", 1)
	if err != nil || len(got) != 1 || got[0].From != "node-2" {
		t.Fatalf("member call: %+v, %v", got, err)
	}
}

func TestHandshakeRefusesExpiredPeer(t *testing.T) {
	past := time.Now().Add(-3 * time.Hour)
	ca, _, err := NewCA("cluster", past, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv, logs := listenT(t, testCreds(t, ca, "node-1", RoleNode), echoHandler)
	// Credentials that were valid when loaded but have expired since.
	certPEM, keyPEM, err := ca.Issue("node-old", RoleNode, nil, past, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	old, err := NewCredentials(ca.CertPEM, certPEM, keyPEM, past)
	if err != nil {
		t.Fatal(err)
	}
	stale, _ := listenT(t, old, echoHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := echo(ctx, stale, srv.Addr().String(), "", 1); !errors.Is(err, ErrForbidden) {
		t.Fatalf("expired peer's call: %v, want ErrForbidden", err)
	} else {
		t.Logf("expired client refused: %v", err)
	}
	eventually(t, 5*time.Second, "server logs the expired certificate", func() error {
		if logs.Contains("expired") {
			return nil
		}
		return errNotYet
	})
}

func TestClientRoleRefusedOnNodeALPN(t *testing.T) {
	ca := testCA(t, "cluster")
	srv, logs := listenT(t, testCreds(t, ca, "node-1", RoleNode), echoHandler)
	client := testCreds(t, ca, "cli", RoleClient)

	// A transport will not even start with a client certificate...
	if _, err := Listen(Config{Credentials: client, ListenAddr: "127.0.0.1:0"}, echoHandler); err == nil || !strings.Contains(err.Error(), "node certificate") {
		t.Fatalf("Listen with a client certificate: %v", err)
	}

	// ...and a node refuses a client certificate on the node ALPN.
	d, err := NewDialer(client, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.pool.tlsConf = d.pool.live.clientTLS(ALPNNode)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = echo(ctx, d, srv.Addr().String(), "", 1)
	if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "client certificate") {
		t.Fatalf("got %v, want ErrForbidden naming the role", err)
	}
	t.Logf("client on node ALPN: %v", err)
	if !logs.Contains("refused connection") || !logs.Contains("role=client") {
		t.Fatal("no log line for the refused connection")
	}
}

func TestDialerClientRole(t *testing.T) {
	ca := testCA(t, "cluster")
	var gotRole atomic.Value // the handler runs on another goroutine
	srv, _ := listenT(t, testCreds(t, ca, "node-1", RoleNode), HandlerFunc(func(ctx context.Context, from Identity, req *Envelope, reply Replier) {
		gotRole.Store(from.Role)
		echoHandler(ctx, from, req, reply)
	}))
	d, err := NewDialer(testCreds(t, ca, "cli", RoleClient), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := echo(ctx, d, srv.Addr().String(), "node-1", 3)
	if err != nil || len(got) != 1 || got[0].From != "cli" || got[0].N != 3 {
		t.Fatalf("%+v, %v", got, err)
	}
	if r, _ := gotRole.Load().(Role); r != RoleClient {
		t.Fatalf("handler saw role %q", r)
	}
	// A client cannot serve: a node dialling "it" refuses its certificate.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := echo(ctx, d, srv.Addr().String(), "", 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("call after Close: %v", err)
	}
}
