package node_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/internal/race"
	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/sim"
	"github.com/meridian-kv/meridian/store"
	"github.com/meridian-kv/meridian/version"
	"github.com/meridian-kv/meridian/wan"
)

// quietLogger keeps test output to warnings and errors.
var quietLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// testCluster is a multi-region cluster of real nodes in this process, on
// the simulated network and in-memory crashable disks of package sim.
// Start it inside a testing/synctest bubble (synctest.Test), where every
// wait and timeout is simulated: seconds of cluster time cost
// milliseconds.
type testCluster struct {
	t      testing.TB
	sim    *sim.Cluster
	nodes  map[string]*node.Node // each node as of its last start
	client *client.Client        // the superuser's, in the first region
}

type clusterOpts struct {
	regions        []string // default east, west, central
	nodesPerRegion int      // default 3
	replicas       int      // per region; default min(3, nodesPerRegion)
	latency        time.Duration
	tweak          func(*node.Config)
	tracer         trace.TracerProvider
	// clientTracer, when set, is the client's instead of tracer.
	clientTracer trace.TracerProvider
	now          func() time.Time // every node's clock; nil means time.Now
	// fs, when set, wraps each node's store filesystem at every start.
	fs func(id string, fs vfs.FS) vfs.FS
}

// startCluster starts the cluster and waits until every node sees every
// other up. Every node seals its values under a key file in a temporary
// directory, has a request timeout of 3 s, and then takes o.tweak.
func startCluster(t testing.TB, o clusterOpts) *testCluster {
	t.Helper()
	if o.regions == nil {
		o.regions = []string{"east", "west", "central"}
	}
	keyFile := filepath.Join(t.TempDir(), "encryption-keys.yaml")
	if _, err := store.GenerateKey(keyFile, "", true); err != nil {
		t.Fatal(err)
	}
	// Zero latency is a fast LAN between regions, as inside one.
	between := max(o.latency, 250*time.Microsecond)
	sc, err := sim.NewCluster(sim.Options{
		Seed:           1,
		Regions:        o.regions,
		NodesPerRegion: o.nodesPerRegion,
		Replicas:       o.replicas,
		Between:        sim.Link{Latency: between},
		Logger:         quietLogger,
		Tweak: func(c *node.Config) {
			c.Limits.RequestTimeout = 3 * time.Second
			c.Encryption.KeyFile = keyFile
			if o.tweak != nil {
				o.tweak(c)
			}
		},
		Node: func(id string, opts *node.Options) {
			opts.TracerProvider = o.tracer
			if o.fs != nil {
				opts.FS = o.fs(id, opts.FS)
			}
			if o.now != nil {
				opts.Now = o.now
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tc := &testCluster{t: t, sim: sc, nodes: map[string]*node.Node{}}
	t.Cleanup(tc.close)
	for _, id := range sc.IDs() {
		tc.nodes[id] = sc.Node(id)
	}
	tc.waitConverged()
	ctp := o.tracer
	if o.clientTracer != nil {
		ctp = o.clientTracer
	}
	tc.client = tc.dial(client.Config{DC: o.regions[0], TracerProvider: ctp})
	return tc
}

// ids returns the node ids, region by region.
func (tc *testCluster) ids() []string { return tc.sim.IDs() }

// config returns the configuration of node id.
func (tc *testCluster) config(id string) node.Config { return tc.sim.Config(id) }

// start restarts node id on its disk.
func (tc *testCluster) start(id string) error {
	if err := tc.sim.Start(id); err != nil {
		return err
	}
	tc.nodes[id] = tc.sim.Node(id)
	return nil
}

// kill crashes node id's process (what it synced survives); stop closes
// it cleanly.
func (tc *testCluster) kill(id string) error { return tc.sim.Kill(id) }
func (tc *testCluster) stop(id string) error { return tc.sim.Stop(id) }

// isolate cuts node id off the network, both ways; restore ends it.
func (tc *testCluster) isolate(id string) { tc.sim.Net.Isolate(tc.sim.Host(id)) }
func (tc *testCluster) restore(id string) { tc.sim.Net.Reconnect(tc.sim.Host(id)) }

// dial returns a client configured by cfg on the simulated network; zero
// fields take sim.Cluster.Dial's defaults (every node, the superuser's
// certificate, a 5 s timeout). The cluster closes it.
func (tc *testCluster) dial(cfg client.Config) *client.Client {
	tc.t.Helper()
	c, err := tc.sim.Dial(cfg)
	if err != nil {
		tc.t.Fatal(err)
	}
	return c
}

// dialOnly returns a client that knows node id only.
func (tc *testCluster) dialOnly(id string, cfg client.Config) *client.Client {
	tc.t.Helper()
	nc := tc.config(id)
	cfg.DC = nc.DC
	cfg.Nodes = []client.Node{{ID: id, DC: nc.DC, Addr: nc.Listen}}
	return tc.dial(cfg)
}

// endpoint returns a socket on a host of its own in region dc, for a wan
// dialer or listener the test drives itself.
func (tc *testCluster) endpoint(dc string) net.PacketConn {
	tc.t.Helper()
	pc, err := tc.sim.Endpoint(dc)
	if err != nil {
		tc.t.Fatal(err)
	}
	return pc
}

// creds returns credentials for name in role issued by the cluster's CA.
func (tc *testCluster) creds(name string, role wan.Role) *wan.Credentials {
	tc.t.Helper()
	c, err := tc.sim.Credentials(name, role)
	if err != nil {
		tc.t.Fatal(err)
	}
	return c
}

// waitConverged waits until every node's ring holds every node and every
// node has verified its peers (a QUIC handshake with each), so the test
// starts from a healthy cluster.
func (tc *testCluster) waitConverged() {
	tc.t.Helper()
	waitConverged(tc.t, tc.nodes)
}

// inFlight reports a node, other than except, whose writes' fan-outs are
// still running (they end at their deadline when a replica is down).
func (tc *testCluster) inFlight(except string) error {
	for id, n := range tc.nodes {
		if id != except && n.BackgroundWork() > 0 {
			return fmt.Errorf("%s still has %d writes in flight", id, n.BackgroundWork())
		}
	}
	return nil
}

// waitConverged waits until every one of nodes sees all of them as members
// and up (verified).
func waitConverged(t testing.TB, nodes map[string]*node.Node) {
	t.Helper()
	waitFor(t, func() error {
		for id, n := range nodes {
			if got := len(n.Members()); got != len(nodes) {
				return fmt.Errorf("%s sees %d of %d members", id, got, len(nodes))
			}
			for peer := range nodes {
				if st := n.PeerState(peer); st != node.StateUp {
					return fmt.Errorf("%s sees %s %s", id, peer, st)
				}
			}
		}
		return nil
	})
}

// close stops every running node cleanly, all at once, closes every
// client and lets simulated time run on until the cluster's goroutines
// end (sim.Cluster.Close).
func (tc *testCluster) close() {
	var wg sync.WaitGroup
	for _, id := range tc.ids() {
		if tc.sim.Node(id) != nil {
			wg.Go(func() { tc.stop(id) })
		}
	}
	wg.Wait()
	if err := tc.sim.Close(); err != nil {
		tc.t.Logf("closing the cluster: %v", err)
	}
	tc.nodes = nil
}

// runCase runs one case of a table test and waits for it: t.Run is not
// allowed inside a synctest bubble. The case's failures are the test's,
// prefixed with its name, and its Fatal ends only the case.
func runCase(t *testing.T, name string, check func(t testing.TB)) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(caseT{t, name})
	}()
	<-done
}

// caseT is the testing.TB of one case of runCase.
type caseT struct {
	testing.TB
	name string
}

func (c caseT) Errorf(format string, args ...any) {
	c.TB.Helper()
	c.TB.Errorf("%s: %s", c.name, fmt.Sprintf(format, args...))
}
func (c caseT) Error(args ...any) { c.TB.Helper(); c.Errorf("%s", fmt.Sprint(args...)) }
func (c caseT) Fatalf(format string, args ...any) {
	c.TB.Helper()
	c.Errorf(format, args...)
	runtime.Goexit()
}
func (c caseT) Fatal(args ...any) { c.TB.Helper(); c.Fatalf("%s", fmt.Sprint(args...)) }

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func values(res *client.GetResult) []string {
	out := make([]string, len(res.Values))
	for i, v := range res.Values {
		out[i] = string(v)
	}
	return out
}

func TestReadYourWritesAndSiblings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{latency: 5 * time.Millisecond})
		c := tc.client
		key := []byte("cart")
		if _, err := c.Put(ctx(t), key, []byte("apples"), nil); err != nil {
			t.Fatal(err)
		}
		res, err := c.Get(ctx(t), key, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := values(res); len(got) != 1 || got[0] != "apples" {
			t.Fatalf("read your write: got %q", got)
		}
		// A second blind write is concurrent with the first: two siblings.
		if _, err := c.Put(ctx(t), key, []byte("pears"), nil); err != nil {
			t.Fatal(err)
		}
		res, err = c.Get(ctx(t), key, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := values(res); len(got) != 2 {
			t.Fatalf("two blind writes: want 2 siblings, got %q", got)
		}
		// Writing with the read's context resolves them.
		if _, err := c.Put(ctx(t), key, []byte("apples+pears"), &client.WriteOptions{Context: res.Context}); err != nil {
			t.Fatal(err)
		}
		res, err = c.Get(ctx(t), key, &client.ReadOptions{Consistency: "ALL"})
		if err != nil {
			t.Fatal(err)
		}
		if got := values(res); len(got) != 1 || got[0] != "apples+pears" {
			t.Fatalf("resolved: got %q", got)
		}
		// Delete with context removes it everywhere.
		if _, err := c.Delete(ctx(t), key, &client.WriteOptions{Context: res.Context, Consistency: "ALL"}); err != nil {
			t.Fatal(err)
		}
		res, err = c.Get(ctx(t), key, &client.ReadOptions{Consistency: "EACH_QUORUM"})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Values) != 0 || !res.Deleted {
			t.Fatalf("after delete: values %q deleted=%v", values(res), res.Deleted)
		}
	})
}

func TestEveryReplicaInEveryRegionGetsTheWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{latency: 5 * time.Millisecond})
		key := []byte("everywhere")
		if _, err := tc.client.Put(ctx(t), key, []byte("v1"), &client.WriteOptions{Consistency: "LOCAL_ONE"}); err != nil {
			t.Fatal(err)
		}
		// The write is acknowledged after one replica; the others complete in
		// the background, through one relay per remote region.
		waitFor(t, func() error {
			for id, n := range tc.nodes {
				obj, err := n.Store().Get("default", key)
				if err != nil {
					return err
				}
				if v := obj.Values(); len(v) != 1 || string(v[0]) != "v1" {
					return fmt.Errorf("%s holds %q", id, v)
				}
			}
			return nil
		})
	})
}

func TestConsistencyLevelsAndShortfall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{latency: 2 * time.Millisecond})
		c := tc.client
		for _, level := range []string{"ONE", "LOCAL_ONE", "LOCAL_QUORUM", "EACH_QUORUM", "QUORUM", "ALL", "east=2,west=1", "central=3"} {
			res, err := c.Put(ctx(t), []byte("k-"+level), []byte("v"), &client.WriteOptions{Consistency: level})
			if err != nil {
				t.Fatalf("put %s: %v", level, err)
			}
			if level == "ALL" && res.Acked["west"] != 3 {
				t.Errorf("ALL acked %v", res.Acked)
			}
			if _, err := c.Get(ctx(t), []byte("k-"+level), &client.ReadOptions{Consistency: level}); err != nil {
				t.Fatalf("get %s: %v", level, err)
			}
		}

		// Cut west off: local writes go on, EACH_QUORUM names west as short.
		for _, id := range tc.sim.Region("west") {
			tc.isolate(id)
		}
		if _, err := c.Put(ctx(t), []byte("during"), []byte("v"), &client.WriteOptions{Consistency: "LOCAL_QUORUM"}); err != nil {
			t.Fatalf("LOCAL_QUORUM with west down: %v", err)
		}
		_, err := c.Put(ctx(t), []byte("during"), []byte("v2"), &client.WriteOptions{Consistency: "EACH_QUORUM"})
		var qe *client.QuorumError
		if !errors.As(err, &qe) {
			t.Fatalf("EACH_QUORUM with west down: want a QuorumError, got %v", err)
		}
		if qe.Required["west"] != 2 || qe.Acked["west"] != 0 || qe.Acked["east"] < 2 {
			t.Errorf("shortfall: required %v acked %v", qe.Required, qe.Acked)
		}
		if short := qe.Short(); len(short) != 1 || short["west"] != 2 {
			t.Errorf("short = %v, want only west=2", short)
		}
		if !strings.Contains(err.Error(), "west acked 0 of 2 required") {
			t.Errorf("error does not name the region: %v", err)
		}
	})
}

func TestBadInputGetsClearErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}})
		c := tc.client
		cases := []struct {
			name string
			do   func() error
			code string
			msg  string
		}{
			{"unknown keyspace", func() error {
				_, err := c.Put(ctx(t), []byte("k"), []byte("v"), &client.WriteOptions{Keyspace: "nope"})
				return err
			}, api.CodeUnknownKeyspace, `unknown keyspace "nope"`},
			{"oversized value", func() error {
				_, err := c.Put(ctx(t), []byte("k"), make([]byte, api.DefaultMaxValueLen+1), nil)
				return err
			}, api.CodeTooLarge, "limit"},
			{"oversized key", func() error {
				_, err := c.Put(ctx(t), make([]byte, api.MaxKeyLen+1), []byte("v"), nil)
				return err
			}, api.CodeTooLarge, "key of 65537 bytes"},
			{"unknown level", func() error {
				_, err := c.Put(ctx(t), []byte("k"), []byte("v"), &client.WriteOptions{Consistency: "MOST"})
				return err
			}, api.CodeConsistency, `unknown level "MOST"`},
			{"unknown datacenter", func() error {
				_, err := c.Get(ctx(t), []byte("k"), &client.ReadOptions{Consistency: "mars=1"})
				return err
			}, api.CodeConsistency, `"mars" holds no replicas`},
			{"impossible count", func() error {
				_, err := c.Put(ctx(t), []byte("k"), []byte("v"), &client.WriteOptions{Consistency: "east=4"})
				return err
			}, api.CodeConsistency, "more acks than the 3 replicas"},
			{"garbage context", func() error {
				_, err := c.Put(ctx(t), []byte("k"), []byte("v"), &client.WriteOptions{Context: "!!not-a-context"})
				return err
			}, api.CodeBadRequest, "malformed causal context"},
		}
		for _, tt := range cases {
			runCase(t, tt.name, func(t testing.TB) {
				err := tt.do()
				var ce *client.Error
				if !errors.As(err, &ce) || ce.Code != tt.code {
					t.Fatalf("want a %s error, got %v", tt.code, err)
				}
				if !strings.Contains(err.Error(), tt.msg) {
					t.Errorf("error %q does not say %q", err, tt.msg)
				}
			})
		}
		// The cluster keeps serving.
		if _, err := c.Put(ctx(t), []byte("after"), []byte("ok"), nil); err != nil {
			t.Fatalf("after bad input: %v", err)
		}
	})
}

func TestSiblingLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east"}, tweak: func(c *node.Config) {
			ks := c.Keyspaces["default"]
			ks.WarnSiblings, ks.MaxSiblings = 2, 3
			c.Keyspaces["default"] = ks
		}})
		c := tc.client
		key := []byte("hot")
		var last *client.PutResult
		for i := range 3 {
			res, err := c.Put(ctx(t), key, fmt.Appendf(nil, "v%d", i), &client.WriteOptions{Consistency: "ALL"})
			if err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
			last = res
		}
		if last.Warning == "" {
			t.Errorf("3 siblings past warn_siblings=2 gave no warning")
		}
		_, err := c.Put(ctx(t), key, []byte("one too many"), &client.WriteOptions{Consistency: "ALL"})
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Code != api.CodeTooManySiblings || !strings.Contains(err.Error(), "context") {
			t.Fatalf("4th sibling: want too_many_siblings telling how to resolve, got %v", err)
		}
		// Resolving with the context is always allowed.
		res, err := c.Get(ctx(t), key, &client.ReadOptions{Consistency: "ALL"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Put(ctx(t), key, []byte("resolved"), &client.WriteOptions{Context: res.Context, Consistency: "ALL"}); err != nil {
			t.Fatalf("resolving write refused: %v", err)
		}
	})
}

func TestForwardingFromANonReplica(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 4 nodes per region, 1 replica each: most nodes are not replicas of a
		// key and must forward the put to one that is.
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}, nodesPerRegion: 4, replicas: 1})
		for i := range 20 {
			key := fmt.Appendf(nil, "fwd-%d", i)
			if _, err := tc.client.Put(ctx(t), key, []byte("v"), &client.WriteOptions{Consistency: "EACH_QUORUM"}); err != nil {
				t.Fatalf("put %s: %v", key, err)
			}
			res, err := tc.client.Get(ctx(t), key, &client.ReadOptions{Consistency: "ALL"})
			if err != nil || len(res.Values) != 1 {
				t.Fatalf("get %s: %v %v", key, res, err)
			}
		}
	})
}

func TestReadRepair(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := startCluster(t, clusterOpts{regions: []string{"east", "west"}})
		key := []byte("stale")
		// Plant a value on a single replica, as if every other write was lost.
		ring, err := tc.client.Ring(ctx(t), "", key)
		if err != nil {
			t.Fatal(err)
		}
		one := tc.nodes[ring.Replicas["west"][0]]
		obj := version.New().Update(nil, one.ID(), version.Write{Value: []byte("only-here")})
		if _, _, err := one.Store().Merge("default", key, obj); err != nil {
			t.Fatal(err)
		}
		res, err := tc.client.Get(ctx(t), key, &client.ReadOptions{Consistency: "ALL"})
		if err != nil {
			t.Fatal(err)
		}
		if got := values(res); len(got) != 1 || got[0] != "only-here" {
			t.Fatalf("ALL read: got %q", got)
		}
		waitFor(t, func() error {
			for _, ids := range ring.Replicas {
				for _, id := range ids {
					o, err := tc.nodes[id].Store().Get("default", key)
					if err != nil {
						return err
					}
					if !version.Equal(o, obj) {
						return fmt.Errorf("%s not repaired: %q", id, o.Values())
					}
				}
			}
			return nil
		})
	})
}

// waitFor polls cond until it returns nil or a minute passes. The minute
// only ends a wait that would never succeed: it is no claim on speed, and
// nine in-process nodes under the race detector on a loaded 2-core machine
// have taken more than 10s to see each other up.
func waitFor(t testing.TB, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// movesMegabytes skips, under the race detector, a test whose cost is
// moving megabytes of values (the detector checks every byte copied and
// makes it tenfold slower) rather than concurrency the smaller tests do
// not reach. ./test.sh runs these by name in a pass without the detector;
// TestMegabyteTestsRunInTestSh keeps its list complete.
func movesMegabytes(t *testing.T) {
	t.Helper()
	if race.Enabled {
		t.Skip("moves megabytes: under the race detector ./test.sh skips it and runs it in its pass without the detector")
	}
}

// TestMegabyteTestsRunInTestSh fails when a test that calls
// movesMegabytes is missing from ./test.sh's pass without the race
// detector (it would then never run under CI's race pass either).
func TestMegabyteTestsRunInTestSh(t *testing.T) {
	script, err := os.ReadFile("../test.sh")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	decl := regexp.MustCompile(`(?m)^func (Test\w+)\(t \*testing\.T\) \{\n\tmovesMegabytes\(t\)`)
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range decl.FindAllSubmatch(src, -1) {
			found++
			if !strings.Contains(string(script), string(m[1])) {
				t.Errorf("%s (%s) calls movesMegabytes but ./test.sh's pass without the race detector does not name it", m[1], f)
			}
		}
	}
	if found == 0 {
		t.Error("no test calls movesMegabytes: the check found nothing to check")
	}
}
