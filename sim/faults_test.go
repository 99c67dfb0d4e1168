// randseednop=0 lets rand.Seed seed math/rand's global generator, which
// memberlist draws from: each row seeds it, as it seeds crypto/rand.
//go:debug randseednop=0

package sim_test

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"hash/fnv"
	"maps"
	mathrand "math/rand"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/cryptotest"
	"testing/synctest"
	"time"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/history"
	"github.com/meridian-kv/meridian/internal/race"
	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/sim"
	"github.com/meridian-kv/meridian/workload"
)

var seedFlag = flag.Uint64("sim.seed", 0, "seed of every fault-matrix row (0: each row's own fixed seed)")

// rowSeed is the seed a row runs with: -sim.seed, or one fixed per row
// name so that CI runs the same schedules every time.
func rowSeed(name string) uint64 {
	if *seedFlag != 0 {
		return *seedFlag
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// row is one fault of the matrix. fault runs while the load does, in
// simulated time, and returns when the fault is over (healed, restarted);
// proof then says whether the fault really happened (so the row is not
// vacuous).
type row struct {
	name   string
	opts   sim.Options
	fault  func(t *testing.T, c *sim.Cluster, rng *rand.Rand)
	proof  func(c *sim.Cluster, f faultStats) error
	writes []string      // write consistency levels; default LOCAL_QUORUM
	pause  time.Duration // each worker's pause between steps; default 50 ms
	// after, if set, checks the row's own promise once the checkers passed.
	after func(t *testing.T, f faultStats)
}

// faultStats is what the harness measured around the fault.
type faultStats struct {
	before, after sim.Stats
	hints         int64 // hints stored, all nodes
	dropped       int64 // hints dropped (expired or over their bound), all nodes
	during        []history.Op
	final         map[string]history.State
	workers       int
}

func (f faultStats) cut() int64  { return f.after.Cut - f.before.Cut }
func (f faultStats) lost() int64 { return f.after.Lost - f.before.Lost }

// ackedDuring counts the writes acknowledged that started during the
// fault.
func (f faultStats) ackedDuring() int {
	n := 0
	for _, op := range f.during {
		if op.Kind != history.Read && op.Outcome == history.OK {
			n++
		}
	}
	return n
}

const (
	baseline = 2 * time.Second
	outage   = 10 * time.Second
)

// raceRows are the rows TestFaultMatrix runs under the race detector,
// which slows the simulation about tenfold: one partition, one crash and
// the disk faults, enough to race-check the harness and the nodes' fault
// paths. ./test.sh runs the whole matrix in a pass without it.
var raceRows = map[string]bool{"symmetric-partition": true, "kill-restart": true, "fsync-errors": true}

func TestFaultMatrix(t *testing.T) {
	for _, r := range matrix() {
		t.Run(r.name, func(t *testing.T) {
			if race.Enabled && !raceRows[r.name] && *seedFlag == 0 {
				t.Skip("under the race detector only some rows run (raceRows); ./test.sh runs the whole matrix without it")
			}
			seed := rowSeed(r.name)
			t.Logf("seed %d (replay: go test ./sim -run 'TestFaultMatrix/%s$' -sim.seed %d)", seed, r.name, seed)
			// The randomness of TLS, QUIC and memberlist follows the seed
			// too, so that a replay draws the same numbers in the same order.
			cryptotest.SetGlobalRandom(t, seed)
			mathrand.Seed(int64(seed))
			synctest.Test(t, func(t *testing.T) { runRow(t, r, seed) })
		})
	}
}

func matrix() []row {
	isolateRegion := func(c *sim.Cluster, dc string) {
		for _, other := range []string{"east", "west", "south"} {
			if other != dc {
				c.Net.CutRegions(dc, other, true)
			}
		}
	}
	var staleKeys int // keys the restored replica differs on (silent-divergence)
	return []row{
		{
			name: "symmetric-partition",
			fault: func(t *testing.T, c *sim.Cluster, _ *rand.Rand) {
				isolateRegion(c, "west")
				time.Sleep(outage)
				c.Net.Heal()
			},
			proof: func(c *sim.Cluster, f faultStats) error {
				if f.cut() == 0 || f.ackedDuring() == 0 || f.hints == 0 {
					return fmt.Errorf("cut %d packets, acknowledged %d writes, stored %d hints", f.cut(), f.ackedDuring(), f.hints)
				}
				return nil
			},
		},
		{
			name: "asymmetric-partition",
			fault: func(t *testing.T, c *sim.Cluster, _ *rand.Rand) {
				c.Net.CutRegions("east", "west", false) // east's packets to west vanish; west's reach east
				time.Sleep(outage)
				c.Net.Heal()
			},
			proof: func(c *sim.Cluster, f faultStats) error {
				if f.cut() == 0 || f.ackedDuring() == 0 {
					return fmt.Errorf("cut %d packets, acknowledged %d writes", f.cut(), f.ackedDuring())
				}
				return nil
			},
		},
		{
			name: "bridge",
			opts: sim.Options{Regions: []string{"east", "west", "south"}},
			fault: func(t *testing.T, c *sim.Cluster, _ *rand.Rand) {
				c.Net.CutRegions("east", "west", true) // both still reach south
				time.Sleep(outage)
				c.Net.Heal()
			},
			writes: []string{"LOCAL_QUORUM", "EACH_QUORUM"},
			proof: func(c *sim.Cluster, f faultStats) error {
				if f.cut() == 0 || f.ackedDuring() == 0 {
					return fmt.Errorf("cut %d packets, acknowledged %d writes", f.cut(), f.ackedDuring())
				}
				return nil
			},
		},
		{
			name: "lossy-wan",
			fault: func(t *testing.T, c *sim.Cluster, _ *rand.Rand) {
				c.Net.SetLinks(sim.Link{Latency: 250 * time.Microsecond}, sim.Link{Latency: 40 * time.Millisecond, Jitter: 20 * time.Millisecond, Loss: 0.1})
				time.Sleep(outage)
				c.Net.SetLinks(sim.Link{Latency: 250 * time.Microsecond}, sim.Link{Latency: 40 * time.Millisecond})
			},
			writes: []string{"LOCAL_QUORUM", "EACH_QUORUM"},
			proof: func(c *sim.Cluster, f faultStats) error {
				if f.lost() == 0 || f.ackedDuring() == 0 {
					return fmt.Errorf("lost %d packets, acknowledged %d writes", f.lost(), f.ackedDuring())
				}
				return nil
			},
		},
		{
			name: "kill-restart",
			fault: func(t *testing.T, c *sim.Cluster, _ *rand.Rand) {
				if err := c.Kill("west-2"); err != nil {
					t.Error(err)
				}
				time.Sleep(outage)
				if err := c.Start("west-2"); err != nil {
					t.Fatal(err)
				}
			},
			proof: func(c *sim.Cluster, f faultStats) error {
				if f.ackedDuring() == 0 || f.hints == 0 {
					return fmt.Errorf("acknowledged %d writes, stored %d hints", f.ackedDuring(), f.hints)
				}
				return nil
			},
		},
		{
			// Concurrent writes on both sides of a partition, with the
			// regions' clocks 10 minutes apart: causality, not the wall
			// clock, must decide, so both survive as siblings.
			name: "clock-skew",
			opts: sim.Options{Clock: func(id string) func() time.Time {
				skew := -5 * time.Minute
				if strings.HasPrefix(id, "west") {
					skew = 5 * time.Minute
				}
				return func() time.Time { return time.Now().Add(skew) }
			}},
			fault: func(t *testing.T, c *sim.Cluster, _ *rand.Rand) {
				isolateRegion(c, "west")
				time.Sleep(outage)
				c.Net.Heal()
			},
			proof: func(c *sim.Cluster, f faultStats) error {
				if f.cut() == 0 || f.ackedDuring() == 0 || siblings(f.final) == 0 {
					return fmt.Errorf("cut %d packets, acknowledged %d writes, %d keys ended with siblings", f.cut(), f.ackedDuring(), siblings(f.final))
				}
				return nil
			},
		},
		{
			// A replica down past the hint window (max_age) and over the
			// hint bound: hints are dropped, their ranges marked for
			// repair, and repair must bring the replica back in line.
			name:  "hint-window-overrun",
			pause: 250 * time.Millisecond, // a long fault: a lighter load
			opts: sim.Options{Tweak: func(cfg *node.Config) {
				cfg.Hints.MaxAge = 5 * time.Second
				cfg.Hints.MaxBytesPerTarget = 16 << 10
			}},
			fault: func(t *testing.T, c *sim.Cluster, _ *rand.Rand) {
				if err := c.Kill("west-2"); err != nil {
					t.Error(err)
				}
				time.Sleep(70 * time.Second) // past the minute after which hints are expired
				if err := c.Start("west-2"); err != nil {
					t.Fatal(err)
				}
			},
			proof: func(c *sim.Cluster, f faultStats) error {
				if f.ackedDuring() == 0 || f.dropped == 0 {
					return fmt.Errorf("acknowledged %d writes, dropped %d hints", f.ackedDuring(), f.dropped)
				}
				return nil
			},
		},
		{
			// Every fsync on one node's disk fails for a while: it must
			// acknowledge nothing it may lose and tell its peers it failed,
			// and come back when restarted on a working disk.
			name: "fsync-errors",
			fault: func(t *testing.T, c *sim.Cluster, _ *rand.Rand) {
				c.FailSyncs("east-1", true)
				time.Sleep(outage)
				c.FailSyncs("east-1", false)
				if st := c.Node("east-2").PeerState("east-1"); st != node.StateFailed {
					t.Errorf("east-2 sees east-1 %s after its fsyncs failed, want %s", st, node.StateFailed)
				}
				if err := c.Kill("east-1"); err != nil {
					t.Logf("stopping the failed east-1: %v", err)
				}
				if err := c.Start("east-1"); err != nil {
					t.Fatal(err)
				}
			},
			proof: func(c *sim.Cluster, f faultStats) error {
				if n := c.FailSyncs("east-1", false); n == 0 || f.ackedDuring() == 0 {
					return fmt.Errorf("failed %d fsyncs, acknowledged %d writes", n, f.ackedDuring())
				}
				return nil
			},
			// Only the writes east-1 was committing when its disk failed
			// may end unknown (at most one per worker); later ones are
			// refused unexecuted, and the client sends them elsewhere.
			after: func(t *testing.T, f faultStats) {
				unknown := 0
				for _, op := range f.during {
					if op.Kind != history.Read && op.Outcome == history.Unknown && strings.Contains(op.Note, "east-1") {
						unknown++
					}
				}
				if unknown > f.workers {
					t.Errorf("%d writes through east-1 ended with an unknown outcome after its store failed, more than the %d that can have been committing then", unknown, f.workers)
				}
			},
		},
		{
			// A node joins west while west is cut off from east: the ring
			// changes under the partition, and after the heal the new node
			// must hold its ranges with nothing acknowledged lost.
			name: "join-under-partition",
			fault: func(t *testing.T, c *sim.Cluster, _ *rand.Rand) {
				isolateRegion(c, "west")
				time.Sleep(outage / 2)
				if _, err := c.Add("west"); err != nil {
					t.Fatal(err)
				}
				time.Sleep(outage / 2)
				c.Net.Heal()
			},
			proof: func(c *sim.Cluster, f faultStats) error {
				held := len(f.final["west-4"])
				if f.cut() == 0 || f.ackedDuring() == 0 || held == 0 {
					return fmt.Errorf("cut %d packets, acknowledged %d writes, the new node is a replica of %d keys", f.cut(), f.ackedDuring(), held)
				}
				return nil
			},
		},
		{
			// A replica's disk is restored from a snapshot taken when the
			// fault began: it silently lacks what it acknowledged since,
			// no hint covers it, and its own dot counter is set back.
			// Repair must find and mend the divergence.
			name: "silent-divergence",
			fault: func(t *testing.T, c *sim.Cluster, _ *rand.Rand) {
				snap := c.Backup("west-2")
				time.Sleep(outage)
				if err := c.Kill("west-2"); err != nil {
					t.Error(err)
				}
				if err := c.Restore("west-2", snap); err != nil {
					t.Fatal(err)
				}
				if err := c.Start("west-2"); err != nil {
					t.Fatal(err)
				}
				states, err := c.Scan("default")
				if err != nil {
					t.Fatal(err)
				}
				staleKeys = 0
				for k, v := range states["west-1"] {
					if !slices.Equal(states["west-2"][k], v) {
						staleKeys++
					}
				}
			},
			proof: func(c *sim.Cluster, f faultStats) error {
				if f.ackedDuring() == 0 || staleKeys == 0 {
					return fmt.Errorf("acknowledged %d writes, the restored replica differed from its peer on %d keys", f.ackedDuring(), staleKeys)
				}
				return nil
			},
		},
		{
			name: "power-loss-everywhere",
			fault: func(t *testing.T, c *sim.Cluster, rng *rand.Rand) {
				time.Sleep(outage / 2)
				for _, id := range c.IDs() {
					if err := c.PowerLoss(id, 50, rng); err != nil {
						t.Error(err)
					}
				}
				for _, id := range c.IDs() {
					if err := c.Start(id); err != nil {
						t.Fatal(err)
					}
				}
				time.Sleep(outage / 2)
			},
			proof: func(c *sim.Cluster, f faultStats) error {
				if f.ackedDuring() == 0 {
					return fmt.Errorf("acknowledged %d writes", f.ackedDuring())
				}
				return nil
			},
		},
	}
}

// runRow runs one row inside a synctest bubble: a cluster, a baseline of
// load, the fault under load, a heal and repair, then the checkers over the
// history and an independent scan of every replica.
func runRow(t *testing.T, r row, seed uint64) {
	opts := r.opts
	opts.Seed = seed
	c, err := sim.NewCluster(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitConverged(time.Minute); err != nil {
		t.Fatal(err)
	}
	var clients []*client.Client
	regions := opts.Regions
	if regions == nil {
		regions = []string{"east", "west"}
	}
	for _, dc := range regions {
		cl, err := c.Client(dc)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, cl)
	}
	keys := make([]string, 12)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%02d", i)
	}
	var rec history.Recorder
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		workload.Run(ctx, workload.Config{Keys: keys, Clients: clients, Workers: 2 * len(clients), Seed: seed, Write: r.writes, Pause: cmp.Or(r.pause, 50*time.Millisecond)}, &rec)
	}()
	time.Sleep(baseline)

	rng := rand.New(rand.NewPCG(seed, 1))
	f := faultStats{before: c.Net.Stats(), workers: 2 * len(clients)}
	hintsBefore := storedHints(c)
	start := time.Now()
	r.fault(t, c, rng)
	end := time.Now()
	f.after = c.Net.Stats()
	f.hints = storedHints(c) - hintsBefore
	f.dropped = droppedHints(c)
	time.Sleep(baseline)
	stop()
	<-done

	ops := rec.Ops()
	for _, op := range ops {
		if !op.Start.Before(start) && op.Start.Before(end) {
			f.during = append(f.during, op)
		}
	}
	t.Logf("fault %v: %d ops during it; net %+v → %+v; %d hints stored, %d dropped", end.Sub(start), len(f.during), f.before, f.after, f.hints, f.dropped)

	states, replicas := converge(t, c, clients[0], keys)
	f.final = states
	if err := r.proof(c, f); err != nil {
		t.Fatalf("the fault did not happen as the row needs, so the row proves nothing: %v", err)
	}
	rep := check(ops, states, replicas)
	t.Logf("%s", rep)
	if !rep.OK() {
		explain(t, c, rep)
		t.Fatalf("checker found violations (seed %d):\n%s", seed, rep)
	}
	if rep.Acked == 0 {
		t.Fatal("no write was acknowledged: the row checked nothing")
	}
	plantedViolationsCaught(t, ops, states, replicas)
	if r.after != nil {
		r.after(t, f)
	}
}

// droppedHints sums the hints every running node dropped since it
// started.
func droppedHints(c *sim.Cluster) int64 {
	var n int64
	for _, id := range c.IDs() {
		if nd := c.Node(id); nd != nil {
			n += nd.Hints().Dropped
		}
	}
	return n
}

// check runs the checkers key by key over the key's replicas only: a node
// that is not a replica of a key (a ring with more nodes than replicas)
// need not hold it. Keys no replica ever held still have their reads
// checked.
func check(ops []history.Op, states map[string]history.State, replicas map[string][]string) history.Report {
	byKey := map[string][]history.Op{}
	for _, op := range ops {
		byKey[op.Key] = append(byKey[op.Key], op)
	}
	var total history.Report
	for _, k := range slices.Sorted(maps.Keys(byKey)) {
		holders := map[string]history.State{}
		for _, id := range replicas[k] {
			st := history.State{}
			if v, ok := states[id][k]; ok {
				st[k] = v
			}
			holders[id] = st
		}
		rep := history.Check(byKey[k], holders)
		total.Acked += rep.Acked
		total.Failed += rep.Failed
		total.Unknown += rep.Unknown
		total.Reads += rep.Reads
		total.AckedDeletes += rep.AckedDeletes
		total.Lost = append(total.Lost, rep.Lost...)
		total.Resurrected = append(total.Resurrected, rep.Resurrected...)
		total.Phantoms = append(total.Phantoms, rep.Phantoms...)
	}
	return total
}

// explain logs, for each value reported lost, which nodes' stores hold
// it, replicas or not.
func explain(t *testing.T, c *sim.Cluster, rep history.Report) {
	all, err := c.Scan("default")
	if err != nil {
		t.Logf("scanning for the report: %v", err)
		return
	}
	for i, f := range rep.Lost {
		if i == 20 {
			break
		}
		var where []string
		for _, id := range c.IDs() {
			if slices.Contains(all[id][f.Key], f.Value) {
				where = append(where, id)
			}
		}
		t.Logf("lost %s=%s (%s %v–%v) is held by %v", f.Key, f.Value, f.Op.Note, f.Op.Start.Format("05.000"), f.Op.End.Format("05.000"), where)
	}
}

// storedHints sums the hints every running node stored since it started.
func storedHints(c *sim.Cluster) int64 {
	var n int64
	for _, id := range c.IDs() {
		if nd := c.Node(id); nd != nil {
			n += nd.Hints().Stored
		}
	}
	return n
}

// converge waits for membership, for every hint to be delivered and for a
// repair of everything to leave every replica of every key with the same
// values, and returns the replicas' states. The states come from a scan of
// every store, not from a request (P4's independent check); only which
// nodes are a key's replicas is asked of the cluster (meridian inspect).
func converge(t *testing.T, c *sim.Cluster, cl *client.Client, keys []string) (map[string]history.State, map[string][]string) {
	t.Helper()
	if err := c.WaitConverged(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, rerr := cl.Repair(ctx, &client.RepairOptions{}, nil)
		states, replicas, err := replicaStates(ctx, c, cl, keys)
		cancel()
		diff := ""
		if err != nil {
			diff = err.Error()
		} else {
			diff = divergence(states, replicas)
		}
		hints := c.PendingHints()
		if rerr == nil && diff == "" && hints == 0 {
			return states, replicas
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas did not converge (repair: %v; hints pending %d): %s", rerr, hints, diff)
		}
		time.Sleep(time.Second)
	}
}

// replicaStates scans every store and keeps, for each key, what its
// replicas hold (a key a replica lacks is absent from its state); it also
// returns each key's replicas.
func replicaStates(ctx context.Context, c *sim.Cluster, cl *client.Client, keys []string) (map[string]history.State, map[string][]string, error) {
	scanned, err := c.Scan("default")
	if err != nil {
		return nil, nil, err
	}
	out := map[string]history.State{}
	replicas := map[string][]string{}
	for _, k := range keys {
		res, err := cl.Inspect(ctx, "default", []byte(k))
		if err != nil {
			return nil, nil, fmt.Errorf("replicas of %s: %w", k, err)
		}
		for _, r := range res.Replicas {
			replicas[k] = append(replicas[k], r.Node)
			if out[r.Node] == nil {
				out[r.Node] = history.State{}
			}
			if v, ok := scanned[r.Node][k]; ok {
				out[r.Node][k] = v
			}
		}
	}
	return out, replicas, nil
}

// siblings counts the keys that hold more than one value on some replica.
func siblings(states map[string]history.State) int {
	keys := map[string]bool{}
	for _, st := range states {
		for k, vals := range st {
			if len(vals) > 1 {
				keys[k] = true
			}
		}
	}
	return len(keys)
}

// divergence describes the first key whose replicas disagree (one lacking
// it counts), or "".
func divergence(states map[string]history.State, replicas map[string][]string) string {
	for _, k := range slices.Sorted(maps.Keys(replicas)) {
		ids := replicas[k]
		v0, ok0 := states[ids[0]][k]
		for _, id := range ids[1:] {
			v, ok := states[id][k]
			if ok != ok0 || !slices.Equal(v, v0) {
				return fmt.Sprintf("key %s: %s holds %v (present %v), %s holds %v (present %v)", k, ids[0], v0, ok0, id, v, ok)
			}
		}
	}
	return ""
}

// plantedViolationsCaught proves the checker is not vacuous on this very
// history: dropping an acknowledged, unsuperseded value from one replica
// must be reported lost, and a value nobody wrote must be reported a
// phantom.
func plantedViolationsCaught(t *testing.T, ops []history.Op, states map[string]history.State, replicas map[string][]string) {
	t.Helper()
	node := slices.Sorted(maps.Keys(states))[0]
	var victim *history.Op
	for i := range ops {
		op := &ops[i]
		if op.Kind == history.Put && op.Outcome == history.OK && slices.Contains(states[node][op.Key], op.Value) {
			victim = op
		}
	}
	if victim == nil {
		t.Fatal("no acknowledged value survives on " + node + ": nothing to plant a loss on")
	}
	planted := map[string]history.State{}
	for id, st := range states {
		planted[id] = maps.Clone(st)
	}
	planted[node][victim.Key] = slices.DeleteFunc(slices.Clone(states[node][victim.Key]), func(v string) bool { return v == victim.Value })
	if rep := check(ops, planted, replicas); len(rep.Lost) == 0 {
		t.Fatalf("the checker missed a planted loss of %q from %s", victim.Value, node)
	}
	planted[node][victim.Key] = append(slices.Clone(states[node][victim.Key]), "never-written")
	if rep := check(ops, planted, replicas); len(rep.Phantoms) == 0 {
		t.Fatal("the checker missed a planted phantom")
	}
}
