package drill

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/workload"
)

// Driver takes a region away and brings it back. The drill calls Lose,
// then Held once during the outage, then Restore; none concurrently.
type Driver interface {
	// Name names the driver in reports ("fence", "process").
	Name() string
	// Lose takes the region away and returns the moment of loss: from it
	// on, the region receives nothing from the other regions.
	Lose(ctx context.Context) (time.Time, error)
	// Held returns what the lost region's replicas held of keys at the
	// moment of loss: key → the region's replicas' states. The drill
	// computes the RPO from it.
	Held(ctx context.Context, keys []string) (map[string][]api.ReplicaState, error)
	// Restore brings the region back.
	Restore(ctx context.Context) error
}

// Dialer makes a client of a configuration; nil means client.Dial.
type Dialer func(cfg *client.Config) (*client.Client, error)

func (d Dialer) dial(cfg *client.Config) (*client.Client, error) {
	if d == nil {
		return client.Dial(context.Background(), cfg)
	}
	return d(cfg)
}

// Fence is the driver for clusters the drill cannot touch otherwise: it
// sends every node of the client configuration a fence of the region
// (api.FenceRequest), the region's own nodes first, and lifts it to
// restore. The fence lifts by itself after Down plus Margin if the drill
// dies.
//
// While fenced, the region's replicas receive nothing, so Held inspects
// them through the region's own nodes (which still serve admin requests)
// and reads what they held at the loss.
type Fence struct {
	cfg    *client.Config
	region string
	dial   Dialer
	// For is how long each fence lasts at most (set by Run: Down plus a
	// margin); the drill lifts it earlier.
	For time.Duration

	mu     sync.Mutex
	admin  *client.Client // sends the fences
	inside *client.Client // talks to the region's nodes only
}

// NewFence returns the fence driver of region over the nodes of cfg.
func NewFence(cfg *client.Config, region string, dial Dialer) *Fence {
	return &Fence{cfg: cfg, region: region, dial: dial, For: 10 * time.Minute}
}

// Name is "fence".
func (f *Fence) Name() string { return "fence" }

func (f *Fence) clients() (*client.Client, *client.Client, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.admin == nil {
		c, err := f.dial.dial(f.cfg)
		if err != nil {
			return nil, nil, err
		}
		f.admin = c
	}
	if f.inside == nil {
		in := *f.cfg
		in.DC, in.Regions, in.Nodes = f.region, nil, nil
		for _, n := range f.cfg.Nodes {
			if n.DC == f.region {
				in.Nodes = append(in.Nodes, n)
			}
		}
		if len(in.Nodes) == 0 {
			return nil, nil, fmt.Errorf("drill: the client configuration lists no node of region %q", f.region)
		}
		c, err := f.dial.dial(&in)
		if err != nil {
			return nil, nil, err
		}
		f.inside = c
	}
	return f.admin, f.inside, nil
}

// fenceAll sends the fence (region "" lifts it) to the nodes of the
// region (inRegion) or of the others, concurrently.
func (f *Fence) fenceAll(ctx context.Context, region string, d time.Duration, inRegion bool) error {
	admin, _, err := f.clients()
	if err != nil {
		return err
	}
	var g errgroup.Group
	for _, n := range f.cfg.Nodes {
		if (n.DC == f.region) != inRegion {
			continue
		}
		g.Go(func() error {
			_, err := admin.Fence(ctx, n, region, d)
			return err
		})
	}
	return g.Wait()
}

// Lose fences the region's nodes off from every other region, then every
// other node off from the region. The moment of loss is when the last of
// the region's nodes confirmed: from then on it takes nothing in.
func (f *Fence) Lose(ctx context.Context) (time.Time, error) {
	if err := f.fenceAll(ctx, f.region, f.For, true); err != nil {
		return time.Time{}, fmt.Errorf("drill: fencing region %s: %w", f.region, err)
	}
	at := time.Now()
	if err := f.fenceAll(ctx, f.region, f.For, false); err != nil {
		return at, fmt.Errorf("drill: fencing region %s off the other regions: %w", f.region, err)
	}
	return at, nil
}

// Restore lifts the fence everywhere, the other regions first.
func (f *Fence) Restore(ctx context.Context) error {
	err1 := f.fenceAll(ctx, "", 0, false)
	err2 := f.fenceAll(ctx, "", 0, true)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("drill: lifting the fence (it lifts by itself after %v): %w", f.For, joinErr(err1, err2))
	}
	return nil
}

// Held inspects keys through the region's nodes.
func (f *Fence) Held(ctx context.Context, keys []string) (map[string][]api.ReplicaState, error) {
	_, inside, err := f.clients()
	if err != nil {
		return nil, err
	}
	return inspectRegion(ctx, inside, f.cfg.Keyspace, f.region, keys)
}

// Close closes the driver's clients.
func (f *Fence) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range []*client.Client{f.admin, f.inside} {
		if c != nil {
			c.Close()
		}
	}
	return nil
}

// inspectRegion inspects keys through c and keeps the states of region's
// replicas; a replica of region that could not answer is an error.
func inspectRegion(ctx context.Context, c *client.Client, keyspace, region string, keys []string) (map[string][]api.ReplicaState, error) {
	out, err := workload.Inspect(ctx, c, keyspace, keys, func(r api.ReplicaState) bool { return r.DC == region })
	if err != nil {
		return nil, fmt.Errorf("drill: in %s: %w", region, err)
	}
	return out, nil
}

func joinErr(errs ...error) error { return errors.Join(errs...) }
