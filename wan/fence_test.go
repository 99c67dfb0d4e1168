package wan

import (
	"errors"
	"testing"
	"time"
)

// A fence cuts both directions: the fencing side's calls fail unsent, and
// the fenced side's connection is closed and refused, so its calls fail
// too; lifting it restores both.
func TestFenceCutsBothWays(t *testing.T) {
	srv, cli, _ := pair(t, echoHandler)
	ctx := testCtx(t)
	if _, err := echo(ctx, cli, srv.Addr().String(), "node-1", 1); err != nil {
		t.Fatal(err)
	}
	// cli calls srv on a connection it dialled; srv fences cli off.
	srv.SetFence([]string{"node-2"})
	if got := srv.Fenced(); len(got) != 1 || got[0] != "node-2" {
		t.Fatalf("Fenced() = %v", got)
	}
	for i := range 3 {
		_, err := echo(ctx, cli, srv.Addr().String(), "node-1", 1)
		if err == nil {
			t.Fatalf("call %d from a fenced node was served", i)
		}
	}
	if _, err := echo(ctx, srv, cli.Addr().String(), "node-2", 1); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("call to a fenced node: %v, want ErrUnreachable", err)
	}
	srv.SetFence(nil)
	eventually(t, 10*time.Second, "calls served again", func() error {
		_, err := echo(ctx, cli, srv.Addr().String(), "node-1", 1)
		return err
	})
	if _, err := echo(ctx, srv, cli.Addr().String(), "node-2", 1); err != nil {
		t.Fatalf("call after the fence was lifted: %v", err)
	}
}
