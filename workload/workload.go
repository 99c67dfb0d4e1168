// Package workload drives a Meridian cluster with a recorded load of
// unique values, for the checkers of package history: workers read, then
// write with the read's causal context (or write blindly, or delete what
// they read), and every operation goes into a history.Recorder with its
// outcome. States then asks every replica of every key what it holds.
//
// Fault tests (package sim, the process tests of cmd/meridian and deploy)
// and the failover drill share it, so that what counts as acknowledged,
// failed or unknown is decided in one place (Outcome).
package workload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/history"
)

// Mix is the share, in percent, of each kind of step; what is left of 100
// are plain reads.
type Mix struct {
	// ReadModifyWrite reads the key, then writes a new value with the
	// read's context (superseding what it saw).
	ReadModifyWrite int
	// Blind writes without a context (a sibling of whatever is there).
	Blind int
	// Delete reads the key, then deletes what it saw.
	Delete int
}

// DefaultMix is 60 % read-modify-write, 15 % blind writes, 13 % deletes
// and 12 % reads.
var DefaultMix = Mix{ReadModifyWrite: 60, Blind: 15, Delete: 13}

// Config is one load.
type Config struct {
	// Keys are the keys written; Keyspace defaults to the client's.
	Keys     []string
	Keyspace string
	// Clients are the workers' clients: worker i uses Clients[i %
	// len(Clients)], and records its operations under Client i.
	Clients []*client.Client
	// Workers defaults to len(Clients).
	Workers int
	// Seed drives the choice of keys and steps.
	Seed uint64
	// Write and Read are the consistency levels (or vectors) each step
	// picks from at random; default LOCAL_QUORUM both.
	Write, Read []string
	// Mix defaults to DefaultMix.
	Mix Mix
	// OpTimeout bounds one operation; default 6s.
	OpTimeout time.Duration
	// Pause is each worker's wait between steps (0: none).
	Pause time.Duration
	// Rate, if positive, bounds the steps all workers together start per
	// second (a step is a read, a write, or a read and the write based on
	// it); 0 means no bound.
	Rate float64
	// Prefix starts every value (to tell loads apart); values are
	// Prefix + "w<worker>-<n>".
	Prefix string
}

// Run drives the load until ctx is done and records every operation in
// rec. It returns when every worker has stopped.
func Run(ctx context.Context, cfg Config, rec *history.Recorder) {
	if len(cfg.Clients) == 0 || len(cfg.Keys) == 0 {
		return
	}
	if cfg.Workers == 0 {
		cfg.Workers = len(cfg.Clients)
	}
	if cfg.Write == nil {
		cfg.Write = []string{"LOCAL_QUORUM"}
	}
	if cfg.Read == nil {
		cfg.Read = []string{"LOCAL_QUORUM"}
	}
	if cfg.Mix == (Mix{}) {
		cfg.Mix = DefaultMix
	}
	if cfg.OpTimeout == 0 {
		cfg.OpTimeout = 6 * time.Second
	}
	var lim *rate.Limiter
	if cfg.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(cfg.Rate), 1)
	}
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker{cfg: &cfg, id: w, c: cfg.Clients[w%len(cfg.Clients)], rec: rec, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(w))), lim: lim}.run(ctx)
		}()
	}
	wg.Wait()
}

type worker struct {
	cfg *Config
	id  int
	c   *client.Client
	rec *history.Recorder
	rng *rand.Rand
	lim *rate.Limiter // nil: no bound
}

func (w worker) run(ctx context.Context) {
	for i := 0; ctx.Err() == nil; i++ {
		if w.lim != nil && w.lim.Wait(ctx) != nil {
			return
		}
		key := w.cfg.Keys[w.rng.IntN(len(w.cfg.Keys))]
		value := fmt.Sprintf("%sw%d-%d", w.cfg.Prefix, w.id, i)
		m := w.cfg.Mix
		switch p := w.rng.IntN(100); {
		case p < m.ReadModifyWrite:
			if res, ok := w.read(ctx, key); ok {
				w.write(ctx, key, value, false, res)
			}
		case p < m.ReadModifyWrite+m.Blind:
			w.write(ctx, key, value, false, nil)
		case p < m.ReadModifyWrite+m.Blind+m.Delete:
			if res, ok := w.read(ctx, key); ok && len(res.Values) > 0 {
				w.write(ctx, key, "", true, res)
			}
		default:
			w.read(ctx, key)
		}
		if w.cfg.Pause > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(w.cfg.Pause):
			}
		}
	}
}

func (w worker) read(ctx context.Context, key string) (*client.GetResult, bool) {
	if ctx.Err() != nil {
		return nil, false
	}
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.OpTimeout)
	defer cancel()
	op, res := Read(octx, w.c, w.cfg.Keyspace, key, w.cfg.Read[w.rng.IntN(len(w.cfg.Read))])
	op.Client = w.id
	w.rec.Add(op)
	return res, res != nil
}

// write puts value (or deletes, if del) with the context of seen, if any.
// It runs to its timeout even when ctx ends, so that a write's outcome is
// known whenever the client can know it.
func (w worker) write(ctx context.Context, key, value string, del bool, seen *client.GetResult) {
	if ctx.Err() != nil {
		return
	}
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.OpTimeout)
	defer cancel()
	op := Write(octx, w.c, w.cfg.Keyspace, key, value, del, seen, w.cfg.Write[w.rng.IntN(len(w.cfg.Write))])
	op.Client = w.id
	w.rec.Add(op)
}

// Read reads key at consistency cons through c and returns the operation
// as the checkers record it (its Client left 0 for the caller to set) and
// the result, nil if the read failed. Note names the level, and the error.
func Read(ctx context.Context, c *client.Client, keyspace, key, cons string) (history.Op, *client.GetResult) {
	op := history.Op{Kind: history.Read, Key: key, Start: time.Now(), Note: cons}
	res, err := c.Get(ctx, []byte(key), &client.ReadOptions{Keyspace: keyspace, Consistency: cons})
	op.End, op.Outcome = time.Now(), Outcome(err)
	if err != nil {
		op.Note += ": " + err.Error()
		return op, nil
	}
	for _, v := range res.Values {
		op.Read = append(op.Read, string(v))
	}
	return op, res
}

// Write puts value under key (or deletes key, if del) at consistency cons
// through c, with the causal context of seen if it is not nil (what it saw
// goes into the operation's Saw), and returns the operation as the checkers
// record it (its Client left 0 for the caller to set).
func Write(ctx context.Context, c *client.Client, keyspace, key, value string, del bool, seen *client.GetResult, cons string) history.Op {
	op := history.Op{Kind: history.Put, Key: key, Value: value, Start: time.Now(), Note: cons}
	opts := &client.WriteOptions{Keyspace: keyspace, Consistency: cons}
	if seen != nil {
		opts.Context = seen.Context
		for _, v := range seen.Values {
			op.Saw = append(op.Saw, string(v))
		}
	}
	var err error
	var res *client.PutResult
	if del {
		op.Kind, op.Value = history.Delete, ""
		res, err = c.Delete(ctx, []byte(key), opts)
	} else {
		res, err = c.Put(ctx, []byte(key), []byte(value), opts)
	}
	op.End, op.Outcome = time.Now(), Outcome(err)
	if err == nil && res != nil {
		op.Coordinator, op.Context = res.Coordinator, res.Context
	}
	if err != nil {
		op.Note += ": " + err.Error()
	}
	return op
}

// Outcome classifies an operation's error: none (OK); refused before
// anything was stored, or certainly not sent (Fail); or possibly applied
// (Unknown). A write called not sent that was applied after all would show
// as a lost value it superseded, so the checkers test that claim too.
func Outcome(err error) history.Outcome {
	if err == nil {
		return history.OK
	}
	if errors.Is(err, client.ErrNoNodes) {
		return history.Fail
	}
	var ce *api.ClientError
	if errors.As(err, &ce) {
		switch ce.Code {
		case api.CodeBadRequest, api.CodeUnknownKeyspace, api.CodeTooLarge, api.CodeConsistency, api.CodeTooManySiblings:
			return history.Fail
		}
	}
	return history.Unknown
}

// States asks every replica of every key what it holds (as meridian
// inspect does) through c, a few keys at a time, and returns replica → key
// → sorted live values. A key some replica cannot answer for is an error
// naming it.
func States(ctx context.Context, c *client.Client, keyspace string, keys []string) (map[string]history.State, error) {
	states, err := Inspect(ctx, c, keyspace, keys, nil)
	if err != nil {
		return nil, err
	}
	out := map[string]history.State{}
	for key, rs := range states {
		for _, r := range rs {
			if out[r.Node] == nil {
				out[r.Node] = history.State{}
			}
			vals := slices.Clone(r.Values)
			slices.Sort(vals)
			out[r.Node][key] = vals
		}
	}
	return out, nil
}

// Inspect asks the replicas of every key what they hold (as meridian
// inspect does) through c, a few keys at a time, and returns key → the
// states of the replicas keep accepts (nil keeps all). A key a kept
// replica cannot answer for is an error naming it.
func Inspect(ctx context.Context, c *client.Client, keyspace string, keys []string, keep func(api.ReplicaState) bool) (map[string][]api.ReplicaState, error) {
	out := make(map[string][]api.ReplicaState, len(keys))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(statesParallel)
	for _, key := range keys {
		g.Go(func() error {
			res, err := c.Inspect(gctx, keyspace, []byte(key))
			if err != nil {
				return fmt.Errorf("inspect %q: %w", key, err)
			}
			var rs []api.ReplicaState
			for _, r := range res.Replicas {
				if keep != nil && !keep(r) {
					continue
				}
				if r.Error != "" {
					return fmt.Errorf("inspect %q on %s: %s", key, r.Node, r.Error)
				}
				rs = append(rs, r)
			}
			mu.Lock()
			out[key] = rs
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// statesParallel bounds the inspections Inspect has in flight.
const statesParallel = 16
