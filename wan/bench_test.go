package wan

import (
	"bytes"
	"context"
	"testing"
)

// BenchmarkCall measures small request/response calls on loopback, 32 in
// flight (one stream per call).
func BenchmarkCall(b *testing.B) {
	ca := testCA(b, "cluster")
	srv, _ := listenT(b, testCreds(b, ca, "node-1", RoleNode), echoHandler)
	cli, _ := listenT(b, testCreds(b, ca, "node-2", RoleNode), echoHandler)
	addr := srv.Addr().String()
	ctx := context.Background()
	if _, err := echo(ctx, cli, addr, "node-1", 0); err != nil {
		b.Fatal(err)
	}
	req, err := NewEnvelope(typeEcho, &echoMsg{N: 1, S: "hello"})
	if err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := cli.Call(ctx, addr, "node-1", req, func(*Envelope) error { return nil }); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkFrameRoundTrip measures encoding and decoding one small frame.
func BenchmarkFrameRoundTrip(b *testing.B) {
	e := sampleEnvelope(b)
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := WriteFrame(&buf, e); err != nil {
			b.Fatal(err)
		}
		if _, err := ReadFrame(&buf, 0); err != nil {
			b.Fatal(err)
		}
	}
}
