package drill

import (
	"testing"
	"time"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/history"
	"github.com/meridian-kv/meridian/version"
)

func TestComputeRPO(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	put := func(key, value string, end float64, saw ...string) history.Op {
		return history.Op{Kind: history.Put, Key: key, Value: value, Saw: saw, Start: at(end - 0.01), End: at(end), Outcome: history.OK}
	}
	del := func(key string, end float64, saw ...string) history.Op {
		return history.Op{Kind: history.Delete, Key: key, Saw: saw, Start: at(end - 0.01), End: at(end), Outcome: history.OK}
	}
	loss := at(10)
	ops := []history.Op{
		put("a", "a1", 1),       // held as it is
		put("b", "b1", 2),       // superseded by b2, held
		put("b", "b2", 3, "b1"), //
		put("c", "c1", 4),       // superseded by c2 then c3; c3 held
		put("c", "c2", 5, "c1"), //
		put("c", "c3", 6, "c2"), //
		put("d", "d1", 5),       // deleted, tombstone held
		del("d", 6, "d1"),       //
		put("e", "e1", 8),       // missing: not held
		put("f", "f1", 9.5),     // missing: the region has an older sibling only
		put("f", "f0", 0.5),     // held
		put("g", "g1", 11),      // acknowledged after the loss: not counted
		{Kind: history.Put, Key: "h", Value: "h1", End: at(2), Outcome: history.Unknown}, // not acknowledged
	}
	held := map[string][]api.ReplicaState{
		"a": {{Node: "w1", Values: []string{"a1"}}, {Node: "w2", Values: []string{}}},
		"b": {{Node: "w1", Values: []string{"b2"}}},
		"c": {{Node: "w2", Values: []string{"c3"}}},
		"d": {{Node: "w1", Values: []string{}, Deleted: true}},
		"e": {{Node: "w1", Values: []string{}}},
		"f": {{Node: "w1", Values: []string{"f0"}}},
	}
	r := ComputeRPO(ops, held, loss)
	if r.Writes != 2 || r.Checked != 10 {
		t.Fatalf("RPO %+v, want 2 missing of 10 acknowledged before the loss (e1, f1)", r)
	}
	if r.Oldest == nil || r.Oldest.Value != "e1" || r.Seconds != 2 {
		t.Fatalf("oldest missing %+v, %v s; want e1, 2 s before the loss", r.Oldest, r.Seconds)
	}
	if r := ComputeRPO(ops[:8], held, loss); r.Writes != 0 || r.Seconds != 0 {
		t.Fatalf("everything held: RPO %+v, want 0", r)
	}
}

// With the write's context and coordinator recorded, the replicas' version
// vectors decide: a put superseded through a read that saw only a
// tombstone (no value names it) is held, and one whose dot no replica's
// vector covers is not, whatever the values.
func TestComputeRPOByDot(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ctx := func(v version.Vector) string { return version.EncodeContext(v) }
	ops := []history.Op{
		{Kind: history.Put, Key: "k", Value: "k1", End: t0.Add(time.Second), Outcome: history.OK, Coordinator: "east-1", Context: ctx(version.Vector{"east-1@a": 5, "west-1@b": 2})},
		{Kind: history.Put, Key: "j", Value: "j1", End: t0.Add(2 * time.Second), Outcome: history.OK, Coordinator: "east-2", Context: ctx(version.Vector{"east-2@c": 3})},
	}
	held := map[string][]api.ReplicaState{
		"k": {{Node: "west-1", Values: []string{"k3"}, Version: map[string]uint64{"east-1@a": 6, "west-1@b": 2}}},
		"j": {{Node: "west-1", Values: []string{"j1"}, Version: map[string]uint64{"east-2@c": 2}}},
	}
	r := ComputeRPO(ops, held, t0.Add(3*time.Second))
	if r.Writes != 1 || r.Oldest == nil || r.Oldest.Value != "j1" || r.Seconds != 1 {
		t.Fatalf("RPO %+v (oldest %+v), want j1 missing, 1 s before the loss", r, r.Oldest)
	}
}
