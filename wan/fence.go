package wan

import (
	"fmt"
	"maps"
	"slices"
	"sync/atomic"

	"github.com/quic-go/quic-go"
)

// codeFenced closes a connection from a fenced node.
const codeFenced quic.ApplicationErrorCode = 0x104

// Fence is the set of nodes, by certificate name, a Transport exchanges no
// traffic with, as if the network between them were cut: calls to them
// fail with ErrUnreachable before anything is sent, their connections are
// closed and refused, and no stream of theirs is served. A failover drill
// fences a region off this way (see package node). The zero value fences
// no one; it is safe for concurrent use.
type Fence struct {
	names atomic.Pointer[map[string]bool]
}

// Has reports whether the node named name is fenced off. A nil Fence
// fences no one.
func (f *Fence) Has(name string) bool {
	if f == nil {
		return false
	}
	m := f.names.Load()
	return m != nil && (*m)[name]
}

// Names returns the fenced names, sorted.
func (f *Fence) Names() []string {
	if f == nil {
		return nil
	}
	m := f.names.Load()
	if m == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(*m))
}

// set replaces the fenced names.
func (f *Fence) set(names []string) {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	f.names.Store(&m)
}

// errFenced is the failure of a call to a fenced node.
func errFenced(name, addr string) error {
	return fmt.Errorf("%w: %s (%s) is fenced off", ErrUnreachable, name, addr)
}

// SetFence fences off the nodes named (none: lifts the fence) and closes
// every connection, dialled or accepted, with a node now fenced. Calls in
// flight to them fail as their connection does.
func (t *Transport) SetFence(names []string) {
	t.fence.set(names)
	t.pool.dropFenced(&t.fence)
	t.mu.Lock()
	var drop []*quic.Conn
	for c, from := range t.connIDs {
		if from.Role == RoleNode && t.fence.Has(from.Name) {
			drop = append(drop, c)
		}
	}
	t.mu.Unlock()
	for _, c := range drop {
		c.CloseWithError(codeFenced, "fenced off")
	}
}

// Fenced returns the names of the nodes fenced off, sorted.
func (t *Transport) Fenced() []string { return t.fence.Names() }

// dropFenced closes the pooled connections to fenced nodes.
func (p *pool) dropFenced(f *Fence) {
	p.mu.Lock()
	var drop []*quic.Conn
	for _, pe := range p.peers {
		if pe.conn != nil && f.Has(pe.id.Name) {
			drop = append(drop, pe.conn)
			pe.conn = nil
		}
	}
	p.mu.Unlock()
	for _, c := range drop {
		c.CloseWithError(codeFenced, "fenced off")
	}
}
