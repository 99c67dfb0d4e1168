package history

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	put := func(key, val string, out Outcome, saw ...string) Op {
		return Op{Kind: Put, Key: key, Value: val, Saw: saw, Outcome: out}
	}
	del := func(key string, out Outcome, saw ...string) Op {
		return Op{Kind: Delete, Key: key, Saw: saw, Outcome: out}
	}
	tests := []struct {
		name                        string
		ops                         []Op
		state                       State
		lost, resurrected, phantoms int
	}{
		{"acked put present", []Op{put("k", "a", OK)}, State{"k": {"a"}}, 0, 0, 0},
		{"acked put missing", []Op{put("k", "a", OK)}, State{}, 1, 0, 0},
		{"superseded by an acked write that saw it", []Op{put("k", "a", OK), put("k", "b", OK, "a")}, State{"k": {"b"}}, 0, 0, 0},
		{"superseded by a write of unknown outcome", []Op{put("k", "a", OK), put("k", "b", Unknown, "a")}, State{"k": {"b"}}, 0, 0, 0},
		{"a failed write supersedes nothing", []Op{put("k", "a", OK), put("k", "b", Fail, "a")}, State{}, 1, 0, 0},
		{"a write on another key supersedes nothing", []Op{put("k", "a", OK), put("j", "b", OK, "a")}, State{"j": {"b"}}, 1, 0, 0},
		{"unknown put may vanish", []Op{put("k", "a", Unknown)}, State{}, 0, 0, 0},
		{"unknown put may survive", []Op{put("k", "a", Unknown)}, State{"k": {"a"}}, 0, 0, 0},
		{"deleted value stays deleted", []Op{put("k", "a", OK), del("k", OK, "a")}, State{}, 0, 0, 0},
		{"resurrection", []Op{put("k", "a", OK), del("k", OK, "a")}, State{"k": {"a"}}, 0, 1, 0},
		{"a write concurrent with a delete survives", []Op{put("k", "a", OK), del("k", OK, "a"), put("k", "c", OK)}, State{"k": {"c"}}, 0, 0, 0},
		{"phantom", []Op{put("k", "a", OK)}, State{"k": {"a", "zz"}}, 0, 0, 1},
		{"phantom read", []Op{put("k", "a", OK), {Kind: Read, Key: "k", Read: []string{"q"}, Outcome: OK}}, State{"k": {"a"}}, 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Check(tt.ops, map[string]State{"r1": tt.state})
			if len(rep.Lost) != tt.lost || len(rep.Resurrected) != tt.resurrected || len(rep.Phantoms) != tt.phantoms {
				t.Fatalf("got %s", rep)
			}
			if rep.OK() != (tt.lost+tt.resurrected+tt.phantoms == 0) {
				t.Fatalf("OK() = %v for %s", rep.OK(), rep)
			}
		})
	}
}

func TestCheckNamesTheReplica(t *testing.T) {
	ops := []Op{{Kind: Put, Key: "k", Value: "a", Outcome: OK}}
	rep := Check(ops, map[string]State{"east-1": {"k": {"a"}}, "west-2": {}})
	if len(rep.Lost) != 1 || rep.Lost[0].Where != "west-2" || !strings.Contains(rep.String(), "west-2") {
		t.Fatalf("got %s", rep)
	}
}
