package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/telemetry"
	"github.com/meridian-kv/meridian/wan"
)

// startAdmin serves /metrics, /healthz and the status page (/ and
// /status.json, statuspage.go) on Config.Admin, and the profiles under
// /debug/pprof/ if Config.Profiling.
func (n *Node) startAdmin(metrics http.Handler) error {
	l, err := net.Listen("tcp", n.cfg.Admin)
	if err != nil {
		return fmt.Errorf("node: admin endpoint: %w", err)
	}
	n.adminAddr = l.Addr().String()
	if metrics == nil {
		metrics = http.NotFoundHandler()
	}
	mux := http.NewServeMux()
	mux.Handle("/", telemetry.AdminHandler(metrics, n.healthz))
	mux.HandleFunc("GET /{$}", n.serveStatusPage)
	mux.HandleFunc("GET /status.json", n.serveStatusJSON)
	if n.cfg.Profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	n.admin = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() {
		if err := n.admin.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("admin endpoint stopped", "err", err)
		}
	}()
	n.log.Info("admin endpoint", "addr", l.Addr().String())
	return nil
}

// AdminAddr is the address the admin endpoint listens on ("" without one).
func (n *Node) AdminAddr() string { return n.adminAddr }

func (n *Node) stopAdmin() error {
	if n.unregister != nil {
		n.unregister()
	}
	if n.admin == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return n.admin.Shutdown(ctx)
}

// healthz reports whether the node can serve: open, and its store usable.
func (n *Node) healthz() error {
	if n.closed.Load() {
		return errors.New("node is shutting down")
	}
	_, err := n.store.Get("\x00healthz", []byte("k"))
	return err
}

// startRequest starts the coordinator's server span of a client request
// and returns a function that ends it, records its latency and counts its
// error.
func (n *Node) startRequest(ctx context.Context, req *wan.Envelope, op, ks, cons string) (context.Context, func(*api.ClientError, map[string]int, int)) {
	start := time.Now()
	var span trace.Span
	if telemetry.Noop(n.tracer) {
		ctx, span = n.startServe(ctx, req) // no attributes to build
	} else {
		ctx, span = n.startServe(ctx, req, telemetry.Namespace(ks), telemetry.Consistency(orDefault(cons, "default")))
		span.SetName(telemetry.SpanName(op, ks))
		span.SetAttributes(telemetry.Operation(op))
	}
	return ctx, func(cerr *api.ClientError, acked map[string]int, siblings int) {
		kind := ""
		rec := span.IsRecording()
		if cerr != nil {
			kind = cerr.Code
			span.SetStatus(codes.Error, cerr.Message)
			if cerr.Quorum != nil {
				if rec {
					span.SetAttributes(telemetry.ReplicasRequired(cerr.Quorum.Required)...)
				}
				acked = cerr.Quorum.Acked
			}
			n.metrics.Errors.Add(ctx, 1, metric.WithAttributes(telemetry.ErrorKind(kind)))
		}
		if rec && acked != nil {
			span.SetAttributes(telemetry.ReplicasAcked(acked)...)
		}
		if rec && siblings >= 0 {
			span.SetAttributes(telemetry.Siblings(siblings))
		}
		span.End()
		d := time.Since(start)
		n.metrics.ObserveRequest(ctx, op, orDefault(cons, "default"), n.cfg.DC, kind, d)
		n.reqs.add("client", n.cfg.DC, time.Now(), d)
	}
}
