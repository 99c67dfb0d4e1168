package deploy

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/history"
	"github.com/meridian-kv/meridian/workload"
)

// load is a compact driver of the history harness for a cluster reached
// from the host, in the manner of cmd/meridian's
// TestProcessesKeepEveryAcknowledgedWrite: workers make read-modify-writes
// (recording what their read saw), blind writes and deletes of what a read
// saw, every put with a value unique to it, and record each operation.
type load struct {
	t       *testing.T
	keys    []string
	clients map[string]*client.Client // by home region
	rec     history.Recorder

	mu     sync.Mutex
	phases []*loadPhase

	// pace paces the operations of all workers together.
	pace *time.Ticker

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type loadPhase struct {
	name string
	// acked counts acknowledged writes by the worker's home region.
	acked         map[string]int
	errors, reads int
	firstErr      string
}

// newLoad dials one client per home region from the client configuration.
func newLoad(t *testing.T, config string, keys []string, regions ...string) *load {
	l := &load{t: t, keys: keys, clients: map[string]*client.Client{}}
	l.phases = []*loadPhase{{name: "baseline", acked: map[string]int{}}}
	cfg, err := client.LoadConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	for _, dc := range regions {
		c := *cfg
		c.DC = dc
		c.Timeout = 10 * time.Second
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

// start runs workers, each homed in one of homes in turn, making an
// operation every interval between them all.
func (l *load) start(interval time.Duration, homes ...string) {
	l.pace = time.NewTicker(interval)
	for w, dc := range homes {
		l.wg.Add(1)
		go l.worker(w, dc, rand.New(rand.NewPCG(rand.Uint64(), uint64(w))))
	}
}

// phase starts a new phase of the report.
func (l *load) phase(name string) {
	l.mu.Lock()
	l.phases = append(l.phases, &loadPhase{name: name, acked: map[string]int{}})
	l.mu.Unlock()
	l.t.Logf("load: %s", name)
}

// await polls until the current phase has at least want[dc] acknowledged
// writes from workers homed in each dc, within a generous deadline.
func (l *load) await(want map[string]int) {
	l.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		l.mu.Lock()
		p := l.phases[len(l.phases)-1]
		ok := true
		for dc, n := range want {
			ok = ok && p.acked[dc] >= n
		}
		got := fmt.Sprint(p.acked)
		errs, first := p.errors, p.firstErr
		l.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("load in phase %q: acknowledged %s, want %v; %d errors, first: %s", p.name, got, want, errs, first)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the load and returns its history.
func (l *load) stop() []history.Op {
	l.cancel()
	l.wg.Wait()
	l.pace.Stop()
	return l.rec.Ops()
}

func (l *load) record(op history.Op, dc string, err error) {
	l.rec.Add(op)
	l.mu.Lock()
	p := l.phases[len(l.phases)-1]
	switch {
	case op.Kind == history.Read:
		p.reads++
	case op.Outcome == history.OK:
		p.acked[dc]++
	default:
		p.errors++
	}
	if err != nil && p.firstErr == "" {
		p.firstErr = err.Error()
	}
	l.mu.Unlock()
}

// outcomeErr is the error text an operation that did not succeed recorded
// in its note, for the phase's first error; nil if it succeeded.
func outcomeErr(op history.Op) error {
	if op.Outcome == history.OK {
		return nil
	}
	return errors.New(op.Note)
}

func (l *load) worker(w int, dc string, rng *rand.Rand) {
	defer l.wg.Done()
	c := l.clients[dc]
	for i := 0; ; i++ {
		select {
		case <-l.pace.C:
		case <-l.ctx.Done():
			return
		}
		key := l.keys[rng.IntN(len(l.keys))]
		value := fmt.Sprintf("%s-w%d-%d", dc, w, i)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		read := func() (*client.GetResult, bool) {
			op, res := workload.Read(ctx, c, "", key, "LOCAL_QUORUM")
			op.Client, op.Note = w, op.Note+" via "+dc
			l.record(op, dc, outcomeErr(op))
			return res, res != nil
		}
		write := func(del bool, seen *client.GetResult) {
			op := workload.Write(ctx, c, "", key, value, del, seen, "LOCAL_QUORUM")
			op.Client, op.Note = w, op.Note+" via "+dc
			l.record(op, dc, outcomeErr(op))
		}
		switch p := rng.IntN(100); {
		case p < 60: // read-modify-write
			if res, ok := read(); ok {
				write(false, res)
			}
		case p < 85: // blind write
			write(false, nil)
		default: // delete what a read saw
			if res, ok := read(); ok && len(res.Values) > 0 {
				write(true, res)
			}
		}
		cancel()
	}
}

// states asks every replica of every key what it holds (inspect through
// the client homed in region), retrying until every replica answers.
func (l *load) states(region string) map[string]history.State {
	l.t.Helper()
	var out map[string]history.State
	waitFor(l.t, "inspect every key on every replica", 2*time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var err error
		out, err = workload.States(ctx, l.clients[region], "default", l.keys)
		return err
	})
	return out
}
