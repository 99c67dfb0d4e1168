package node_test

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/codec"
	"github.com/meridian-kv/meridian/wan"
)

// TestHostileInputKeepsTheNodeServing sends what a broken or malicious
// client might: payloads of the wrong shape, node-only messages from a
// client certificate, unknown message types, a certificate from a foreign
// CA. Each gets a clear refusal; the node keeps serving and loses nothing.
func TestHostileInputKeepsTheNodeServing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}})
		if _, err := tc.client.Put(ctx(t), []byte("precious"), []byte("v"), &client.WriteOptions{Consistency: "ALL"}); err != nil {
			t.Fatal(err)
		}
		target := tc.config(tc.ids()[0])
		d, err := wan.NewDialer(tc.creds("admin", wan.RoleClient), &wan.DialerOptions{PacketConn: tc.endpoint(target.DC)})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()

		call := func(typ wan.MsgType, payload []byte) (*wan.Envelope, error) {
			env := &wan.Envelope{V: 1, Type: typ, Payload: codec.RawMessage(payload)}
			var got *wan.Envelope
			err := d.Call(ctx(t), target.Listen, target.ID, env, func(e *wan.Envelope) error { got = e; return nil })
			return got, err
		}
		text, _ := codec.Marshal("not a put request")
		short, _ := codec.Marshal([]any{1, "default"})
		for name, tt := range map[string]struct {
			typ     wan.MsgType
			payload []byte
			want    string
		}{
			"wrong shape":       {api.TypePut, text, "malformed put request"},
			"truncated request": {api.TypeGet, short, "malformed get request"},
			"node-only message": {32, text, "node certificate"},
			"unknown type":      {999, text, "unknown message type"},
		} {
			runCase(t, name, func(t testing.TB) {
				env, err := call(tt.typ, tt.payload)
				if err == nil && env != nil && env.Type == api.TypeClientError {
					var ce api.ClientError
					if derr := env.Decode(&ce); derr != nil {
						t.Fatal(derr)
					}
					err = &ce
				}
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("want an error saying %q, got %v (reply %+v)", tt.want, err, env)
				}
			})
		}

		// A client whose certificate comes from another CA is refused at the
		// handshake.
		foreign, _, err := wan.NewCA("foreign", time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		certPEM, keyPEM, err := foreign.Issue("intruder", wan.RoleClient, nil, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		fc, err := wan.NewCredentials(foreign.CertPEM, certPEM, keyPEM, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		intruder := tc.dialOnly(target.ID, client.Config{Credentials: fc, Timeout: 2 * time.Second})
		if _, err := intruder.Get(ctx(t), []byte("precious"), nil); err == nil {
			t.Fatal("a client with a foreign certificate was served")
		} else {
			t.Logf("foreign client refused: %v", err)
		}

		res, err := tc.client.Get(ctx(t), []byte("precious"), &client.ReadOptions{Consistency: "ALL"})
		if err != nil {
			t.Fatalf("node stopped serving: %v", err)
		}
		if len(res.Values) != 1 || string(res.Values[0]) != "v" {
			t.Fatalf("stored value changed: %q", res.Values)
		}
		var ce *client.Error
		if _, err := tc.client.Put(ctx(t), []byte("k"), []byte("v"), &client.WriteOptions{Keyspace: "missing"}); !errors.As(err, &ce) {
			t.Fatalf("want a client error, got %v", err)
		}
	})
}
