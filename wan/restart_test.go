package wan

import (
	"errors"
	"testing"
)

// A peer that crashed and came back on the same address answers the
// caller's pooled connection with a stateless reset. The call says the
// peer restarted (so an idempotent caller may resend at once), and the
// next call dials afresh and succeeds.
func TestRestartedPeerIsReportedAsRestarted(t *testing.T) {
	ca := testCA(t, "cluster")
	srvCreds := testCreds(t, ca, "node-1", RoleNode)
	srv, _ := listenT(t, srvCreds, echoHandler)
	cli, _ := listenT(t, testCreds(t, ca, "node-2", RoleNode), echoHandler)
	addr := srv.Addr().String()
	if _, err := echo(testCtx(t), cli, addr, "node-1", 1); err != nil {
		t.Fatal(err)
	}
	// A crash: the socket goes away without a word to the caller.
	srv.pc.Close()
	srv.Close()
	listenT(t, srvCreds, echoHandler, func(c *Config) { c.ListenAddr = addr })
	_, err := echo(testCtx(t), cli, addr, "node-1", 2)
	if !errors.Is(err, ErrPeerRestarted) {
		t.Fatalf("call on the connection to the restarted peer: %v, want ErrPeerRestarted", err)
	}
	if _, err := echo(testCtx(t), cli, addr, "node-1", 3); err != nil {
		t.Fatalf("the next call: %v", err)
	}
}
