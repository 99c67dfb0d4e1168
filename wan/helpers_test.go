package wan

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// Message types used by the tests.
const (
	typeEcho  MsgType = 16
	typeReply MsgType = 17
)

type echoMsg struct {
	_    struct{} `cbor:",toarray"`
	N    int
	S    string
	From string
}

// testCA returns a fresh cluster CA.
func testCA(t testing.TB, name string) *CA {
	t.Helper()
	ca, _, err := NewCA(name, time.Now(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// testCreds issues and loads credentials for name and role from ca.
func testCreds(t testing.TB, ca *CA, name string, role Role) *Credentials {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue(name, role, []string{"127.0.0.1"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCredentials(ca.CertPEM, certPEM, keyPEM, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// logBuffer is a goroutine-safe log sink tests can search.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) Contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.b.String(), s)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// listenT starts a transport on loopback, closed when the test ends.
func listenT(t testing.TB, creds *Credentials, h Handler, mods ...func(*Config)) (*Transport, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cfg := Config{Credentials: creds, ListenAddr: "127.0.0.1:0", Logger: logs.logger()}
	for _, m := range mods {
		m(&cfg)
	}
	tr, err := Listen(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr, logs
}

// echoHandler replies once with the request's payload and the caller's name.
var echoHandler = HandlerFunc(func(ctx context.Context, from Identity, req *Envelope, reply Replier) {
	var m echoMsg
	if err := req.Decode(&m); err != nil {
		reply.SendError(CodeBadRequest, err.Error())
		return
	}
	m.From = from.Name
	e, err := NewEnvelope(typeReply, &m)
	if err != nil {
		reply.SendError(CodeInternal, err.Error())
		return
	}
	reply.Send(e)
})

// caller is Transport or Dialer.
type caller interface {
	Call(ctx context.Context, addr, wantPeer string, req *Envelope, onReply func(*Envelope) error) error
}

// echo makes one echo call and returns the replies.
func echo(ctx context.Context, c caller, addr, wantPeer string, n int) ([]echoMsg, error) {
	req, err := NewEnvelope(typeEcho, &echoMsg{N: n, S: "hello"})
	if err != nil {
		return nil, err
	}
	var out []echoMsg
	err = c.Call(ctx, addr, wantPeer, req, func(r *Envelope) error {
		var m echoMsg
		if err := r.Decode(&m); err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, within, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var errNotYet = errors.New("not yet")
