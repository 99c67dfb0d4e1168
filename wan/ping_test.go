package wan

import (
	"testing"
)

// A ping is answered by the transport itself with a ping. (Ping and
// fragment once shared type 2: the reader took a ping for a broken
// fragment and answered it with a bad_request error, which the pinging
// side took as a sign of life all the same.)
func TestPingIsAnsweredWithAPing(t *testing.T) {
	ca := testCA(t, "cluster")
	srv, _ := listenT(t, testCreds(t, ca, "node-1", RoleNode), HandlerFunc(echoHandler))
	addr := srv.Addr().String()
	d, err := NewDialer(testCreds(t, ca, "cli", RoleClient), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := testCtx(t)
	if _, err := echo(ctx, d, addr, "node-1", 1); err != nil {
		t.Fatal(err)
	}
	d.pool.mu.Lock()
	conn := d.pool.peers[addr].conn
	d.pool.mu.Unlock()
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	frame, err := appendFrame(nil, pingEnvelope, DefaultMaxFrame)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := str.Write(frame); err != nil {
		t.Fatal(err)
	}
	str.Close()
	reply, err := ReadFrame(str, DefaultMaxFrame)
	if err != nil {
		t.Fatal(err)
	}
	if reply.Type != TypePing {
		var ep ErrorPayload
		_ = reply.Decode(&ep)
		t.Fatalf("a ping was answered with type %d (%+v), want a ping (type %d)", reply.Type, ep, TypePing)
	}
}
