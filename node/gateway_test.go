package node_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/codec"
	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/wan"
)

// gatewayCluster starts a real cluster (two regions of one node, real
// sockets) whose nodes serve the HTTP gateway on a port of their own
// choosing, recording every span.
func gatewayCluster(t *testing.T, tweaks ...func(*node.Config)) (*realCluster, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tc := startRealCluster(t, clusterOpts{
		regions: []string{"east", "west"}, nodesPerRegion: 1, tracer: tp,
		tweak: func(c *node.Config) {
			c.HTTP = "127.0.0.1:0"
			c.Limits.MaxValueBytes = 64 << 10
			for _, tw := range tweaks {
				tw(c)
			}
		},
	})
	return tc, rec
}

// httpsClient is an HTTP client holding the certificate tls names,
// trusting the cluster CA.
func httpsClient(t *testing.T, files wan.TLSFiles) *http.Client {
	t.Helper()
	caPEM, err := os.ReadFile(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA certificate in", files.CA)
	}
	cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

type gatewayAnswer struct {
	status int
	header http.Header
	body   []byte
}

func (a gatewayAnswer) problem(t *testing.T) map[string]any {
	t.Helper()
	if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d, content type %q, want a problem: %s", a.status, ct, a.body)
	}
	var p map[string]any
	if err := json.Unmarshal(a.body, &p); err != nil {
		t.Fatalf("problem body %q: %v", a.body, err)
	}
	return p
}

func do(t *testing.T, c *http.Client, method, url string, body []byte, hdr map[string]string) gatewayAnswer {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return gatewayAnswer{res.StatusCode, res.Header, b}
}

// TestGatewayReadsAndWrites goes through the gateway with real TLS: a
// put, a get of one value, a second blind put that makes siblings (300,
// in JSON and in CBOR), a put with the 300's context that resolves them,
// a delete with the context (then 404); a QUIC client sees the same data.
func TestGatewayReadsAndWrites(t *testing.T) {
	tc, _ := gatewayCluster(t)
	hc := httpsClient(t, tc.dev.ClientTLS)
	base := "https://" + tc.nodes["east-1"].HTTPAddr() + "/v1/kv/default/"
	west := "https://" + tc.nodes["west-1"].HTTPAddr() + "/v1/kv/default/"

	a := do(t, hc, "PUT", base+"greeting?consistency=ALL", []byte("hello"), nil)
	if a.status != 200 || a.header.Get("X-Meridian-Context") == "" {
		t.Fatalf("put: %d %v %s", a.status, a.header, a.body)
	}
	a = do(t, hc, "GET", west+"greeting?consistency=east=1,west=1", nil, nil)
	if a.status != 200 || string(a.body) != "hello" || a.header.Get("Content-Type") != "application/octet-stream" || a.header.Get("X-Meridian-Context") == "" {
		t.Fatalf("get of one value: %d %v %q", a.status, a.header, a.body)
	}

	// A second blind write is concurrent with the first: siblings.
	if a = do(t, hc, "PUT", west+"greeting?consistency=ALL", []byte("hola"), nil); a.status != 200 {
		t.Fatalf("second put: %d %s", a.status, a.body)
	}
	a = do(t, hc, "GET", base+"greeting?consistency=ALL", nil, nil)
	if a.status != http.StatusMultipleChoices || a.header.Get("Content-Type") != "application/json" {
		t.Fatalf("get of siblings: %d %v %s", a.status, a.header, a.body)
	}
	var sibs struct {
		Siblings []struct {
			Value  []byte `json:"value"`
			Writer string `json:"writer"`
		} `json:"siblings"`
		Context string `json:"context"`
	}
	if err := json.Unmarshal(a.body, &sibs); err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, s := range sibs.Siblings {
		got = append(got, string(s.Value))
	}
	if strings.Join(got, ",") != "hello,hola" && strings.Join(got, ",") != "hola,hello" {
		t.Fatalf("siblings %q, want hello and hola", got)
	}
	if sibs.Context != a.header.Get("X-Meridian-Context") {
		t.Fatalf("body context %q, header %q", sibs.Context, a.header.Get("X-Meridian-Context"))
	}
	c := do(t, hc, "GET", base+"greeting?consistency=ALL", nil, map[string]string{"Accept": "application/cbor"})
	var gr api.GetResponse
	if c.status != 300 || c.header.Get("Content-Type") != "application/cbor" {
		t.Fatalf("cbor get: %d %v", c.status, c.header)
	}
	if err := codec.Unmarshal(c.body, &gr); err != nil || len(gr.Siblings) != 2 || gr.Context != sibs.Context {
		t.Fatalf("cbor body %x decodes to %+v, %v", c.body, gr, err)
	}

	// Resolve with the context: one value again.
	a = do(t, hc, "PUT", base+"greeting?consistency=ALL", []byte("hello, hola"), map[string]string{"X-Meridian-Context": sibs.Context})
	if a.status != 200 {
		t.Fatalf("resolving put: %d %s", a.status, a.body)
	}
	var put struct {
		Siblings int `json:"siblings"`
	}
	if err := json.Unmarshal(a.body, &put); err != nil || put.Siblings != 1 {
		t.Fatalf("resolving put reports %s (%v)", a.body, err)
	}
	a = do(t, hc, "GET", west+"greeting?consistency=ALL", nil, nil)
	if a.status != 200 || string(a.body) != "hello, hola" {
		t.Fatalf("after resolving: %d %q", a.status, a.body)
	}
	res, err := tc.client.Get(ctx(t), []byte("greeting"), &client.ReadOptions{Consistency: "ALL"})
	if err != nil || strings.Join(values(res), ",") != "hello, hola" {
		t.Fatalf("the QUIC client reads %+v, %v", res, err)
	}

	// A put whose body is the QUIC path's put-request.
	body, _ := codec.Marshal(&api.PutRequest{Keyspace: "default", Key: []byte("in cbor"), Value: []byte{0, 1, 2}, Consistency: "ALL"})
	if c := do(t, hc, "PUT", base+"in%20cbor", body, map[string]string{"Content-Type": "application/cbor", "Accept": "application/cbor"}); c.status != 200 || c.header.Get("Content-Type") != "application/cbor" {
		t.Fatalf("cbor put: %d %v %s", c.status, c.header, c.body)
	}
	if c := do(t, hc, "GET", west+"in%20cbor?consistency=ALL", nil, nil); c.status != 200 || !bytes.Equal(c.body, []byte{0, 1, 2}) {
		t.Fatalf("get of the cbor put: %d %q", c.status, c.body)
	}

	// Delete with the context: gone, and a 404 that still carries the
	// tombstone's context.
	a = do(t, hc, "DELETE", base+"greeting?consistency=ALL", nil, map[string]string{"X-Meridian-Context": a.header.Get("X-Meridian-Context")})
	if a.status != 200 {
		t.Fatalf("delete: %d %s", a.status, a.body)
	}
	a = do(t, hc, "GET", west+"greeting?consistency=ALL", nil, nil)
	var gone struct {
		Siblings []any `json:"siblings"`
		Deleted  bool  `json:"deleted"`
	}
	if a.status != 404 || json.Unmarshal(a.body, &gone) != nil || len(gone.Siblings) != 0 || !gone.Deleted || a.header.Get("X-Meridian-Context") == "" || a.header.Get("X-Meridian-Error") != "" {
		t.Fatalf("get after delete: %d %v %s", a.status, a.header, a.body)
	}
}

// TestGatewayRefusesBadInput sends what the gateway must refuse and checks
// each answer is a 4xx problem with the QUIC path's code, and that none of
// it changed the key.
func TestGatewayRefusesBadInput(t *testing.T) {
	tc, _ := gatewayCluster(t)
	hc := httpsClient(t, tc.dev.ClientTLS)
	host := "https://" + tc.nodes["east-1"].HTTPAddr()
	url := host + "/v1/kv/default/kept"
	if a := do(t, hc, "PUT", url+"?consistency=ALL", []byte("safe"), nil); a.status != 200 {
		t.Fatalf("put: %d %s", a.status, a.body)
	}
	goodCBOR, _ := codec.Marshal(&api.PutRequest{Keyspace: "default", Key: []byte("kept"), Value: []byte("evil")})
	badCBOR := goodCBOR[:len(goodCBOR)-3] // truncated
	for _, c := range []struct {
		name, method, url string
		body              []byte
		hdr               map[string]string
		status            int
		code              string
	}{
		{"oversized key", "PUT", host + "/v1/kv/default/" + strings.Repeat("k", api.MaxKeyLen+1), []byte("v"), nil, 413, api.CodeTooLarge},
		{"oversized value", "PUT", url, bytes.Repeat([]byte("v"), 64<<10+1), nil, 413, api.CodeTooLarge},
		{"body over a frame", "PUT", url, bytes.Repeat([]byte("v"), wan.DefaultMaxFrame+1), nil, 413, api.CodeTooLarge},
		{"malformed CBOR body", "PUT", url, badCBOR, map[string]string{"Content-Type": "application/cbor"}, 400, api.CodeBadRequest},
		{"CBOR body for another key", "PUT", host + "/v1/kv/default/other", goodCBOR, map[string]string{"Content-Type": "application/cbor"}, 400, api.CodeBadRequest},
		{"CBOR body and a consistency", "PUT", url + "?consistency=ONE", goodCBOR, map[string]string{"Content-Type": "application/cbor"}, 400, api.CodeBadRequest},
		{"unknown keyspace", "GET", host + "/v1/kv/nope/kept", nil, nil, 404, api.CodeUnknownKeyspace},
		{"impossible consistency", "PUT", url + "?consistency=east=5", []byte("v"), nil, 400, api.CodeConsistency},
		{"unknown level", "GET", url + "?consistency=MOST", nil, nil, 400, api.CodeConsistency},
		{"datacenter without replicas", "GET", url + "?consistency=mars=1", nil, nil, 400, api.CodeConsistency},
		{"forged context", "PUT", url, []byte("v"), map[string]string{"X-Meridian-Context": "not-a-context!"}, 400, api.CodeBadRequest},
		{"unknown parameter", "GET", url + "?consistancy=ALL", nil, nil, 400, api.CodeBadRequest},
		{"empty key", "GET", host + "/v1/kv/default/", nil, nil, 400, api.CodeBadRequest},
		{"method", "POST", url, []byte("v"), nil, 405, api.CodeBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := do(t, hc, c.method, c.url, c.body, c.hdr)
			if a.status != c.status {
				t.Fatalf("status %d, want %d: %s", a.status, c.status, a.body)
			}
			p := a.problem(t)
			if p["code"] != c.code || p["status"] != float64(c.status) || p["type"] != "urn:meridian:error:"+c.code || p["detail"] == "" || a.header.Get("X-Meridian-Error") != c.code {
				t.Fatalf("problem %v, want code %q", p, c.code)
			}
		})
	}
	// The same refusal in CBOR is the QUIC path's client-error.
	a := do(t, hc, "GET", host+"/v1/kv/nope/kept", nil, map[string]string{"Accept": "application/cbor"})
	var cerr api.ClientError
	if a.status != 404 || a.header.Get("Content-Type") != "application/cbor" || codec.Unmarshal(a.body, &cerr) != nil || cerr.Code != api.CodeUnknownKeyspace {
		t.Fatalf("cbor refusal: %d %v %x", a.status, a.header, a.body)
	}
	// Nothing was lost or changed.
	res, err := tc.client.Get(ctx(t), []byte("kept"), &client.ReadOptions{Consistency: "ALL"})
	if err != nil || strings.Join(values(res), ",") != "safe" {
		t.Fatalf("after the refusals the key holds %+v, %v", res, err)
	}
}

// TestGatewayAuthorizesAndTraces: a client certificate of the cluster CA
// whose principal holds no grant is refused 403 (and audited as the QUIC
// path is); one of another CA does not get through the handshake (and is
// audited); a
// request's W3C traceparent becomes the parent of the node's span.
func TestGatewayAuthorizesAndTraces(t *testing.T) {
	auditDir := t.TempDir()
	tc, rec := gatewayCluster(t, func(c *node.Config) { c.Audit.Path = filepath.Join(auditDir, c.ID+".log") })
	url := "https://" + tc.nodes["east-1"].HTTPAddr() + "/v1/kv/default/secret"
	dir := filepath.Dir(tc.dev.ClientTLS.CA)
	ca, err := node.LoadCA(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	bobFiles, err := node.WriteClientCert(ca, t.TempDir(), "bob", time.Now(), time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	bob := httpsClient(t, wan.TLSFiles{CA: tc.dev.ClientTLS.CA, Cert: bobFiles.Cert, Key: bobFiles.Key})
	for _, method := range []string{"GET", "PUT", "DELETE"} {
		a := do(t, bob, method, url, []byte("x"), nil)
		if p := a.problem(t); a.status != 403 || p["code"] != api.CodeForbidden || !strings.Contains(p["detail"].(string), "bob") {
			t.Fatalf("%s without a grant: %d %v", method, a.status, p)
		}
	}

	foreign, _, err := wan.NewCA("foreign", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreignDir := t.TempDir()
	certPEM, keyPEM, err := foreign.Issue("admin", wan.RoleClient, nil, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(foreignDir, "c.pem"), certPEM, 0o600)
	os.WriteFile(filepath.Join(foreignDir, "k.pem"), keyPEM, 0o600)
	mallory := httpsClient(t, wan.TLSFiles{CA: tc.dev.ClientTLS.CA, Cert: filepath.Join(foreignDir, "c.pem"), Key: filepath.Join(foreignDir, "k.pem")})
	if res, err := mallory.Get(url); err == nil {
		res.Body.Close()
		t.Fatalf("a certificate of another CA got an answer: %d", res.StatusCode)
	}

	// Both refusals are in east-1's audit log, as the QUIC path's are.
	waitFor(t, func() error {
		b, err := os.ReadFile(filepath.Join(auditDir, "east-1.log"))
		if err != nil {
			return err
		}
		forbidden, refused := map[string]bool{}, false
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var ev node.AuditEvent
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				return fmt.Errorf("audit line %q: %v", line, err)
			}
			if ev.Outcome == node.AuditForbidden && ev.Principal == "bob" && strings.HasPrefix(ev.Remote, "127.0.0.1:") {
				forbidden[ev.Operation] = true
			}
			if ev.Operation == "connect" && ev.Outcome == node.AuditRefused && strings.Contains(ev.Reason, `"foreign"`) {
				refused = true
			}
		}
		if !forbidden["get"] || !forbidden["put"] || !forbidden["delete"] || !refused {
			return fmt.Errorf("audit log has forbidden %v, refused certificate %v:\n%s", forbidden, refused, b)
		}
		return nil
	})

	hc := httpsClient(t, tc.dev.ClientTLS)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	const parentID = "00f067aa0ba902b7"
	a := do(t, hc, "PUT", url, []byte("traced"), map[string]string{"traceparent": "00-" + traceID + "-" + parentID + "-01"})
	if a.status != 200 {
		t.Fatalf("traced put: %d %s", a.status, a.body)
	}
	var server trace.SpanContext
	var parent trace.SpanContext
	for _, s := range rec.Ended() {
		if s.Name() == "put default" && s.SpanKind() == trace.SpanKindServer && s.SpanContext().TraceID().String() == traceID {
			server, parent = s.SpanContext(), s.Parent()
		}
	}
	if !server.IsValid() || parent.SpanID().String() != parentID {
		t.Fatalf("no server span of the put in trace %s under span %s (found %v under %v)", traceID, parentID, server, parent)
	}
}

// TestGatewayConnectionsCountAgainstThePrincipal: a principal's gateway
// connections count against its connection limit as its QUIC ones do; a
// connection past it is refused 429 overloaded, and once one closes
// another is served.
func TestGatewayConnectionsCountAgainstThePrincipal(t *testing.T) {
	tc, _ := gatewayCluster(t, func(c *node.Config) { c.Limits.MaxConnsPerClient = 2 })
	url := "https://" + tc.nodes["east-1"].HTTPAddr() + "/v1/kv/default/k"
	ca, err := node.LoadCA(filepath.Dir(tc.dev.ClientTLS.CA), "")
	if err != nil {
		t.Fatal(err)
	}
	files, err := node.WriteClientCert(ca, t.TempDir(), "carol", time.Now(), time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	files.CA = tc.dev.ClientTLS.CA
	// Each client holds one connection; carol may hold two.
	first, second, third := httpsClient(t, files), httpsClient(t, files), httpsClient(t, files)
	for i, c := range []*http.Client{first, second} {
		if a := do(t, c, "GET", url, nil, nil); a.status != 403 {
			t.Fatalf("connection %d: %d %s, want 403 (admitted, no grant)", i+1, a.status, a.body)
		}
	}
	a := do(t, third, "GET", url, nil, nil)
	if p := a.problem(t); a.status != 429 || p["code"] != "overloaded" || !strings.Contains(p["detail"].(string), "too many connections") {
		t.Fatalf("third connection: %d %v", a.status, p)
	}
	first.Transport.(*http.Transport).CloseIdleConnections()
	waitFor(t, func() error {
		third.Transport.(*http.Transport).CloseIdleConnections()
		if a := do(t, third, "GET", url, nil, nil); a.status != 403 {
			return fmt.Errorf("after the first connection closed: %d %s", a.status, a.body)
		}
		return nil
	})
}
