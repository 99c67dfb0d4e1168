package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/bench"
	"github.com/meridian-kv/meridian/wan"
)

// calibrate measures this machine's ceilings for the two building blocks
// of a Meridian request, at the sweep's thread counts: a synced Pebble
// write (what a replica waits for before it acknowledges) and a QUIC
// request/response of the client protocol's real messages (a put carrying
// the value, a get answered with it), with no node logic behind either.
// causal is a context the cluster returned, so replies carry one of the
// real size. Pebble writes under parent ("" = the temporary directory),
// which should be on the nodes' file system.
func calibrate(ctx context.Context, f *benchFlags, status *statusLine, parent, causal string) ([]bench.Ceiling, error) {
	var out []bench.Ceiling
	dir, err := os.MkdirTemp(parent, "calibrate-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	db, err := pebble.Open(dir, calibrationPebbleOptions())
	if err != nil {
		return nil, fmt.Errorf("calibration: opening pebble: %w", err)
	}
	defer db.Close()
	records := max(f.records, 1)
	wgen, err := bench.NewGenerator(bench.Spec{Workload: bench.WorkloadWrite, Records: records, ValueSize: f.valueSize})
	if err != nil {
		return nil, err
	}
	for _, t := range f.threads {
		status.note(fmt.Sprintf("calibrating: pebble synced writes, %d writers, %v", t, f.calibDur))
		res, err := bench.Run(ctx, pebbleDriver{db}, wgen, bench.RunOptions{Threads: t, Duration: f.calibDur, Seed: f.seed})
		if err != nil {
			return nil, err
		}
		if res.Errors > 0 {
			return nil, fmt.Errorf("calibration: pebble: %s", res.PerOp[0].FirstError)
		}
		out = append(out, ceiling("pebble-sync", fmt.Sprintf("Pebble Set with Sync, %d-byte values", f.valueSize), res))
	}

	q, err := newQUICLoop(f.valueSize, causal)
	if err != nil {
		return nil, err
	}
	defer q.close()
	agen, err := bench.NewGenerator(bench.Spec{Workload: bench.WorkloadA, Records: records, ValueSize: f.valueSize})
	if err != nil {
		return nil, err
	}
	for _, t := range f.threads {
		status.note(fmt.Sprintf("calibrating: QUIC request/response, %d in flight, %v", t, f.calibDur))
		res, err := bench.Run(ctx, q, agen, bench.RunOptions{Threads: t, Duration: f.calibDur, Seed: f.seed})
		if err != nil {
			return nil, err
		}
		if res.Errors > 0 {
			return nil, fmt.Errorf("calibration: quic: %s", res.PerOp[0].FirstError)
		}
		out = append(out, ceiling("quic-rr", fmt.Sprintf("QUIC request/response over wan (YCSB-A messages, %d-byte values)", f.valueSize), res))
	}
	return out, nil
}

func ceiling(name, desc string, res *bench.Result) bench.Ceiling {
	c := bench.Ceiling{Name: name, Description: desc, Threads: res.Threads, OpsPerSec: res.OpsPerSec}
	for _, o := range res.PerOp {
		c.P50Ms = max(c.P50Ms, o.P50Ms)
		c.P99Ms = max(c.P99Ms, o.P99Ms)
	}
	return c
}

// calibrationPebbleOptions mirror the store's Pebble settings that bear on
// writes (store's options are internal to it): 8 MiB memtables, 4 of them
// before writes stall, L0 stop at 24, the table format and bloom filters.
func calibrationPebbleOptions() *pebble.Options {
	po := &pebble.Options{
		FormatMajorVersion:          pebble.FormatTableFormatV6,
		MemTableSize:                8 << 20,
		MemTableStopWritesThreshold: 4,
		L0StopWritesThreshold:       24,
		CompactionConcurrencyRange:  func() (int, int) { return 1, 2 },
		Logger:                      quietPebbleLogger{},
	}
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		po.Levels[i].FilterType = pebble.TableFilter
	}
	return po
}

type quietPebbleLogger struct{}

func (quietPebbleLogger) Infof(string, ...any)  {}
func (quietPebbleLogger) Errorf(string, ...any) {}
func (quietPebbleLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

// pebbleDriver writes straight into Pebble, syncing every write.
type pebbleDriver struct{ db *pebble.DB }

func (p pebbleDriver) Read(_ context.Context, key []byte, _ string) error {
	_, closer, err := p.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return closer.Close()
}

func (p pebbleDriver) Update(_ context.Context, key, value []byte, _ string) error {
	return p.db.Set(key, value, pebble.Sync)
}

func (p pebbleDriver) ReadModifyWrite(ctx context.Context, key, value []byte, c string) error {
	if err := p.Read(ctx, key, c); err != nil {
		return err
	}
	return p.Update(ctx, key, value, c)
}

// quicLoop is a wan transport answering the client protocol's get and put
// with canned replies of the real sizes, and a client dialer calling it.
type quicLoop struct {
	server *wan.Transport
	dialer *wan.Dialer
	addr   string
}

const calibrationNode = "calibration-node"

func newQUICLoop(valueSize int, causal string) (*quicLoop, error) {
	now := time.Now()
	ca, _, err := wan.NewCA("meridian-bench-calibration", now, time.Hour)
	if err != nil {
		return nil, err
	}
	creds := func(name string, role wan.Role, hosts []string) (*wan.Credentials, error) {
		cert, key, err := ca.Issue(name, role, hosts, now, time.Hour)
		if err != nil {
			return nil, err
		}
		return wan.NewCredentials(ca.CertPEM, cert, key, now)
	}
	nodeCreds, err := creds(calibrationNode, wan.RoleNode, []string{"127.0.0.1"})
	if err != nil {
		return nil, err
	}
	clientCreds, err := creds("calibration-client", wan.RoleClient, nil)
	if err != nil {
		return nil, err
	}
	value := make([]byte, valueSize)
	getReply, err := wan.NewEnvelope(api.TypeGetReply, &api.GetResponse{
		Siblings: []api.Sibling{{Value: value, Writer: "east-1.1:1"}}, Context: causal, Acked: map[string]int{"east": 2},
	})
	if err != nil {
		return nil, err
	}
	putReply, err := wan.NewEnvelope(api.TypePutReply, &api.PutResponse{
		Context: causal, Siblings: 1, Acked: map[string]int{"east": 2}, Coordinator: "east-1",
	})
	if err != nil {
		return nil, err
	}
	h := wan.HandlerFunc(func(_ context.Context, _ wan.Identity, req *wan.Envelope, reply wan.Replier) {
		switch req.Type {
		case api.TypeGet:
			var r api.GetRequest
			if err := req.Decode(&r); err != nil {
				reply.SendError(api.CodeBadRequest, err.Error())
				return
			}
			reply.Send(getReply)
		case api.TypePut:
			var r api.PutRequest
			if err := req.Decode(&r); err != nil {
				reply.SendError(api.CodeBadRequest, err.Error())
				return
			}
			reply.Send(putReply)
		}
	})
	server, err := wan.Listen(wan.Config{
		Credentials: nodeCreds, ListenAddr: "127.0.0.1:0", ClientRequestsPerSecond: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, h)
	if err != nil {
		return nil, err
	}
	dialer, err := wan.NewDialer(clientCreds, nil)
	if err != nil {
		server.Close()
		return nil, err
	}
	return &quicLoop{server: server, dialer: dialer, addr: server.Addr().String()}, nil
}

func (q *quicLoop) close() {
	q.dialer.Close()
	q.server.Close()
}

func (q *quicLoop) call(ctx context.Context, t wan.MsgType, req any, replyType wan.MsgType, res any) error {
	env, err := wan.NewEnvelope(t, req)
	if err != nil {
		return err
	}
	return q.dialer.Call(ctx, q.addr, calibrationNode, env, func(e *wan.Envelope) error {
		if e.Type != replyType {
			return fmt.Errorf("calibration: reply of type %d, want %d", e.Type, replyType)
		}
		return e.Decode(res)
	})
}

func (q *quicLoop) Read(ctx context.Context, key []byte, c string) error {
	var res api.GetResponse
	return q.call(ctx, api.TypeGet, &api.GetRequest{Keyspace: "default", Key: key, Consistency: c}, api.TypeGetReply, &res)
}

func (q *quicLoop) Update(ctx context.Context, key, value []byte, c string) error {
	var res api.PutResponse
	return q.call(ctx, api.TypePut, &api.PutRequest{Keyspace: "default", Key: key, Value: value, Consistency: c}, api.TypePutReply, &res)
}

func (q *quicLoop) ReadModifyWrite(ctx context.Context, key, value []byte, c string) error {
	if err := q.Read(ctx, key, c); err != nil {
		return err
	}
	return q.Update(ctx, key, value, c)
}
