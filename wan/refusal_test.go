package wan

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// refusals collects what Config.OnRefuse reports.
type refusals struct {
	mu   sync.Mutex
	list []Refusal
}

func (r *refusals) add(x Refusal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, x)
}

func (r *refusals) find(f func(Refusal) bool) (Refusal, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range r.list {
		if f(x) {
			return x, true
		}
	}
	return Refusal{}, false
}

// A handler learns the caller's address, and every refused connection —
// a foreign certificate during the handshake, a wrong role after it — is
// reported to OnRefuse, for the audit log.
func TestRemoteAddrAndOnRefuse(t *testing.T) {
	ca := testCA(t, "cluster")
	var seen sync.Map
	h := HandlerFunc(func(ctx context.Context, from Identity, req *Envelope, reply Replier) {
		seen.Store(from.Name, RemoteAddr(ctx))
		echoHandler(ctx, from, req, reply)
	})
	var got refusals
	srv, _ := listenT(t, testCreds(t, ca, "node-1", RoleNode), h, func(c *Config) { c.OnRefuse = got.add })
	addr := srv.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	member, _ := listenT(t, testCreds(t, ca, "node-2", RoleNode), echoHandler)
	if _, err := echo(ctx, member, addr, "node-1", 1); err != nil {
		t.Fatal(err)
	}
	if a, _ := seen.Load("node-2"); a != member.Addr().String() {
		t.Fatalf("RemoteAddr in the handler = %v, want the caller's %s", a, member.Addr())
	}

	// A client certificate on the node ALPN is refused after the handshake.
	client := testCreds(t, ca, "cli", RoleClient)
	d, err := NewDialer(client, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.pool.tlsConf = d.pool.live.clientTLS(ALPNNode)
	if _, err := echo(ctx, d, addr, "", 1); err == nil {
		t.Fatal("a client certificate was served on the node ALPN")
	}
	// A certificate of another CA is refused during the handshake.
	foreign := testCA(t, "foreign")
	certPEM, keyPEM, err := foreign.Issue("node-y", RoleNode, nil, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sneaky, err := NewCredentials(append(append([]byte(nil), ca.CertPEM...), foreign.CertPEM...), certPEM, keyPEM, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	intruder, _ := listenT(t, sneaky, echoHandler)
	if _, err := echo(ctx, intruder, addr, "", 1); err == nil {
		t.Fatal("a foreign certificate was served")
	}
	eventually(t, 5*time.Second, "both refusals reported", func() error {
		role, ok1 := got.find(func(r Refusal) bool { return r.Name == "cli" && r.Role == RoleClient })
		_, ok2 := got.find(func(r Refusal) bool { return strings.Contains(r.Reason, "not signed by the cluster CA") })
		if !ok1 || !ok2 {
			_, any := got.find(func(Refusal) bool { return true })
			return fmt.Errorf("not yet (any refusal reported: %v)", any)
		}
		if role.Remote == "" || !strings.Contains(role.Reason, "may not use ALPN") {
			return fmt.Errorf("wrong-role refusal %+v lacks the address or the reason", role)
		}
		return nil
	})
}
