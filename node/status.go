package node

import (
	"context"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/wan"
)

// probeTimeout bounds one liveness probe of status.
const probeTimeout = time.Second

// status reports every member's state as this node sees it, and the hints
// each holds (asked with a probe).
func (n *Node) status(ctx context.Context) *api.StatusResponse {
	v := n.peers.current()
	out := make([]api.NodeStatus, 0, len(v.members))
	for _, m := range v.members {
		out = append(out, api.NodeStatus{ID: m.ID, DC: m.DC, Rack: m.Rack, Addr: m.Addr, HintsPending: -1, HintBytes: -1})
	}
	// No shared context: one member that does not answer must not cancel
	// the other probes.
	var g errgroup.Group
	for i := range out {
		st := &out[i]
		if st.ID == n.cfg.ID {
			st.State = StateUp
			if n.store.Err() != nil {
				st.State = StateFailed
			}
			st.HintsPending, st.HintBytes = n.hintTotals()
			st.ReadGated = n.Gated()
			continue
		}
		if n.peers.state(st.ID) == StateLeft {
			st.State = StateLeft
			continue
		}
		g.Go(func() error {
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			start := time.Now()
			err := n.peers.call(pctx, st.ID, typePing, n.ownPing(st.ID), func(e *wan.Envelope) error {
				var p ping
				if err := e.Decode(&p); err != nil {
					return err
				}
				n.peerIncarnation(st.ID, &p)
				st.HintsPending, st.HintBytes, st.ReadGated = p.HintCount, p.HintBytes, p.ReadGated
				return nil
			})
			if err == nil {
				st.RTTms = float64(time.Since(start).Microseconds()) / 1000
			}
			st.State = n.peers.state(st.ID)
			if !n.peers.current().inRing[st.ID] && st.State != StateLeft {
				st.State = StateUnverified
			}
			if err != nil {
				// The state (and hints of -1) tell the operator; the
				// cause goes to the log.
				n.log.Debug("status probe failed", "peer", st.ID, "err", err)
			}
			return nil
		})
	}
	g.Wait()
	sort.Slice(out, func(i, j int) bool {
		if out[i].DC != out[j].DC {
			return out[i].DC < out[j].DC
		}
		return out[i].ID < out[j].ID
	})
	return &api.StatusResponse{Node: n.cfg.ID, Nodes: out}
}

// inspect asks every replica of a key, in every datacenter, directly, what
// it holds: the operator's view in a failover drill.
func (n *Node) inspect(ctx context.Context, r *api.InspectRequest) (*api.InspectResponse, *api.ClientError) {
	_, plan, cerr := n.planFor(r.Keyspace, r.Key)
	if cerr != nil {
		return nil, cerr
	}
	if cerr := r.Validate(); cerr != nil {
		return nil, cerr
	}
	all := plan.All()
	res := &api.InspectResponse{Token: plan.Token, Replicas: make([]api.ReplicaState, len(all))}
	// Each replica's error is its entry's Error; none cancels the others.
	var g errgroup.Group
	for i, m := range all {
		g.Go(func() error {
			st := api.ReplicaState{Node: m.ID, DC: m.DC}
			obj, err := n.readReplicaAs(ctx, m.ID, r.Keyspace, r.Key, true)
			if err != nil {
				st.Error = err.Error()
			} else {
				st.Version = obj.Clock
				st.Values = []string{}
				for _, s := range obj.Siblings {
					st.Dots = append(st.Dots, s.Dot.String())
					if !s.Deleted {
						st.Values = append(st.Values, string(s.Value))
					}
				}
				st.Deleted = len(st.Values) == 0 && len(obj.Siblings) > 0
			}
			res.Replicas[i] = st
			return nil
		})
	}
	g.Wait()
	return res, nil
}

// ringOf returns the preference list of a key.
func (n *Node) ringOf(r *api.RingRequest) (*api.RingResponse, *api.ClientError) {
	_, plan, cerr := n.planFor(r.Keyspace, r.Key)
	if cerr != nil {
		return nil, cerr
	}
	if cerr := r.Validate(); cerr != nil {
		return nil, cerr
	}
	res := &api.RingResponse{Token: plan.Token, Replicas: map[string][]string{}, Fallbacks: map[string][]string{}, Short: plan.Short}
	for dc, ms := range plan.Replicas {
		res.Replicas[dc] = memberIDs(ms)
	}
	for dc, ms := range plan.Fallbacks {
		res.Fallbacks[dc] = memberIDs(ms)
	}
	return res, nil
}
