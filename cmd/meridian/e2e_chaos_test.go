package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/history"
	"github.com/meridian-kv/meridian/workload"
)

// TestProcessesKeepEveryAcknowledgedWrite is the durability harness: a
// load of unique values (read-modify-writes, blind writes and deletes with
// their contexts, mixed LOCAL_QUORUM and EACH_QUORUM, from clients homed in
// both regions) runs against 2 regions × 3 node processes while the
// harness kill -9s a node, a whole region, every node at once, a node
// whose data directory it then wipes (a replaced disk), and SIGSTOPs a
// node. After the faults heal, hints drain and one repair runs,
// every replica of every key must hold every acknowledged write that no
// later write saw (P1), no value an acknowledged delete saw (P3), only
// values that were written (P2), and all replicas must agree (P4).
//
// Run it alone with
//
//	go test -run TestProcessesKeepEveryAcknowledgedWrite -v ./cmd/meridian
//
// MERIDIAN_CHAOS_SEED=N replays the choices of a run (keys, operations,
// victims); the seed is printed. MERIDIAN_CHAOS_KEYS sets the key count
// (default 40).
func TestProcessesKeepEveryAcknowledgedWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six node processes; skipped in -short")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MERIDIAN_CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("MERIDIAN_CHAOS_SEED: %v", err)
		}
	}
	nkeys := 40
	if s := os.Getenv("MERIDIAN_CHAOS_KEYS"); s != "" {
		var err error
		if nkeys, err = strconv.Atoi(s); err != nil || nkeys < 1 {
			t.Fatalf("MERIDIAN_CHAOS_KEYS=%q", s)
		}
	}
	t.Logf("seed %d (replay with MERIDIAN_CHAOS_SEED=%d), %d keys", seed, seed, nkeys)
	rng := rand.New(rand.NewPCG(seed, 1))

	pc := newProcCluster(t, "--regions", "east,west", "--wan-latency", "10ms")
	east := []string{"east-1", "east-2", "east-3"}
	west := []string{"west-1", "west-2", "west-3"}
	ids := append(slices.Clone(east), west...)
	pc.startAll(ids)

	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("chaos-%03d", i)
	}
	load := newChaosLoad(t, pc, keys, rng.Uint64())
	load.start(8)

	// The faults, one after the other, the load running throughout. Each
	// waits for the cluster to be whole again before the next.
	settle := func() {
		pc.waitAllSeeAll(ids)
		load.await(40) // enough operations in the healed cluster
	}
	load.await(40)

	victim := ids[rng.IntN(len(ids))]
	load.phase("kill -9 " + victim)
	pc.kill(victim)
	load.await(40)
	pc.start(victim)
	settle()

	region := [][]string{east, west}[rng.IntN(2)]
	load.phase("kill -9 region " + strings.Join(region, ","))
	for _, id := range region {
		pc.kill(id)
	}
	load.await(40)
	for _, id := range region {
		pc.start(id)
	}
	settle()

	load.phase("kill -9 every node")
	for _, id := range ids {
		pc.kill(id)
	}
	for _, id := range ids {
		pc.start(id)
	}
	settle()

	wiped := ids[rng.IntN(len(ids))]
	load.phase("kill -9 and wipe " + wiped)
	pc.kill(wiped)
	if err := os.RemoveAll(pc.nodeConfig(wiped).DataDir); err != nil {
		t.Fatal(err)
	}
	pc.start(wiped)
	// Blind writes through the wiped node at once, before read repair
	// brings its keys back: the writes a node that re-minted old dots lost.
	load.blindVia(wiped, 30)
	settle()

	stopped := ids[rng.IntN(len(ids))]
	load.phase("SIGSTOP " + stopped)
	if err := pc.procs[stopped].Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	load.await(60)
	if err := pc.procs[stopped].Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	settle()

	load.phase("healed")
	load.await(40)
	ops := load.stop()
	for _, p := range load.phases {
		t.Logf("phase %-28s %5d writes acknowledged, %4d not, %4d reads", p.name, p.acked, p.errors, p.reads)
	}

	// Heal: every hint delivered, then what hints alone achieved.
	pc.waitStatus("every node up with no hints pending", 2*time.Minute, noHints)
	before := load.states()
	// Hints alone must have brought every acknowledged write to every
	// replica (each was durably queued for every replica before its
	// acknowledgement), except to the wiped node, whose lost disk only
	// repair can bring back.
	delete(before, wiped)
	repBefore := history.Check(ops, before)
	t.Logf("after handoff, before repair (all but the wiped %s): %s", wiped, repBefore)
	if len(repBefore.Lost) > 0 {
		t.Errorf("acknowledged writes missing after hinted handoff, before any repair (seed %d): %s", seed, repBefore)
	}

	waitFor(t, 2*time.Minute, func() error {
		_, err := pc.try("repair", "--now", "--json", "--node", "east-1")
		return err
	})
	after := load.states()
	rep := history.Check(ops, after)
	t.Logf("after repair: %s", rep)
	if !rep.OK() {
		t.Errorf("durability violated (seed %d): %s", seed, rep)
	}
	// Not vacuous: writes and deletes were acknowledged, and some writes
	// failed or were left unknown by the faults.
	if rep.Acked < 200 || rep.AckedDeletes == 0 || rep.Failed+rep.Unknown == 0 {
		t.Errorf("vacuous run: %s", rep)
	}
	// P4: every replica holds the same values of every key.
	for _, key := range keys {
		var first []string
		for i, id := range ids {
			got := after[id][key]
			if i == 0 {
				first = got
			} else if !slices.Equal(got, first) {
				t.Errorf("replicas disagree on %s after repair: %s %q, %s %q", key, ids[0], first, id, got)
				break
			}
		}
	}
}

// chaosLoad drives the workload of TestProcessesKeepEveryAcknowledgedWrite
// and records its history.
type chaosLoad struct {
	t       *testing.T
	pc      *procCluster
	keys    []string
	seed    uint64
	clients map[string]*client.Client // by home region
	rec     history.Recorder

	mu     sync.Mutex
	phases []*chaosPhase
	cond   *sync.Cond
	done   int // operations completed

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type chaosPhase struct {
	name                 string
	acked, errors, reads int
}

func newChaosLoad(t *testing.T, pc *procCluster, keys []string, seed uint64) *chaosLoad {
	l := &chaosLoad{t: t, pc: pc, keys: keys, seed: seed, clients: map[string]*client.Client{}}
	l.cond = sync.NewCond(&l.mu)
	l.phases = []*chaosPhase{{name: "baseline"}}
	cfg, err := client.LoadConfig(filepath.Join(pc.dir, "client.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dc := range []string{"east", "west"} {
		c := *cfg
		c.DC = dc
		c.Timeout = 5 * time.Second
		cl, err := client.Dial(context.Background(), &c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		l.clients[dc] = cl
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l
}

func (l *chaosLoad) start(workers int) {
	for w := range workers {
		l.wg.Add(1)
		go l.worker(w, []string{"east", "west"}[w%2], rand.New(rand.NewPCG(l.seed, uint64(w))))
	}
}

// phase starts a new phase of the report.
func (l *chaosLoad) phase(name string) {
	l.mu.Lock()
	l.phases = append(l.phases, &chaosPhase{name: name})
	l.mu.Unlock()
	l.t.Logf("fault: %s", name)
}

// await waits until n more operations completed, or a generous deadline.
func (l *chaosLoad) await(n int) {
	deadline := time.Now().Add(2 * time.Minute)
	l.mu.Lock()
	defer l.mu.Unlock()
	target := l.done + n
	for l.done < target {
		if time.Now().After(deadline) {
			l.t.Fatalf("the load made no progress: %d of %d operations", l.done, target)
		}
		l.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
		l.mu.Lock()
	}
}

func (l *chaosLoad) stop() []history.Op {
	l.cancel()
	l.wg.Wait()
	return l.rec.Ops()
}

// record adds op to the history and to the current phase.
func (l *chaosLoad) record(op history.Op) {
	l.rec.Add(op)
	l.mu.Lock()
	p := l.phases[len(l.phases)-1]
	switch {
	case op.Kind == history.Read:
		p.reads++
	case op.Outcome == history.OK:
		p.acked++
	default:
		p.errors++
	}
	l.done++
	l.mu.Unlock()
}

func (l *chaosLoad) worker(w int, dc string, rng *rand.Rand) {
	defer l.wg.Done()
	c := l.clients[dc]
	for i := 0; l.ctx.Err() == nil; i++ {
		key := l.keys[rng.IntN(len(l.keys))]
		cons := []string{"LOCAL_QUORUM", "EACH_QUORUM"}[rng.IntN(2)]
		value := fmt.Sprintf("w%d-%d", w, i)
		ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
		read := func() (*client.GetResult, bool) {
			op, res := workload.Read(ctx, c, "", key, "LOCAL_QUORUM")
			op.Client, op.Note = w, op.Note+" via "+dc
			l.record(op)
			return res, res != nil
		}
		write := func(del bool, seen *client.GetResult) {
			op := workload.Write(ctx, c, "", key, value, del, seen, cons)
			op.Client, op.Note = w, op.Note+" via "+dc
			l.record(op)
		}
		switch p := rng.IntN(100); {
		case p < 60: // read-modify-write
			if res, ok := read(); ok {
				write(false, res)
			}
		case p < 75: // blind write
			write(false, nil)
		case p < 88: // delete what a read saw
			if res, ok := read(); ok && len(res.Values) > 0 {
				write(true, res)
			}
		default:
			read()
		}
		cancel()
	}
}

// blindVia makes n blind writes through node id alone, retrying each until
// the node takes writes, and records them.
func (l *chaosLoad) blindVia(id string, n int) {
	cfg := l.pc.nodeConfig(id)
	ccfg, err := client.LoadConfig(filepath.Join(l.pc.dir, "client.yaml"))
	if err != nil {
		l.t.Fatal(err)
	}
	ccfg.DC = cfg.DC
	ccfg.Nodes = []client.Node{{ID: id, DC: cfg.DC, Addr: cfg.Listen}}
	c, err := client.Dial(context.Background(), ccfg)
	if err != nil {
		l.t.Fatal(err)
	}
	defer c.Close()
	for i := range n {
		key := l.keys[i%len(l.keys)]
		value := fmt.Sprintf("via-%s-%d", id, i)
		waitFor(l.t, time.Minute, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
			defer cancel()
			op := history.Op{Client: -1, Kind: history.Put, Key: key, Value: value, Start: time.Now(), Note: "EACH_QUORUM via " + id}
			_, err := c.Put(ctx, []byte(key), []byte(value), &client.WriteOptions{Consistency: "EACH_QUORUM"})
			op.End, op.Outcome = time.Now(), workload.Outcome(err)
			l.record(op)
			return err
		})
	}
}

// states asks every replica of every key what it holds (meridian inspect),
// retrying until every replica answers.
func (l *chaosLoad) states() map[string]history.State {
	var out map[string]history.State
	waitFor(l.t, time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var err error
		out, err = workload.States(ctx, l.clients["east"], "default", l.keys)
		return err
	})
	return out
}
