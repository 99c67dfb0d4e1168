// Package walsync lets tests act on the syncs of Pebble's write-ahead log:
// hold one while a write is in flight (Gate), count them, or fail them.
package walsync

import (
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// OnSync wraps fs so that every sync of a write-ahead log file (*.log)
// first calls at, and fails with its error if it returns one.
func OnSync(fs vfs.FS, at func() error) vfs.FS {
	return errorfs.Wrap(fs, errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			if strings.HasSuffix(op.Path, ".log") {
				return at()
			}
		}
		return nil
	}))
}

// Gate holds the next log sync once Hold is called: the held sync hands
// Held a channel, and goes on when that channel is closed. Pass its Wait
// to OnSync.
type Gate struct {
	mu   sync.Mutex
	hold bool
	held chan chan struct{}
}

// NewGate returns a gate that holds nothing until Hold.
func NewGate() *Gate { return &Gate{held: make(chan chan struct{}, 1)} }

// Hold makes the gate hold the next sync (one sync).
func (g *Gate) Hold() {
	g.mu.Lock()
	g.hold = true
	g.mu.Unlock()
}

// Held delivers the release channel of the held sync once it is out.
func (g *Gate) Held() <-chan chan struct{} { return g.held }

// Wait is the gate's OnSync callback: it holds the sync if Hold asked for
// it, until the test closes the channel Held delivered.
func (g *Gate) Wait() error {
	g.mu.Lock()
	hold := g.hold
	g.hold = false
	g.mu.Unlock()
	if hold {
		release := make(chan struct{})
		g.held <- release
		<-release
	}
	return nil
}
