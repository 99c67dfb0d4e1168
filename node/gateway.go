package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/codec"
	"github.com/meridian-kv/meridian/consistency"
	"github.com/meridian-kv/meridian/wan"
)

// The HTTP gateway (docs/protocol.md, "HTTP gateway"): GET, PUT and
// DELETE of /v1/kv/{keyspace}/{key} over HTTPS with client certificates.
// It is a translation, not a second implementation: each request becomes
// the envelope a QUIC client would send, which the transport serves as it
// serves a stream's (the principal's rate, the deadline, then serve), and
// the reply envelopes become the answer. Authentication, grants, limits,
// audit, traces and error codes are therefore those of the QUIC path.

// Gateway media types and headers.
const (
	mediaCBOR    = "application/cbor"
	mediaJSON    = "application/json"
	mediaProblem = "application/problem+json"
	mediaBytes   = "application/octet-stream"

	headerContext = "X-Meridian-Context"
	headerWriter  = "X-Meridian-Writer"
	// headerError carries a refusal's code: it tells a refusal from an
	// answer that shares its status (a 404 of an unknown keyspace from
	// one of a key without a value).
	headerError = "X-Meridian-Error"
)

// gatewayBodyLimit bounds a request body: a client request fits in one
// frame on the QUIC path too.
const gatewayBodyLimit = wan.DefaultMaxFrame

// startGateway serves the HTTP gateway on Config.HTTP.
func (n *Node) startGateway() error {
	l, err := net.Listen("tcp", n.cfg.HTTP)
	if err != nil {
		return fmt.Errorf("node: http gateway: %w", err)
	}
	n.gatewayAddr = l.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/kv/{keyspace}/{key...}", n.serveGateway)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, &api.ClientError{Code: api.CodeBadRequest,
			Message: fmt.Sprintf("meridian: no such resource %q: the gateway serves /v1/kv/{keyspace}/{key}", r.URL.Path)}, http.StatusNotFound)
	})
	n.gateway = &http.Server{
		Handler:           mux,
		ConnContext:       n.gatewayConnContext,
		ConnState:         n.gatewayConnState,
		TLSConfig:         n.tr.HTTPSConfig(),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       peerIdleTimeout * 10,
		MaxHeaderBytes:    256 << 10, // a causal context may take 64 KiB
		// Refused handshakes are audited (Config.OnRefuse); net/http's
		// own line about each is noise.
		ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelDebug),
	}
	go func() {
		if err := n.gateway.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http gateway stopped", "err", err)
		}
	}()
	n.log.Info("http gateway", "addr", n.gatewayAddr)
	return nil
}

// gatewayConn is one connection to the gateway: it counts against its
// principal's connection limit (shared with QUIC) from its first request
// until it closes.
type gatewayConn struct {
	mu      sync.Mutex
	release func() // set once admitted
	closed  bool
}

type gatewayConnKey struct{}

func (n *Node) gatewayConnContext(ctx context.Context, c net.Conn) context.Context {
	gc := &gatewayConn{}
	n.gatewayConns.Store(c, gc)
	return context.WithValue(ctx, gatewayConnKey{}, gc)
}

func (n *Node) gatewayConnState(c net.Conn, s http.ConnState) {
	if s != http.StateClosed && s != http.StateHijacked {
		return
	}
	if v, ok := n.gatewayConns.LoadAndDelete(c); ok {
		gc := v.(*gatewayConn)
		gc.mu.Lock()
		defer gc.mu.Unlock()
		gc.closed = true
		if gc.release != nil {
			gc.release()
		}
	}
}

// admitConn counts the request's connection for from, once; it returns
// why not when from holds as many connections as it may.
func (n *Node) admitConn(r *http.Request, from wan.Identity, remote net.Addr) string {
	gc, ok := r.Context().Value(gatewayConnKey{}).(*gatewayConn)
	if !ok {
		return ""
	}
	gc.mu.Lock()
	defer gc.mu.Unlock()
	if gc.release != nil || gc.closed {
		return ""
	}
	release, refusal := n.tr.AdmitConn(from, remote)
	if refusal == "" {
		gc.release = release
	}
	return refusal
}

// HTTPAddr is the address the HTTP gateway listens on ("" without one).
func (n *Node) HTTPAddr() string { return n.gatewayAddr }

func (n *Node) stopGateway() error {
	if n.gateway == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := n.gateway.Shutdown(ctx); err != nil {
		return errors.Join(err, n.gateway.Close())
	}
	return nil
}

// serveGateway translates one HTTP request into a client protocol request.
func (n *Node) serveGateway(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		writeProblem(w, r, api.Errorf(api.CodeForbidden, "meridian: the gateway needs a client certificate of the cluster CA"), 0)
		return
	}
	from, err := n.tr.Authenticate(r.TLS.PeerCertificates)
	if err != nil {
		writeProblem(w, r, api.Errorf(api.CodeForbidden, "meridian: %v", err), 0)
		return
	}
	var remote net.Addr
	if a, err := net.ResolveTCPAddr("tcp", r.RemoteAddr); err == nil {
		remote = a
	}
	if refusal := n.admitConn(r, from, remote); refusal != "" {
		w.Header().Set("Connection", "close")
		writeProblem(w, r, api.Errorf(wan.CodeOverloaded, "meridian: %s", refusal), 0)
		return
	}
	ks, key := r.PathValue("keyspace"), r.PathValue("key")
	var cons string
	for name, vals := range r.URL.Query() {
		if name != "consistency" || len(vals) != 1 {
			writeProblem(w, r, api.Errorf(api.CodeBadRequest, "meridian: unknown or repeated query parameter %q (the gateway takes one consistency=LEVEL or consistency=dc=n,dc=n)", name), 0)
			return
		}
		cons = vals[0]
	}
	ctxHeader := r.Header.Get(headerContext)

	var t wan.MsgType
	var payload []byte
	switch r.Method {
	case http.MethodGet:
		t = api.TypeGet
		payload, err = codec.Marshal(&api.GetRequest{Keyspace: ks, Key: []byte(key), Consistency: cons})
	case http.MethodDelete:
		t = api.TypePut
		payload, err = codec.Marshal(&api.PutRequest{Keyspace: ks, Key: []byte(key), Delete: true, Context: ctxHeader, Consistency: cons})
	case http.MethodPut:
		t = api.TypePut
		body, rerr := n.tr.ReadRequest(from, r.Body, gatewayBodyLimit)
		if rerr != nil {
			writeProblem(w, r, gatewayError(rerr), 0)
			return
		}
		if mediaType(r.Header.Get("Content-Type")) == mediaCBOR {
			// The body is the put-request itself: it goes to the node as
			// it came, so the node decodes (and refuses) it as it would
			// from a QUIC client. Only the path must agree with it.
			if cons != "" || ctxHeader != "" {
				writeProblem(w, r, api.Errorf(api.CodeBadRequest, "meridian: a put-request body carries its own consistency and context: leave out ?consistency= and %s", headerContext), 0)
				return
			}
			var pr api.PutRequest
			if codec.Unmarshal(body, &pr) == nil && (pr.Keyspace != ks || string(pr.Key) != key) {
				writeProblem(w, r, api.Errorf(api.CodeBadRequest, "meridian: the put-request body names keyspace %q key %q, the path %q key %q", pr.Keyspace, pr.Key, ks, key), 0)
				return
			}
			payload = body
		} else {
			payload, err = codec.Marshal(&api.PutRequest{Keyspace: ks, Key: []byte(key), Value: body, Context: ctxHeader, Consistency: cons})
		}
	default:
		w.Header().Set("Allow", "GET, PUT, DELETE")
		writeProblem(w, r, api.Errorf(api.CodeBadRequest, "meridian: method %s not allowed: the gateway takes GET, PUT and DELETE", r.Method), http.StatusMethodNotAllowed)
		return
	}
	if err != nil {
		writeProblem(w, r, api.Errorf(api.CodeInternal, "meridian: encode the request: %v", err), 0)
		return
	}
	env := &wan.Envelope{V: wan.Version, Type: t, ID: 1, Payload: payload,
		Trace: wan.TraceContext{Traceparent: r.Header.Get("traceparent"), Tracestate: r.Header.Get("tracestate")}}
	replies := n.tr.ServeLocal(r.Context(), from, remote, env)
	if len(replies) == 0 {
		writeProblem(w, r, api.Errorf(api.CodeInternal, "meridian: the node gave no answer"), 0)
		return
	}
	reply := replies[len(replies)-1]
	switch reply.Type {
	case api.TypeGetReply:
		writeGet(w, r, reply.Payload)
	case api.TypePutReply:
		writePut(w, r, reply.Payload)
	case api.TypeClientError:
		var cerr api.ClientError
		if err := reply.Decode(&cerr); err != nil {
			cerr = api.ClientError{Code: api.CodeInternal, Message: fmt.Sprintf("meridian: undecodable refusal: %v", err)}
		}
		writeProblem(w, r, &cerr, 0)
	case wan.TypeError:
		var ep wan.ErrorPayload
		if err := reply.Decode(&ep); err != nil {
			ep = wan.ErrorPayload{Code: api.CodeInternal, Message: fmt.Sprintf("meridian: undecodable error: %v", err)}
		}
		writeProblem(w, r, &api.ClientError{Code: ep.Code, Message: ep.Message}, 0)
	default:
		writeProblem(w, r, api.Errorf(api.CodeInternal, "meridian: unexpected reply type %d", reply.Type), 0)
	}
}

// gatewayError turns a failure to read a request body into a refusal.
func gatewayError(err error) *api.ClientError {
	var re *wan.RemoteError
	switch {
	case errors.As(err, &re):
		return &api.ClientError{Code: re.Code, Message: "meridian: " + re.Message}
	case errors.Is(err, wan.ErrFrameTooLarge):
		return api.Errorf(api.CodeTooLarge, "meridian: %v", err)
	}
	return api.Errorf(api.CodeBadRequest, "meridian: reading the request body: %v", err)
}

// siblingJSON and getJSON are a get-response in JSON.
type siblingJSON struct {
	Value  []byte `json:"value"`
	Writer string `json:"writer"`
}

type getJSON struct {
	Siblings []siblingJSON  `json:"siblings"`
	Context  string         `json:"context"`
	Deleted  bool           `json:"deleted"`
	Acked    map[string]int `json:"acked"`
}

// putJSON is a put-response in JSON.
type putJSON struct {
	Context     string         `json:"context"`
	Siblings    int            `json:"siblings"`
	Acked       map[string]int `json:"acked"`
	Warning     string         `json:"warning,omitempty"`
	Coordinator string         `json:"coordinator"`
}

// problemJSON is an RFC 9457 problem with the client protocol's code.
type problemJSON struct {
	Type   string                   `json:"type"`
	Title  string                   `json:"title"`
	Status int                      `json:"status"`
	Detail string                   `json:"detail"`
	Code   string                   `json:"code"`
	Quorum *consistency.QuorumError `json:"quorum,omitempty"`
}

// wantsCBOR reports whether the client asked for CBOR bodies.
func wantsCBOR(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mediaType(part) == mediaCBOR {
			return true
		}
	}
	return false
}

// mediaType is a media type without its parameters, in lower case.
func mediaType(s string) string {
	s, _, _ = strings.Cut(s, ";")
	return strings.ToLower(strings.TrimSpace(s))
}

func writeGet(w http.ResponseWriter, r *http.Request, payload []byte) {
	var res api.GetResponse
	if err := codec.Unmarshal(payload, &res); err != nil {
		writeProblem(w, r, api.Errorf(api.CodeInternal, "meridian: undecodable get reply: %v", err), 0)
		return
	}
	if res.Context != "" {
		w.Header().Set(headerContext, res.Context)
	}
	status := http.StatusMultipleChoices
	switch len(res.Siblings) {
	case 0:
		status = http.StatusNotFound
	case 1:
		w.Header().Set("Content-Type", mediaBytes)
		w.Header().Set(headerWriter, res.Siblings[0].Writer)
		w.WriteHeader(http.StatusOK)
		w.Write(res.Siblings[0].Value)
		return
	}
	if wantsCBOR(r) {
		writeBody(w, status, mediaCBOR, payload)
		return
	}
	out := getJSON{Siblings: make([]siblingJSON, len(res.Siblings)), Context: res.Context, Deleted: res.Deleted, Acked: res.Acked}
	for i, s := range res.Siblings {
		out.Siblings[i] = siblingJSON{Value: s.Value, Writer: s.Writer}
	}
	writeJSON(w, status, mediaJSON, out)
}

func writePut(w http.ResponseWriter, r *http.Request, payload []byte) {
	var res api.PutResponse
	if err := codec.Unmarshal(payload, &res); err != nil {
		writeProblem(w, r, api.Errorf(api.CodeInternal, "meridian: undecodable put reply: %v", err), 0)
		return
	}
	if res.Context != "" {
		w.Header().Set(headerContext, res.Context)
	}
	if wantsCBOR(r) {
		writeBody(w, http.StatusOK, mediaCBOR, payload)
		return
	}
	writeJSON(w, http.StatusOK, mediaJSON, putJSON{Context: res.Context, Siblings: res.Siblings, Acked: res.Acked, Warning: res.Warning, Coordinator: res.Coordinator})
}

// httpStatus maps the client protocol's error codes (both kinds) to HTTP.
func httpStatus(code string) int {
	switch code {
	case api.CodeBadRequest, api.CodeConsistency:
		return http.StatusBadRequest
	case api.CodeForbidden:
		return http.StatusForbidden
	case api.CodeUnknownKeyspace:
		return http.StatusNotFound
	case api.CodeTooManySiblings:
		return http.StatusConflict
	case api.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case wan.CodeOverloaded:
		return http.StatusTooManyRequests
	case api.CodeQuorum, api.CodeUnavailable, wan.CodeNotExecuted:
		return http.StatusServiceUnavailable
	case wan.CodeDeadlineExceeded:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// writeProblem answers with a refusal: a client-error in CBOR, or a
// problem in JSON. status 0 means the code's.
func writeProblem(w http.ResponseWriter, r *http.Request, cerr *api.ClientError, status int) {
	if status == 0 {
		status = httpStatus(cerr.Code)
	}
	w.Header().Set(headerError, cerr.Code)
	if wantsCBOR(r) {
		b, err := codec.Marshal(cerr)
		if err == nil {
			writeBody(w, status, mediaCBOR, b)
			return
		}
	}
	writeJSON(w, status, mediaProblem, problemJSON{
		Type: "urn:meridian:error:" + cerr.Code, Title: http.StatusText(status), Status: status,
		Detail: cerr.Message, Code: cerr.Code, Quorum: cerr.Quorum,
	})
}

func writeJSON(w http.ResponseWriter, status int, media string, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, status, media, append(b, '\n'))
}

func writeBody(w http.ResponseWriter, status int, media string, b []byte) {
	w.Header().Set("Content-Type", media)
	w.WriteHeader(status)
	w.Write(b)
}
