package wan

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkCall measures small request/response calls on loopback, 32 in
// flight (one stream per call).
func BenchmarkCall(b *testing.B) {
	cli, addr, req := echoPair(b)
	ctx := context.Background()
	if _, err := echo(ctx, cli, addr, "node-1", 0); err != nil {
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

// BenchmarkCallSequential makes one small call at a time on loopback and,
// on Linux, reports the UDP datagrams this machine sent per call
// (OutDatagrams of /proc/net/snmp: other traffic on the machine counts
// too). A request and its reply need two; docs/performance.md says where
// the others come from.
func BenchmarkCallSequential(b *testing.B) {
	cli, addr, req := echoPair(b)
	ctx := context.Background()
	for range 100 { // past the handshake and the first streams' credit
		if err := cli.Call(ctx, addr, "node-1", req, func(*Envelope) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	before, counted := udpDatagramsSent()
	for range b.N {
		if err := cli.Call(ctx, addr, "node-1", req, func(*Envelope) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if after, ok := udpDatagramsSent(); counted && ok {
		b.ReportMetric(float64(after-before)/float64(b.N), "datagrams/call")
	}
}

// udpDatagramsSent reads the machine's UDP OutDatagrams counter; ok is
// false where there is none (not Linux).
func udpDatagramsSent() (n int64, ok bool) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, false
	}
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "Udp:") {
			continue
		}
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		for j, name := range names {
			if name == "OutDatagrams" && j < len(values) {
				n, err := strconv.ParseInt(values[j], 10, 64)
				return n, err == nil
			}
		}
		return 0, false
	}
	return 0, false
}

// echoPair starts two node transports on loopback, node-1 serving echoes:
// it returns node-2 as the caller, node-1's address and an echo request.
func echoPair(b *testing.B) (*Transport, string, *Envelope) {
	ca := testCA(b, "cluster")
	srv, _ := listenT(b, testCreds(b, ca, "node-1", RoleNode), echoHandler)
	cli, _ := listenT(b, testCreds(b, ca, "node-2", RoleNode), echoHandler)
	req, err := NewEnvelope(typeEcho, &echoMsg{N: 1, S: "hello"})
	if err != nil {
		b.Fatal(err)
	}
	return cli, srv.Addr().String(), req
}
