package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-kv/meridian/telemetry"
	"github.com/meridian-kv/meridian/wan"
)

// The audit log records who did what to the cluster: administrative
// operations (inspect, repair, status, ring, grant, revoke, grants),
// every request refused for want of a grant, and every connection refused
// for its certificate. Ordinary successful reads and writes are not
// recorded (they are traced and counted instead). Each event is one JSON
// line, written with a single append, so lines of concurrent events never
// interleave and a crash loses at most the line being written.

// AuditConfig configures the audit log.
type AuditConfig struct {
	// Path is the file the log is appended to, created with mode 0600 if
	// missing. Default: audit.log in data_dir. "-" writes to stderr.
	Path string `yaml:"path,omitempty"`
}

// Audit outcomes.
const (
	AuditOK        = "ok"        // done
	AuditForbidden = "forbidden" // the principal lacks a grant
	AuditError     = "error"     // allowed, but failed
	AuditRefused   = "refused"   // a connection refused for its certificate
)

// AuditEvent is one line of the audit log.
type AuditEvent struct {
	Time      string `json:"time"` // RFC 3339, UTC, nanoseconds
	Node      string `json:"node"` // the node that logged it
	Principal string `json:"principal,omitempty"`
	Role      string `json:"role,omitempty"`   // client or node
	Serial    string `json:"serial,omitempty"` // the certificate's serial (hex), as tls.revoked names it
	Operation string `json:"operation"`
	Keyspace  string `json:"keyspace,omitempty"`
	Outcome   string `json:"outcome"`
	// Detail says what an operation changed or asked, e.g. "grant write to
	// alice"; Reason why it was refused or failed.
	Detail  string `json:"detail,omitempty"`
	Reason  string `json:"reason,omitempty"`
	TraceID string `json:"trace_id,omitempty"`
	Remote  string `json:"remote,omitempty"`
}

// auditLog appends events to a writer. It is safe for concurrent use.
type auditLog struct {
	node   string
	log    *slog.Logger
	now    func() time.Time
	mu     sync.Mutex
	w      io.Writer
	closer io.Closer
	failed bool // a write failed; logged once until one succeeds
}

// openAudit opens the configured audit log: w when set (tests), else
// cfg.Audit.Path, else audit.log in the data directory. A node whose store
// is not on the real disk (tests) logs to io.Discard unless told a path.
func openAudit(cfg *Config, onDisk bool, w io.Writer, log *slog.Logger, now func() time.Time) (*auditLog, error) {
	a := &auditLog{node: cfg.ID, log: log, now: now, w: w}
	if w != nil {
		return a, nil
	}
	path := cfg.Audit.Path
	switch {
	case path == "-":
		a.w = os.Stderr
		return a, nil
	case path == "" && !onDisk:
		a.w = io.Discard
		return a, nil
	case path == "":
		path = filepath.Join(cfg.DataDir, "audit.log")
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("audit log: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log (audit.path): %w", err)
	}
	a.w, a.closer = f, f
	return a, nil
}

// record appends one event, stamping its time and node.
func (a *auditLog) record(ev AuditEvent) {
	ev.Time = a.now().UTC().Format(time.RFC3339Nano)
	ev.Node = a.node
	line, err := json.Marshal(&ev)
	if err != nil {
		a.log.Error("audit: encoding an event", "err", err)
		return
	}
	line = append(line, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.w.Write(line); err != nil {
		if !a.failed {
			a.log.Error("audit: writing the audit log failed; events are lost until it works again", "err", err)
		}
		a.failed = true
		return
	}
	a.failed = false
}

func (a *auditLog) close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closer == nil {
		return nil
	}
	err := a.closer.Close()
	a.closer, a.w = nil, io.Discard
	return err
}

// auditRequest records one request from a peer: who, what, on which
// keyspace, how it ended, with the request's trace id and the peer's
// address.
func (n *Node) auditRequest(ctx context.Context, from wan.Identity, req *wan.Envelope, op, keyspace, outcome, detail, reason string) {
	ev := AuditEvent{
		Principal: from.Name, Role: string(from.Role), Serial: from.Serial, Operation: op, Keyspace: keyspace,
		Outcome: outcome, Detail: detail, Reason: reason, Remote: wan.RemoteAddr(ctx),
	}
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() && req != nil {
		sc = trace.SpanContextFromContext(telemetry.Extract(context.Background(), req.Trace.Traceparent, req.Trace.Tracestate))
	}
	if sc.IsValid() {
		ev.TraceID = sc.TraceID().String()
	}
	n.audit.record(ev)
}

// auditRefusal records a connection the transport refused.
func (n *Node) auditRefusal(r wan.Refusal) {
	n.audit.record(AuditEvent{Principal: r.Name, Role: string(r.Role), Serial: r.Serial, Operation: "connect", Outcome: AuditRefused, Reason: r.Reason, Remote: r.Remote})
}

// truncate shortens a key for the audit log.
func truncate(key []byte, max int) string {
	if len(key) <= max {
		return string(key)
	}
	return string(key[:max]) + "..."
}
