package node

import (
	"context"
	"sync/atomic"
	"time"
)

// jobContexts hands background jobs their context: bounded by the request
// timeout and cancelled when the node closes. A context with a deadline of
// its own per job cost a timer and a registration with the node's context
// for every replica write, digest read and batch, the largest source of
// allocations left on the request path. Jobs starting within one slice of
// time (a twentieth of the timeout, at most 50 ms) share one instead: each
// gets at least the full timeout and at most one slice more. A job that
// must end sooner derives a context of its own.
type jobContexts struct {
	parent  context.Context
	timeout time.Duration
	now     func() time.Time
	cur     atomic.Pointer[jobEpoch]
}

// jobEpoch is the context of the jobs starting before until.
type jobEpoch struct {
	ctx   context.Context
	until time.Time
	// cancel is never called: the context ends at its deadline or with
	// its parent. It is kept to say so (and for go vet).
	cancel context.CancelFunc
}

func newJobContexts(parent context.Context, timeout time.Duration, now func() time.Time) *jobContexts {
	return &jobContexts{parent: parent, timeout: timeout, now: now}
}

// slice is how long one context is handed out.
func (j *jobContexts) slice() time.Duration {
	return min(j.timeout/20, 50*time.Millisecond)
}

// get returns the context of a job starting now.
func (j *jobContexts) get() context.Context {
	now := j.now()
	if e := j.cur.Load(); e != nil && now.Before(e.until) {
		return e.ctx
	}
	slice := j.slice()
	ctx, cancel := context.WithDeadline(j.parent, now.Add(j.timeout+slice))
	// Racing callers may each install one; every job still gets the
	// context of a slice it started in.
	j.cur.Store(&jobEpoch{ctx: ctx, until: now.Add(slice), cancel: cancel})
	return ctx
}
