package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/node"
)

// statusCluster starts three regions of two nodes on real sockets, each
// with its admin endpoint on a port of its own choosing.
func statusCluster(t *testing.T) *realCluster {
	return startRealCluster(t, clusterOpts{regions: []string{"east", "west", "central"}, nodesPerRegion: 2,
		tweak: func(c *node.Config) { c.Admin = "127.0.0.1:0" }})
}

func getStatus(t *testing.T, adminAddr string) *node.StatusPage {
	t.Helper()
	res, err := http.Get("http://" + adminAddr + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var s node.StatusPage
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func stateOf(s *node.StatusPage, id string) string {
	for _, n := range s.Nodes {
		if n.ID == id {
			return n.State
		}
	}
	return "absent"
}

// TestStatusPageShowsTheCluster: the admin address serves the page, with
// no external assets, and /status.json every member with its state and
// ring ownership, the requests this node coordinated, and, once a node is
// killed, that node as down.
func TestStatusPageShowsTheCluster(t *testing.T) {
	tc := statusCluster(t)
	admin := tc.nodes["east-1"].AdminAddr()
	res, err := http.Get("http://" + admin + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status page: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//`).Find(page); m != nil {
		t.Fatalf("the page loads an external asset: %s", m)
	}

	for i := range 5 {
		if _, err := tc.client.Put(ctx(t), []byte(fmt.Sprint("k", i)), []byte("v"), nil); err != nil {
			t.Fatal(err)
		}
	}
	s := getStatus(t, admin)
	if s.Node != "east-1" || len(s.Nodes) != 6 {
		t.Fatalf("status of %s lists %d nodes: %+v", s.Node, len(s.Nodes), s.Nodes)
	}
	perRegion := map[string]float64{}
	for _, n := range s.Nodes {
		if n.State != "up" {
			t.Errorf("%s is %s, want up", n.ID, n.State)
		}
		perRegion[n.DC] += n.Ownership
	}
	for dc, sum := range perRegion {
		if math.Abs(sum-1) > 1e-9 {
			t.Errorf("ownership in %s sums to %v, want 1", dc, sum)
		}
	}
	// The client's puts went to the nodes of its region, east.
	coordinated := 0
	for _, id := range []string{"east-1", "east-2"} {
		for _, q := range getStatus(t, tc.nodes[id].AdminAddr()).Requests {
			if q.Kind == "client" {
				if q.Region != "east" || q.P99ms <= 0 {
					t.Errorf("%s counts %+v", id, q)
				}
				coordinated += q.Count
			}
		}
	}
	if coordinated != 5 {
		t.Errorf("the east nodes coordinated %d requests, want the 5 puts", coordinated)
	}
	if _, err := tc.client.Repair(longCtx(t), nil, nil); err != nil {
		t.Fatal(err)
	}
	if s := getStatus(t, admin); len(s.Repair) != 6 || s.RepairError != "" {
		t.Fatalf("after a repair the page shows %+v (%q), want the 6 pairs of 3 regions (each with itself too)", s.Repair, s.RepairError)
	}

	if err := tc.nodes["west-1"].Kill(); err != nil {
		t.Fatal(err)
	}
	delete(tc.nodes, "west-1")
	waitFor(t, func() error {
		if st := stateOf(getStatus(t, admin), "west-1"); st != "down" {
			return fmt.Errorf("west-1 is %s", st)
		}
		return nil
	})
	// With a node down, the page still shows the repair state the others
	// know, and says whose checkpoints it lacks.
	s = getStatus(t, admin)
	if len(s.Repair) != 6 || !strings.Contains(s.RepairError, "west-1") {
		t.Fatalf("with west-1 down the page shows %+v and %q", s.Repair, s.RepairError)
	}
}

// chromium finds Debian's Chromium.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// headless runs Chromium headless on url with extra flags and returns
// its output; it waits up to a budget of virtual time for the page's
// script to fetch and draw.
func headless(t *testing.T, browser, url string, flags ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--user-data-dir=" + t.TempDir(), "--virtual-time-budget=4000"}, flags...)
	out, err := exec.CommandContext(ctx, browser, append(args, url)...).Output()
	if err != nil {
		t.Fatalf("%s: %v", browser, err)
	}
	return string(out)
}

// TestStatusPageInABrowser opens the status page in headless Chromium,
// kills a node, and waits until the page, as the browser draws it, shows
// the node down; then takes a screenshot (MERIDIAN_WRITE_SCREENSHOT=1
// writes it to docs/status-page.png). It skips without Chromium.
func TestStatusPageInABrowser(t *testing.T) {
	browser := chromium()
	if browser == "" {
		t.Skip("no chromium in PATH: apt-get install chromium to run the status page's browser test")
	}
	tc := statusCluster(t)
	url := "http://" + tc.nodes["east-1"].AdminAddr() + "/"
	for i := range 20 {
		if _, err := tc.client.Put(ctx(t), []byte(fmt.Sprint("k", i)), []byte("v"), &client.WriteOptions{Consistency: "EACH_QUORUM"}); err != nil {
			t.Fatal(err)
		}
	}
	row := func(dom, id string) string {
		m := regexp.MustCompile(`<tr id="node-` + id + `">.*?</tr>`).FindString(dom)
		return m
	}
	dom := headless(t, browser, url, "--dump-dom")
	if r := row(dom, "west-1"); !strings.Contains(r, `class="state up"`) {
		t.Fatalf("before the kill the page shows west-1 as %q:\n%s", r, dom)
	}
	if !strings.Contains(dom, "client requests coordinated here") {
		t.Fatalf("the page shows no requests:\n%s", dom)
	}
	if err := tc.nodes["west-1"].Kill(); err != nil {
		t.Fatal(err)
	}
	delete(tc.nodes, "west-1")
	killed := time.Now()
	waitFor(t, func() error {
		dom = headless(t, browser, url, "--dump-dom")
		if r := row(dom, "west-1"); !strings.Contains(r, `class="state down"`) {
			return fmt.Errorf("the page shows west-1 as %q", r)
		}
		return nil
	})
	t.Logf("the page showed west-1 down %v after the kill", time.Since(killed).Round(100*time.Millisecond))
	// Writes while west-1 is down leave hints for it, which the page
	// counts on the nodes that hold them.
	for i := range 10 {
		if _, err := tc.client.Put(ctx(t), []byte(fmt.Sprint("k", i)), []byte("v2"), nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() error {
		for _, n := range getStatus(t, tc.nodes["east-1"].AdminAddr()).Nodes {
			if n.HintsPending > 0 {
				return nil
			}
		}
		return fmt.Errorf("no node reports hints pending")
	})
	shot := filepath.Join(t.TempDir(), "status-page.png")
	headless(t, browser, url, "--screenshot="+shot, "--window-size=1100,1000", "--hide-scrollbars")
	b, err := os.ReadFile(shot)
	if err != nil || len(b) < 1000 || string(b[1:4]) != "PNG" {
		t.Fatalf("screenshot: %d bytes, %v", len(b), err)
	}
	if os.Getenv("MERIDIAN_WRITE_SCREENSHOT") != "" {
		if err := os.WriteFile(filepath.Join("..", "docs", "status-page.png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
