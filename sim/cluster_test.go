package sim_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meridian-kv/meridian/sim"
)

func TestClusterPutGet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := sim.NewCluster(sim.Options{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.WaitConverged(time.Minute); err != nil {
			t.Fatal(err)
		}
		t.Logf("converged at %v", time.Now())
		cl, err := c.Client("east")
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if _, err := cl.Put(ctx, []byte("k"), []byte("v"), nil); err != nil {
			t.Fatal(err)
		}
		got, err := cl.Get(ctx, []byte("k"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("got %+v at %v; net %+v", got, time.Now(), c.Net.Stats())
	})
}
