package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
	"github.com/quic-go/quic-go"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/wan"
)

// vmRSS reads a process's resident set from /proc/PID/status, in bytes.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS line %q: %v", sc.Text(), err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// rawClientTLS is the TLS configuration of a client speaking the client
// ALPN directly over quic-go with the certificate in certFile and keyFile:
// what an attacker holding a client certificate can do without the Go
// client. The node's certificate is not checked (an attacker need not).
func rawClientTLS(t *testing.T, certFile, keyFile string) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		NextProtos:         []string{wan.ALPNClient},
		Certificates:       []tls.Certificate{cert},
		InsecureSkipVerify: true,
	}
}

// rawStatus sends a status request on a new stream of conn and reads the
// answer: the status, or a client error (a principal without grants is
// refused by authorization); either way the connection is served.
func rawStatus(ctx context.Context, conn *quic.Conn) error {
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	env, err := wan.NewEnvelope(api.TypeStatus, &api.StatusRequest{})
	if err != nil {
		return err
	}
	if err := wan.WriteFrame(str, env); err != nil {
		return err
	}
	str.Close()
	reply, err := wan.ReadFrame(str, 0)
	if err != nil {
		return err
	}
	if reply.Type != api.TypeStatusReply && reply.Type != api.TypeClientError {
		return fmt.Errorf("reply of type %d to a status request", reply.Type)
	}
	return nil
}

// TestProcessesResourceAttacks plays the attacks of the security issue on
// real processes: a client certificate holding 1,000 streams that each
// sent only a 4-byte header declaring 4 MiB; a principal opening more
// connections than it may; a process holding only the gossip key joining
// as a node. The node stays small and serving, the principal over its
// limit is refused while others are served, and the impostor never
// becomes a replica.
func TestProcessesResourceAttacks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six node processes; skipped in -short")
	}
	pc := newProcCluster(t, "--regions", "east,west", "--wan-latency", "5ms")
	pc.startAll(twoRegions)
	const target = "east-1"
	addr := pc.nodeConfig(target).Listen

	t.Run("header-only streams", func(t *testing.T) {
		const conns, perConn = 4, 250 // 1,000 streams
		pid := pc.procs[target].Process.Pid
		before := vmRSS(t, pid)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		dev, err := client.LoadConfig(filepath.Join(pc.dir, "client.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		tlsConf := rawClientTLS(t, dev.TLS.Cert, dev.TLS.Key) // the dev client certificate
		hdr := binary.BigEndian.AppendUint32(nil, wan.DefaultMaxFrame)
		var open []*quic.Conn
		defer func() {
			for _, c := range open {
				c.CloseWithError(0, "done")
			}
		}()
		for range conns {
			conn, err := quic.DialAddr(ctx, addr, tlsConf, &quic.Config{MaxIdleTimeout: time.Minute, KeepAlivePeriod: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			open = append(open, conn)
			for range perConn {
				str, err := conn.OpenStreamSync(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := str.Write(hdr); err != nil {
					t.Fatal(err)
				}
			}
		}
		// While the streams are held, the node serves the normal client;
		// its resident set is sampled throughout.
		peak := vmRSS(t, pid)
		for i := range 5 {
			key := fmt.Sprintf("attack-%d", i)
			pc.run("put", key, "v", "--node", target, "--consistency", "LOCAL_QUORUM")
			if got, err := pc.getJSON(key, "--node", target); err != nil || !slices.Equal(got, []string{"v"}) {
				t.Fatalf("get %s during the attack: %v, %v", key, got, err)
			}
			peak = max(peak, vmRSS(t, pid))
		}
		for _, c := range open {
			if err := rawStatus(ctx, c); err != nil {
				t.Fatalf("the attacker's own connection is no longer served: %v", err)
			}
		}
		peak = max(peak, vmRSS(t, pid))
		t.Logf("%s: RSS %d MiB before, peak %d MiB with %d header-only streams held", target, before>>20, peak>>20, conns*perConn)
		if peak >= 200<<20 {
			t.Fatalf("%s reached %d MiB of RSS under %d header-only streams; want < 200 MiB", target, peak>>20, conns*perConn)
		}
	})

	t.Run("connections per principal", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		pc.clientConfigFor("mallory")
		tlsConf := rawClientTLS(t, filepath.Join(pc.dir, "certs", "mallory.pem"), filepath.Join(pc.dir, "certs", "mallory-key.pem"))
		var open []*quic.Conn
		defer func() {
			for _, c := range open {
				c.CloseWithError(0, "done")
			}
		}()
		for i := range wan.DefaultMaxConnsPerPrincipal {
			conn, err := quic.DialAddr(ctx, addr, tlsConf, nil)
			if err != nil {
				t.Fatalf("connection %d: %v", i+1, err)
			}
			open = append(open, conn)
			if err := rawStatus(ctx, conn); err != nil {
				t.Fatalf("connection %d within the limit: %v", i+1, err)
			}
		}
		over, err := quic.DialAddr(ctx, addr, tlsConf, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = rawStatus(ctx, over)
		var ae *quic.ApplicationError
		if !errors.As(err, &ae) || !ae.Remote || !strings.Contains(ae.ErrorMessage, "too many connections") || !strings.Contains(ae.ErrorMessage, "mallory") {
			t.Fatalf("connection %d of mallory: %v, want it closed naming the connection limit", wan.DefaultMaxConnsPerPrincipal+1, err)
		}
		// Other principals are served meanwhile, and so is mallory on the
		// connections it holds.
		pc.run("put", "conns", "v", "--node", target)
		if err := rawStatus(ctx, open[0]); err != nil {
			t.Fatalf("a connection within the limit: %v", err)
		}
		logs, err := os.ReadFile(filepath.Join(pc.dir, target+".log"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(logs), "over its connection limit") {
			t.Fatal("the refusal is not in the node's log")
		}
	})

	t.Run("gossip key only", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		const impostor = "east-9"
		stop := joinImpostor(t, pc, impostor)
		defer stop()
		for _, id := range []string{"east-1", "west-1"} {
			pc.waitStatusOf(id, impostor+" unverified as "+id+" sees it", 30*time.Second, func(st statusJSON) bool {
				for _, n := range st.Nodes {
					if n.ID == impostor {
						return n.State == "unverified"
					}
				}
				return false
			})
		}
		cfg, err := client.LoadConfig(filepath.Join(pc.dir, "client.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.Dial(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := range 300 {
			key := []byte(fmt.Sprintf("k%d", i))
			res, err := c.Ring(ctx, "", key)
			if err != nil {
				t.Fatal(err)
			}
			for dc, ids := range res.Replicas {
				if slices.Contains(ids, impostor) || slices.Contains(res.Fallbacks[dc], impostor) {
					t.Fatalf("ring of %q places %s: replicas %v, fallbacks %v", key, impostor, res.Replicas, res.Fallbacks)
				}
			}
		}
		for i, cons := range []string{"ALL", "EACH_QUORUM"} {
			key := fmt.Sprintf("impostor-%d", i)
			if out := pc.run("ring", key, "--json"); strings.Contains(out, impostor) {
				t.Fatalf("meridian ring %s lists %s:\n%s", key, impostor, out)
			}
			pc.run("put", key, "v", "--consistency", cons)
			var res struct {
				Replicas []api.ReplicaState `json:"replicas"`
			}
			if err := json.Unmarshal([]byte(pc.run("inspect", key, "--json")), &res); err != nil {
				t.Fatal(err)
			}
			if len(res.Replicas) != 6 {
				t.Fatalf("inspect %s: %d replicas, want 6: %+v", key, len(res.Replicas), res.Replicas)
			}
			for _, r := range res.Replicas {
				if r.Node == impostor || !slices.Equal(r.Values, []string{"v"}) {
					t.Fatalf("inspect %s after a write at %s: %+v", key, cons, res.Replicas)
				}
			}
		}
	})
}

// joinImpostor starts a serf member that holds the cluster's gossip key and
// no certificate, configured as a node configures its own (node/membership.go)
// and advertising the tags a real node does, with a QUIC address where a
// socket is bound but nothing answers. It joins through the nodes' seeds.
func joinImpostor(t *testing.T, pc *procCluster, id string) (stop func()) {
	t.Helper()
	cfg := pc.nodeConfig("east-2")
	quicSock, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	key, err := base64.StdEncoding.DecodeString(cfg.GossipKeys[0])
	if err != nil {
		t.Fatal(err)
	}
	kr, err := memberlist.NewKeyring([][]byte{key}, key)
	if err != nil {
		t.Fatal(err)
	}
	ml := memberlist.DefaultLANConfig()
	ml.BindAddr, ml.BindPort = "127.0.0.1", 0
	ml.Keyring = kr
	ml.GossipVerifyIncoming, ml.GossipVerifyOutgoing = true, true
	logger := log.New(io.Discard, "", 0)
	ml.Logger = logger
	sc := serf.DefaultConfig()
	sc.NodeName = id
	sc.Tags = map[string]string{"role": "meridian", "dc": "east", "rack": "rack1", "addr": quicSock.LocalAddr().String()}
	sc.MemberlistConfig = ml
	sc.Logger = logger
	s, err := serf.Create(sc)
	if err != nil {
		quicSock.Close()
		t.Fatal(err)
	}
	if _, err := s.Join(cfg.Seeds, true); err != nil {
		s.Shutdown()
		quicSock.Close()
		t.Fatalf("the impostor could not join through %v: %v", cfg.Seeds, err)
	}
	return func() {
		s.Leave()
		s.Shutdown()
		quicSock.Close()
	}
}
