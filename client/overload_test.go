package client

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meridian-kv/meridian/wan"
)

// A node that refuses a request as overloaded (the client's principal over
// its request rate) did not execute it: the client sends it to the next
// node, and when every node refuses, fails with ErrOverloaded, not with
// ErrOutcomeUnknown — a put refused everywhere was applied nowhere.
func TestOverloadedRefusalGoesToTheNextNode(t *testing.T) {
	p := newPKI(t)
	// One request each, then none for 1000 s.
	limited := func(c *wan.Config) { c.ClientRequestsPerSecond, c.ClientRequestBurst = 0.001, 1 }
	a := startNode(t, p, "east-1", false, limited)
	b := startNode(t, p, "east-2", false, limited)
	c := dialT(t, p, Config{DC: "east", Nodes: []Node{
		{ID: "east-1", DC: "east", Addr: a.tr.Addr().String()},
		{ID: "east-2", DC: "east", Addr: b.tr.Addr().String()},
	}, Timeout: 10 * time.Second})

	for i := range 2 {
		if _, err := c.Put(context.Background(), []byte("k"), []byte("v"), nil); err != nil {
			t.Fatalf("put %d: %v", i+1, err)
		}
	}
	if a.puts.Load() != 1 || b.puts.Load() != 1 {
		t.Fatalf("puts reached east-1 %d and east-2 %d times, want once each", a.puts.Load(), b.puts.Load())
	}
	_, err := c.Put(context.Background(), []byte("k"), []byte("v"), nil)
	if !errors.Is(err, ErrOverloaded) || errors.Is(err, ErrOutcomeUnknown) || !strings.Contains(err.Error(), "rate limit") {
		t.Fatalf("put refused by every node: %v, want ErrOverloaded naming the rate limit", err)
	}
	if got := a.puts.Load() + b.puts.Load(); got != 2 {
		t.Fatalf("the refused put reached a handler: %d puts", got)
	}
}

// A refusal as overloaded is retried after a pause when every node
// refused: a put refused by the only node's rate limit succeeds once its
// bucket has a token again (one every 100ms here; the client's pauses add
// up to 350ms).
func TestOverloadedRefusalIsRetriedAfterAPause(t *testing.T) {
	p := newPKI(t)
	a := startNode(t, p, "east-1", false, func(c *wan.Config) { c.ClientRequestsPerSecond, c.ClientRequestBurst = 10, 1 })
	c := dialT(t, p, Config{DC: "east", Nodes: []Node{{ID: "east-1", DC: "east", Addr: a.tr.Addr().String()}}, Timeout: 10 * time.Second})
	for i := range 3 {
		if _, err := c.Put(context.Background(), []byte("k"), []byte("v"), nil); err != nil {
			t.Fatalf("put %d: %v", i+1, err)
		}
	}
	if got := a.puts.Load(); got != 3 {
		t.Fatalf("%d puts reached the node, want 3", got)
	}
}
