package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/codec"
	"github.com/meridian-kv/meridian/consistency"
	"github.com/meridian-kv/meridian/version"
	"github.com/meridian-kv/meridian/wan"
)

// writeGolden names the environment variable that makes the golden tests
// write the vectors and their index instead of checking them, after a
// message format changes on purpose (then docs/protocol.cddl must change
// with it).
const writeGolden = "MERIDIAN_WRITE_GOLDEN"

// goldenDir holds the vectors of docs/protocol.md: one file per message,
// and README.md, their readable index.
const goldenDir = "testdata/golden"

// cddlPath is the protocol's schema; every vector names its rule there.
const cddlPath = "../docs/protocol.cddl"

// vector is one golden message: the exact bytes a sender produces for
// value, and the value a receiver gets from them.
type vector struct {
	file string // under goldenDir
	rule string // its rule in docs/protocol.cddl
	// typ is the envelope type that carries it ("" for an envelope or a
	// value carried inside another message); its rule in the schema is
	// typ = number.
	typ  string
	num  wan.MsgType
	doc  string
	new  func() any
	want any
}

// exampleContext is the causal context the vectors carry: two actors.
var exampleContext = version.Vector{"east-1~1": 3, "west-2~1": 1}

// traceparent is the W3C example trace context.
const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := codec.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func goldenVectors(t testing.TB) []vector {
	ctx := version.EncodeContext(exampleContext)
	get := &api.GetRequest{Keyspace: "default", Key: []byte("greeting"), Consistency: "east=2,west=1"}
	return []vector{
		{file: "envelope-get.cbor", rule: "envelope",
			doc: "a get request in its envelope: id 7, a deadline, a W3C trace context",
			new: func() any { return new(wan.Envelope) },
			want: &wan.Envelope{V: 1, Type: api.TypeGet, ID: 7, Deadline: 1798761600000000000,
				Trace: wan.TraceContext{Traceparent: traceparent}, Payload: mustMarshal(t, get)}},
		{file: "envelope-error.cbor", rule: "envelope",
			doc: "a transport error reply (type 1): the request was refused before any handler saw it",
			new: func() any { return new(wan.Envelope) },
			want: &wan.Envelope{V: 1, Type: wan.TypeError, ID: 7,
				Payload: mustMarshal(t, &wan.ErrorPayload{Code: wan.CodeOverloaded, Message: "request rate limit"})}},
		{file: "error-payload.cbor", rule: "error-payload", typ: "type-error", num: wan.TypeError,
			doc:  "the payload of a transport error reply",
			new:  func() any { return new(wan.ErrorPayload) },
			want: &wan.ErrorPayload{Code: wan.CodeDeadlineExceeded, Message: "the request's deadline passed before the handler answered"}},
		{file: "get-request.cbor", rule: "get-request", typ: "type-get", num: api.TypeGet,
			doc: "read key \"greeting\" with two acks in east and one in west",
			new: func() any { return new(api.GetRequest) }, want: get},
		{file: "get-request-default.cbor", rule: "get-request", typ: "type-get", num: api.TypeGet,
			doc:  "read a binary key at the keyspace's default consistency",
			new:  func() any { return new(api.GetRequest) },
			want: &api.GetRequest{Keyspace: "default", Key: []byte{0x00, 0xff}}},
		{file: "get-response.cbor", rule: "get-response", typ: "type-get-reply", num: api.TypeGetReply,
			doc: "two concurrent values (siblings) and the context that covers both",
			new: func() any { return new(api.GetResponse) },
			want: &api.GetResponse{Siblings: []api.Sibling{{Value: []byte("hello"), Writer: "east-1~1:3"}, {Value: []byte("hola"), Writer: "west-2~1:1"}},
				Context: ctx, Acked: map[string]int{"east": 2, "west": 1}}},
		{file: "get-response-deleted.cbor", rule: "get-response", typ: "type-get-reply", num: api.TypeGetReply,
			doc:  "a deleted key: no siblings, a tombstone's context",
			new:  func() any { return new(api.GetResponse) },
			want: &api.GetResponse{Siblings: []api.Sibling{}, Context: ctx, Deleted: true, Acked: map[string]int{"east": 2}}},
		{file: "put-request.cbor", rule: "put-request", typ: "type-put", num: api.TypePut,
			doc:  "write \"hello again\" over what a read returned (its context), at QUORUM",
			new:  func() any { return new(api.PutRequest) },
			want: &api.PutRequest{Keyspace: "default", Key: []byte("greeting"), Value: []byte("hello again"), Context: ctx, Consistency: "QUORUM"}},
		{file: "put-request-blind.cbor", rule: "put-request", typ: "type-put", num: api.TypePut,
			doc:  "a blind write: no context, the keyspace's default consistency",
			new:  func() any { return new(api.PutRequest) },
			want: &api.PutRequest{Keyspace: "default", Key: []byte("k"), Value: []byte{}}},
		{file: "delete-request.cbor", rule: "put-request", typ: "type-put", num: api.TypePut,
			doc:  "a delete: a put with delete set and no value",
			new:  func() any { return new(api.PutRequest) },
			want: &api.PutRequest{Keyspace: "default", Key: []byte("greeting"), Delete: true, Context: ctx, Consistency: "LOCAL_QUORUM"}},
		{file: "put-response.cbor", rule: "put-response", typ: "type-put-reply", num: api.TypePutReply,
			doc: "a write acknowledged by two replicas in east and one in west",
			new: func() any { return new(api.PutResponse) },
			want: &api.PutResponse{Context: version.EncodeContext(version.Vector{"east-1~1": 4, "west-2~1": 1}), Siblings: 1,
				Acked: map[string]int{"east": 2, "west": 1}, Coordinator: "east-1"}},
		{file: "client-error.cbor", rule: "client-error", typ: "type-client-error", num: api.TypeClientError,
			doc:  "a refusal: unknown keyspace",
			new:  func() any { return new(api.ClientError) },
			want: &api.ClientError{Code: api.CodeUnknownKeyspace, Message: "meridian: unknown keyspace \"nope\" (this cluster has: [default])"}},
		{file: "client-error-quorum.cbor", rule: "client-error", typ: "type-client-error", num: api.TypeClientError,
			doc: "a write that fell short of its consistency, with the shortfall",
			new: func() any { return new(api.ClientError) },
			want: &api.ClientError{Code: api.CodeQuorum, Message: "meridian: put needed east=2, got east=1",
				Quorum: &consistency.QuorumError{Op: "put", Required: map[string]int{"east": 2}, Acked: map[string]int{"east": 1}, TotalAcked: 1}}},
		{file: "status-request.cbor", rule: "status-request", typ: "type-status", num: api.TypeStatus,
			new: func() any { return new(api.StatusRequest) }, want: &api.StatusRequest{}},
		{file: "status-response.cbor", rule: "status-response", typ: "type-status-reply", num: api.TypeStatusReply,
			new: func() any { return new(api.StatusResponse) },
			want: &api.StatusResponse{Node: "east-1", Nodes: []api.NodeStatus{
				{ID: "east-1", DC: "east", Rack: "r1", Addr: "127.0.0.1:7000", State: "up", HintsPending: 0, HintBytes: 0},
				{ID: "west-1", DC: "west", Rack: "r1", Addr: "127.0.0.1:7003", State: "down", RTTms: 40.5, HintsPending: 12, HintBytes: 3072}}}},
		{file: "ring-request.cbor", rule: "ring-request", typ: "type-ring", num: api.TypeRing,
			new:  func() any { return new(api.RingRequest) },
			want: &api.RingRequest{Keyspace: "default", Key: []byte("greeting")}},
		{file: "ring-response.cbor", rule: "ring-response", typ: "type-ring-reply", num: api.TypeRingReply,
			new: func() any { return new(api.RingResponse) },
			want: &api.RingResponse{Token: 0x8000000000000001, Replicas: map[string][]string{"east": {"east-1", "east-2"}, "west": {"west-1"}},
				Fallbacks: map[string][]string{"west": {"west-2"}}, Short: map[string]int{}}},
		{file: "inspect-request.cbor", rule: "inspect-request", typ: "type-inspect", num: api.TypeInspect,
			new:  func() any { return new(api.InspectRequest) },
			want: &api.InspectRequest{Keyspace: "default", Key: []byte("greeting")}},
		{file: "inspect-response.cbor", rule: "inspect-response", typ: "type-inspect-reply", num: api.TypeInspectReply,
			new: func() any { return new(api.InspectResponse) },
			want: &api.InspectResponse{Token: 42, Replicas: []api.ReplicaState{
				{Node: "east-1", DC: "east", Values: []string{"hello"}, Version: map[string]uint64{"east-1~1": 3}, Dots: []string{"east-1~1:3"}},
				{Node: "west-1", DC: "west", Values: []string{}, Version: map[string]uint64{}, Dots: []string{}, Error: "unreachable"}}}},
		{file: "repair-request.cbor", rule: "repair-request", typ: "type-repair", num: api.TypeRepair,
			new:  func() any { return new(api.RepairRequest) },
			want: &api.RepairRequest{Keyspace: "default", Regions: []string{"east", "west"}, BytesPerSecond: 1 << 20}},
		{file: "repair-progress.cbor", rule: "repair-progress", typ: "type-repair-reply", num: api.TypeRepairReply,
			new: func() any { return new(api.RepairProgress) },
			want: &api.RepairProgress{Pair: "east/west", PairsDone: 1, PairsTotal: 1, RangesDone: 64, RangesTotal: 64,
				KeysCompared: 1000, KeysFixed: 3, BytesSent: 4096, Done: true, ElapsedMillis: 1500}},
		{file: "repair-status-request.cbor", rule: "repair-status-request", typ: "type-repair-status", num: api.TypeRepairStatus,
			new: func() any { return new(api.RepairStatusRequest) }, want: &api.RepairStatusRequest{Keyspace: "default"}},
		{file: "repair-status-response.cbor", rule: "repair-status-response", typ: "type-repair-status-reply", num: api.TypeRepairStatusReply,
			new: func() any { return new(api.RepairStatusResponse) },
			want: &api.RepairStatusResponse{Pairs: []api.PairRepairStatus{{Pair: "east/west", LastFullCompleted: 1798761600, PassFraction: 0.25,
				KeysCompared: 10, NextWindow: -1, Schedule: "windows"}}}},
		{file: "grant-request.cbor", rule: "grant-request", typ: "type-grant", num: api.TypeGrant,
			new:  func() any { return new(api.GrantRequest) },
			want: &api.GrantRequest{Principal: "alice", Permission: "write", Keyspace: "default"}},
		{file: "grant-response.cbor", rule: "grant-response", typ: "type-grant-reply", num: api.TypeGrantReply,
			new:  func() any { return new(api.GrantResponse) },
			want: &api.GrantResponse{Node: "east-1", Changed: true, Members: 5, Reached: 5, Effect: "read, write", Keyspace: "default"}},
		{file: "grants-request.cbor", rule: "grants-request", typ: "type-grants", num: api.TypeGrants,
			new: func() any { return new(api.GrantsRequest) }, want: &api.GrantsRequest{Principal: "alice"}},
		{file: "grants-response.cbor", rule: "grants-response", typ: "type-grants-reply", num: api.TypeGrantsReply,
			new: func() any { return new(api.GrantsResponse) },
			want: &api.GrantsResponse{Node: "east-1", Grants: []api.Grant{{Principal: "admin", Keyspace: "*", Permissions: []string{"admin"}, Superuser: true},
				{Principal: "alice", Keyspace: "default", Permissions: []string{"read", "write"}}}}},
		{file: "reencrypt-request.cbor", rule: "reencrypt-request", typ: "type-reencrypt", num: api.TypeReencrypt,
			new: func() any { return new(api.ReencryptRequest) }, want: &api.ReencryptRequest{All: true}},
		{file: "reencrypt-response.cbor", rule: "reencrypt-response", typ: "type-reencrypt-reply", num: api.TypeReencryptReply,
			new: func() any { return new(api.ReencryptResponse) },
			want: &api.ReencryptResponse{Nodes: []api.ReencryptResult{{Node: "east-1", ActiveKey: "k2", Rewritten: 10, Current: 3, ByKey: map[string]int64{"": 1, "k1": 9}},
				{Node: "west-1", ByKey: map[string]int64{}, Error: "unreachable"}}}},
		{file: "fence-request.cbor", rule: "fence-request", typ: "type-fence", num: api.TypeFence,
			new: func() any { return new(api.FenceRequest) }, want: &api.FenceRequest{Region: "west", Millis: 90000}},
		{file: "fence-response.cbor", rule: "fence-response", typ: "type-fence-reply", num: api.TypeFenceReply,
			new:  func() any { return new(api.FenceResponse) },
			want: &api.FenceResponse{Node: "east-1", DC: "east", Region: "west", Until: 1700000090000, Peers: []string{"west-1", "west-2"}}},
		{file: "causal-context.cbor", rule: "causal-vector",
			doc: "the bytes of a causal context; its string form is their unpadded base64url",
			new: func() any { return new(version.Vector) }, want: &exampleContext},
	}
}

func writing() bool { return os.Getenv(writeGolden) != "" }

// TestGoldenVectors checks both directions for every vector: the value
// encodes to exactly the committed bytes, and the committed bytes decode
// to exactly the value.
func TestGoldenVectors(t *testing.T) {
	vecs := goldenVectors(t)
	if writing() {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range vecs {
		t.Run(v.file, func(t *testing.T) {
			enc := mustMarshal(t, v.want)
			path := filepath.Join(goldenDir, v.file)
			if writing() {
				if err := os.WriteFile(path, enc, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (write the vectors with %s=1 go test -run TestGoldenVectors ./api)", err, writeGolden)
			}
			if !bytes.Equal(enc, golden) {
				t.Errorf("encoding changed:\n got %x\nwant %x (%s)", enc, golden, path)
			}
			got := v.new()
			if err := codec.Unmarshal(golden, got); err != nil {
				t.Fatalf("%s does not decode: %v", path, err)
			}
			if !reflect.DeepEqual(got, v.want) {
				t.Errorf("%s decodes to\n %+v\nwant %+v", path, got, v.want)
			}
		})
	}
}

// TestGoldenContextString pins the string form of the causal context:
// what X-Meridian-Context carries and get prints.
func TestGoldenContextString(t *testing.T) {
	golden, err := os.ReadFile(filepath.Join(goldenDir, "causal-context.cbor"))
	if err != nil {
		t.Fatal(err)
	}
	s := version.EncodeContext(exampleContext)
	if want := base64.RawURLEncoding.EncodeToString(golden); s != want {
		t.Fatalf("EncodeContext = %q, want the unpadded base64url of the vector %q", s, want)
	}
	back, err := version.DecodeContext(s)
	if err != nil || !reflect.DeepEqual(back, exampleContext) {
		t.Fatalf("DecodeContext(%q) = %v, %v", s, back, err)
	}
}

// TestGoldenFrame checks a whole frame: the 4-byte big-endian length,
// then the envelope.
func TestGoldenFrame(t *testing.T) {
	vecs := goldenVectors(t)
	env := vecs[0].want.(*wan.Envelope)
	var buf bytes.Buffer
	if err := wan.WriteFrame(&buf, env); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(goldenDir, "frame-get.bin")
	if writing() {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), golden) {
		t.Fatalf("frame changed:\n got %x\nwant %x", buf.Bytes(), golden)
	}
	got, err := wan.ReadFrame(bytes.NewReader(golden), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, env) {
		t.Fatalf("frame decodes to %+v, want %+v", got, env)
	}
}

// TestGoldenVectorsMatchTheSchema checks that every rule and message type
// a vector names is defined in docs/protocol.cddl with the number the code
// uses, and that the readable index is current.
func TestGoldenVectorsMatchTheSchema(t *testing.T) {
	schema, err := os.ReadFile(cddlPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range goldenVectors(t) {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(v.rule) + `\s*=`).Match(schema) {
			t.Errorf("%s: rule %q is not defined in %s", v.file, v.rule, cddlPath)
		}
		if fields, ok := arrayArity(schema, v.rule); ok {
			var item []any
			if err := codec.Unmarshal(mustMarshal(t, v.want), &item); err != nil {
				t.Errorf("%s: rule %s is an array, the message is not: %v", v.file, v.rule, err)
			} else if len(item) != fields {
				t.Errorf("%s: rule %s has %d fields, the message %d", v.file, v.rule, fields, len(item))
			}
		}
		if v.typ == "" {
			continue
		}
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(v.typ) + `\s*=\s*(\d+)\b`)
		m := re.FindSubmatch(schema)
		if m == nil {
			t.Errorf("%s: message type %q is not defined in %s", v.file, v.typ, cddlPath)
		} else if string(m[1]) != fmt.Sprint(v.num) {
			t.Errorf("%s: %s defines %s = %s, the code uses %d", v.file, cddlPath, v.typ, m[1], v.num)
		}
	}
	// The constants the schema must give their numbers, vector or not.
	for name, num := range map[string]wan.MsgType{
		"type-error": wan.TypeError, "type-fragment": wan.TypeFragment, "type-ping": wan.TypePing,
		"type-get": api.TypeGet, "type-put": api.TypePut, "type-status": api.TypeStatus, "type-ring": api.TypeRing,
		"type-get-reply": api.TypeGetReply, "type-put-reply": api.TypePutReply, "type-status-reply": api.TypeStatusReply,
		"type-ring-reply": api.TypeRingReply, "type-client-error": api.TypeClientError, "type-inspect": api.TypeInspect,
		"type-inspect-reply": api.TypeInspectReply, "type-repair": api.TypeRepair, "type-repair-reply": api.TypeRepairReply,
		"type-repair-status": api.TypeRepairStatus, "type-repair-status-reply": api.TypeRepairStatusReply,
		"type-grant": api.TypeGrant, "type-grant-reply": api.TypeGrantReply, "type-grants": api.TypeGrants,
		"type-grants-reply": api.TypeGrantsReply, "type-reencrypt": api.TypeReencrypt, "type-reencrypt-reply": api.TypeReencryptReply,
		"type-fence": api.TypeFence, "type-fence-reply": api.TypeFenceReply,
	} {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s*=\s*(\d+)\b`).FindSubmatch(schema)
		if m == nil || string(m[1]) != fmt.Sprint(num) {
			t.Errorf("%s must define %s = %d", cddlPath, name, num)
		}
	}
	for _, code := range []string{
		api.CodeBadRequest, api.CodeUnknownKeyspace, api.CodeTooLarge, api.CodeConsistency, api.CodeQuorum,
		api.CodeTooManySiblings, api.CodeUnavailable, api.CodeInternal, api.CodeForbidden,
		wan.CodeBadRequest, wan.CodeInternal, wan.CodeDeadlineExceeded, wan.CodeOverloaded, wan.CodeNotExecuted,
	} {
		if !bytes.Contains(schema, []byte(`"`+code+`"`)) {
			t.Errorf("%s does not list error code %q", cddlPath, code)
		}
	}

	index := goldenIndex(t)
	path := filepath.Join(goldenDir, "README.md")
	if writing() {
		if err := os.WriteFile(path, []byte(index), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != index {
		t.Errorf("%s is stale: rewrite it with %s=1 go test -run TestGoldenVectorsMatchTheSchema ./api", path, writeGolden)
	}
}

// arrayArity counts the fields of an array rule of the schema (one per
// comma-separated entry, comments removed); ok is false for a rule that
// is not an array.
func arrayArity(schema []byte, rule string) (int, bool) {
	m := regexp.MustCompile(`(?ms)^` + regexp.QuoteMeta(rule) + `\s*=\s*\[(.*?)\]\s*$`).FindSubmatch(schema)
	if m == nil {
		return 0, false
	}
	body := regexp.MustCompile(`;[^\n]*`).ReplaceAllString(string(m[1]), "")
	n := 0
	for _, entry := range strings.Split(body, ",") {
		if strings.TrimSpace(entry) != "" {
			n++
		}
	}
	return n, true
}

// goldenIndex renders the readable index of the vectors: file, schema
// rule, type, hex and CBOR diagnostic notation (RFC 8949 §8).
func goldenIndex(t testing.TB) string {
	var b strings.Builder
	b.WriteString("# Golden vectors of the client protocol\n\n")
	b.WriteString("Generated by `" + writeGolden + "=1 go test -run 'TestGolden' ./api`; checked both ways (encode and\n")
	b.WriteString("decode) by the same tests. The schema is `docs/protocol.cddl`, the prose `docs/protocol.md`.\n")
	b.WriteString("Each `.cbor` file holds exactly one CBOR item; `frame-get.bin` is a whole frame\n")
	b.WriteString("(4-byte big-endian length, then `envelope-get.cbor`); `message-fragmented.bin`\n")
	b.WriteString("(written by wan's TestGoldenFragmentedMessage) is a reply of type 20 whose\n")
	b.WriteString("payload is a 300-byte byte string, sent in 128-byte frames: five type-2 fragments.\n")
	b.WriteString("`stream-client.bin` and `stream-node.bin` (written by wan's TestGoldenReusableStream)\n")
	b.WriteString("are the two sides of a reusable stream: the type-4 opening and a request; a reply,\n")
	b.WriteString("the type-5 end of its replies and the type-6 idle close.\n")
	for _, v := range goldenVectors(t) {
		enc := mustMarshal(t, v.want)
		diag, err := cbor.Diagnose(enc)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "\n## %s\n\nRule `%s`", v.file, v.rule)
		if v.typ != "" {
			fmt.Fprintf(&b, ", the payload of message type %d (`%s`)", v.num, v.typ)
		}
		b.WriteString(".")
		if v.doc != "" {
			fmt.Fprintf(&b, " %s%s.", strings.ToUpper(v.doc[:1]), v.doc[1:])
		}
		if v.file == "causal-context.cbor" {
			fmt.Fprintf(&b, " As a string: `%s`.", version.EncodeContext(exampleContext))
		}
		fmt.Fprintf(&b, "\n\n    %s\n\n```\n%s\n```\n", hex.EncodeToString(enc), diag)
	}
	return b.String()
}
