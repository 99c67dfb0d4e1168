package store

import "sync/atomic"

// gate counts the calls using the Pebble DB so that Close can wait for
// them, without the nested-read-lock deadlock of a sync.RWMutex: a Scan
// whose fn calls Update (repair does) must not hang because a Close is
// waiting. Entering a closed gate fails instead of blocking.
type gate struct {
	// state is closedBit | number of calls inside.
	state atomic.Int64
	// drained receives a token when the last call leaves a closed gate.
	drained chan struct{}
}

const closedBit = int64(1) << 62

func newGate() *gate { return &gate{drained: make(chan struct{}, 1)} }

// enter reports whether the gate is open; if so the caller must leave.
func (g *gate) enter() bool {
	if g.state.Add(1)&closedBit != 0 {
		g.leave()
		return false
	}
	return true
}

func (g *gate) leave() {
	if g.state.Add(-1) == closedBit {
		select {
		case g.drained <- struct{}{}:
		default:
		}
	}
}

// close closes the gate and waits until every call inside has left. It
// reports false if the gate was already closed.
func (g *gate) close() bool {
	old := g.state.Or(closedBit)
	if old&closedBit != 0 {
		return false
	}
	if old != 0 {
		<-g.drained
	}
	return true
}
