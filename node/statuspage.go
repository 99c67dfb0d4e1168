package node

import (
	"context"
	_ "embed"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/meridian-kv/meridian/api"
)

// The status page (GET / on the admin address): one HTML file served
// from the binary, with no external assets, whose script polls
// /status.json every two seconds and draws the cluster as this node sees
// it. The admin address carries no authentication: serve it only where
// operators reach it.

//go:embed statuspage.html
var statusPageHTML []byte

// statusWindow is the window of the page's request rates and p99s.
const statusWindow = 30 * time.Second

// StatusPage is what /status.json answers.
type StatusPage struct {
	Node string `json:"node"`
	DC   string `json:"dc"`
	Time string `json:"time"` // RFC 3339
	// Nodes are the members with their state as this node sees them, and
	// the share of their region's ring each is primary for.
	Nodes []StatusNode `json:"nodes"`
	// Hints are the hints this node holds, per target node.
	Hints []StatusHints `json:"hints"`
	// Repair is the repair state per keyspace and region pair, from the
	// members that answered; RepairError says which did not (or why there
	// is none).
	Repair      []StatusRepair `json:"repair"`
	RepairError string         `json:"repair_error,omitempty"`
	// Requests are the rates and p99 latencies over the last
	// WindowSeconds: client requests this node coordinated (its region)
	// and its calls to replicas (per replica region).
	Requests      []RegionRate `json:"requests"`
	WindowSeconds float64      `json:"window_seconds"`
}

// StatusNode is one member.
type StatusNode struct {
	api.NodeStatus
	Ownership float64 `json:"ownership"`
}

// StatusHints counts the hints held for one target.
type StatusHints struct {
	Target string `json:"target"`
	Count  int    `json:"count"`
	Bytes  int64  `json:"bytes"`
}

// StatusRepair is one keyspace's repair state of one region pair.
type StatusRepair struct {
	Keyspace string `json:"keyspace"`
	api.PairRepairStatus
}

// statusPage gathers the page's data. It asks every member (status,
// repair checkpoints), each bounded by the probe timeout.
func (n *Node) statusPage(ctx context.Context) *StatusPage {
	now := n.now()
	out := &StatusPage{Node: n.cfg.ID, DC: n.cfg.DC, Time: now.UTC().Format(time.RFC3339), WindowSeconds: statusWindow.Seconds()}
	own := n.ring().Ownership()
	for _, st := range n.status(ctx).Nodes {
		out.Nodes = append(out.Nodes, StatusNode{NodeStatus: st, Ownership: own[st.ID]})
	}
	sort.Slice(out.Nodes, func(i, j int) bool {
		a, b := out.Nodes[i], out.Nodes[j]
		if a.DC != b.DC {
			return a.DC < b.DC
		}
		return a.ID < b.ID
	})
	out.Hints = []StatusHints{}
	for target, st := range n.store.HintStats() {
		out.Hints = append(out.Hints, StatusHints{Target: target, Count: st.Count, Bytes: st.Bytes})
	}
	sort.Slice(out.Hints, func(i, j int) bool { return out.Hints[i].Target < out.Hints[j].Target })
	out.Repair = []StatusRepair{}
	kss := make([]string, 0, len(n.cfg.Keyspaces))
	for ks := range n.cfg.Keyspaces {
		kss = append(kss, ks)
	}
	sort.Strings(kss)
	for _, ks := range kss {
		rctx, cancel := context.WithTimeout(ctx, probeTimeout)
		res, missing, cerr := n.repairStatusFrom(rctx, ks)
		cancel()
		if cerr != nil {
			out.RepairError = cerr.Message
			continue
		}
		if len(missing) > 0 {
			// What the members that answered know: an operator wants the
			// repair state most while a node is down.
			out.RepairError = "without the checkpoints of " + strings.Join(missing, "; ") + " (a pass it ran may be missing)"
		}
		for _, p := range res.Pairs {
			out.Repair = append(out.Repair, StatusRepair{Keyspace: ks, PairRepairStatus: p})
		}
	}
	out.Requests = n.reqs.summary(time.Now(), statusWindow)
	return out
}

func (n *Node) serveStatusPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
	w.Write(statusPageHTML)
}

func (n *Node) serveStatusJSON(w http.ResponseWriter, r *http.Request) {
	b, err := json.Marshal(n.statusPage(r.Context()))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}
