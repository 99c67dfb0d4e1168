package repair

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/meridian-kv/meridian/version"
)

// countingPeer is a fake remote replica: it answers from a tree and counts
// what crossed the "network".
type countingPeer struct {
	tree   *Tree
	rounds int
	hashes int
	err    error // returned from Level when set
}

func (p *countingPeer) Level(ctx context.Context, level int, indexes []int) ([][]byte, error) {
	if p.err != nil {
		return nil, p.err
	}
	p.rounds++
	hs, err := p.tree.Level(ctx, level, indexes)
	p.hashes += len(hs)
	return hs, err
}

// divergedPair returns two sources of n shared keys where k keys of b were
// changed (updated, deleted, dropped or added).
func divergedPair(rng *rand.Rand, n, k int) (a, b *memSource) {
	a = newMemSource()
	populate(rng, a, n)
	b = a.clone()
	for changed := 0; changed < k; {
		if mutate(rng, b, "b") {
			changed++
		}
	}
	return a, b
}

// TestDiffCostFollowsDifferences: the hashes a comparison exchanges grow
// with the number of differing leaves times the depth, not with the size
// of the tree; identical trees cost one hash.
func TestDiffCostFollowsDifferences(t *testing.T) {
	const n, depth = 20_000, 14
	forSeeds(t, 3, func(t *testing.T, rng *rand.Rand) {
		for _, k := range []int{0, 1, 10, 60} {
			a, b := divergedPair(rng, n, k)
			ta, err := BuildTree(a, "ks", FullRing, depth)
			if err != nil {
				t.Fatal(err)
			}
			tb, err := BuildTree(b, "ks", FullRing, depth)
			if err != nil {
				t.Fatal(err)
			}
			peer := &countingPeer{tree: tb}
			leaves, stats, err := DiffWithPeer(context.Background(), ta, peer)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := Diff(tb, ta)
			if !slices.Equal(leaves, want) {
				t.Fatalf("k=%d: DiffWithPeer = %v, Diff the other way = %v", k, leaves, want)
			}
			if stats.HashesReceived != peer.hashes || stats.Rounds != peer.rounds {
				t.Fatalf("stats %+v disagree with the peer's count (%d hashes, %d rounds)", stats, peer.hashes, peer.rounds)
			}
			d := len(leaves)
			if k == 0 {
				if d != 0 || stats.HashesReceived != 1 || stats.Rounds != 1 {
					t.Fatalf("identical trees: %d leaves, %+v; want 0 leaves, 1 hash, 1 round", d, stats)
				}
				continue
			}
			if d == 0 || d > k {
				t.Fatalf("k=%d changed keys gave %d differing leaves", k, d)
			}
			// Every level asks for both children of each differing node:
			// at most 2·d per level below the root.
			if bound := 1 + 2*d*depth; stats.HashesReceived > bound {
				t.Fatalf("k=%d: %d hashes exchanged, more than 1+2·%d·%d = %d", k, stats.HashesReceived, d, depth, bound)
			}
			if stats.HashesReceived < 1+2*depth {
				t.Fatalf("k=%d: %d hashes, fewer than one root-to-leaf path", k, stats.HashesReceived)
			}
			if stats.Rounds != depth+1 {
				t.Fatalf("k=%d: %d rounds, want %d", k, stats.Rounds, depth+1)
			}
			t.Logf("k=%d: %d differing leaves of %d, %d hashes (%d bytes) in %d rounds",
				k, d, ta.Leaves(), stats.HashesReceived, stats.Bytes, stats.Rounds)

			// A larger stride finds the same leaves in fewer rounds.
			sl, ss, err := DiffWithPeerStride(context.Background(), ta, &countingPeer{tree: tb}, 4)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(sl, leaves) {
				t.Fatalf("stride 4 found %v, stride 1 %v", sl, leaves)
			}
			if wantRounds := 1 + (depth+3)/4; ss.Rounds != wantRounds {
				t.Fatalf("stride 4: %d rounds, want %d", ss.Rounds, wantRounds)
			}
		}
	})
}

func TestDifferRejectsBadAnswers(t *testing.T) {
	tr, _ := NewTree("ks", FullRing, 3)
	for _, tc := range []struct {
		name   string
		answer [][]byte
	}{
		{"too few hashes", nil},
		{"too many hashes", [][]byte{make([]byte, HashSize), make([]byte, HashSize)}},
		{"short hash", [][]byte{make([]byte, HashSize-1)}},
		{"long hash", [][]byte{make([]byte, HashSize+1)}},
	} {
		d := NewDiffer(tr, 1)
		if err := d.Receive(tc.answer); !errors.Is(err, ErrPeerProtocol) {
			t.Errorf("%s: %v, want ErrPeerProtocol", tc.name, err)
		}
	}
	d := NewDiffer(tr, 1)
	root := tr.Root()
	if err := d.Receive([][]byte{root[:]}); err != nil || !d.Done() {
		t.Fatalf("equal root: err %v, done %v", err, d.Done())
	}
	if leaves := d.Leaves(); len(leaves) != 0 {
		t.Fatalf("equal trees differ in %v", leaves)
	}
	if err := d.Receive([][]byte{root[:]}); !errors.Is(err, ErrPeerProtocol) {
		t.Fatalf("answer after done: %v", err)
	}
}

func TestDiffWithPeerErrors(t *testing.T) {
	tr, _ := NewTree("ks", FullRing, 3)
	boom := errors.New("stream reset")
	if _, _, err := DiffWithPeer(context.Background(), tr, &countingPeer{err: boom}); !errors.Is(err, boom) {
		t.Errorf("peer error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := DiffWithPeer(ctx, tr, &countingPeer{tree: tr}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	other, _ := NewTree("ks", FullRing, 4)
	if _, err := Diff(tr, other); !errors.Is(err, ErrMismatch) {
		t.Errorf("different depths: %v", err)
	}
	other, _ = NewTree("ks2", FullRing, 3)
	if _, err := Diff(tr, other); !errors.Is(err, ErrMismatch) {
		t.Errorf("different keyspaces: %v", err)
	}
}

// ExampleDiffWithPeer compares two replicas' trees and lists the keys
// under the leaves that differ.
func ExampleDiffWithPeer() {
	local, remote := newMemSource(), newMemSource()
	for i := range 1000 {
		o := version.New().Update(nil, "n1", version.Write{Value: []byte("v")})
		local.set(fmt.Sprint("key", i), o)
		remote.set(fmt.Sprint("key", i), o)
	}
	remote.set("key7", nil) // the remote replica missed one write

	depth := DepthFor(1000)
	lt, _ := BuildTree(local, "users", FullRing, depth)
	rt, _ := BuildTree(remote, "users", FullRing, depth) // on the peer
	leaves, stats, _ := DiffWithPeer(context.Background(), lt, rt)
	keys, _ := KeysInLeaves(local, "users", FullRing, depth, leaves)
	fmt.Println(len(leaves), "leaf differs;", stats.HashesReceived, "hashes exchanged")
	_, has := keys["key7"]
	fmt.Println("key7 under it:", has)
	// Output:
	// 1 leaf differs; 19 hashes exchanged
	// key7 under it: true
}
