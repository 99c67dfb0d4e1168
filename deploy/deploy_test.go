package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/history"
	"github.com/meridian-kv/meridian/node"
)

// repo is the repository's root, from this package's directory.
var repo, _ = filepath.Abs("..")

// uniq names this test process's containers, networks, volumes and image,
// so that runs sharing a Docker engine do not collide.
var uniq = fmt.Sprintf("mdt%d%04d", os.Getpid()%100000, rand.IntN(10000))

func TestMain(m *testing.M) {
	flag.Parse()
	startProviderBuild()
	code := m.Run()
	if imageBuilt {
		exec.Command("docker", "image", "rm", "-f", testImage()).Run()
	}
	os.Exit(code)
}

// run runs a command with env added and returns its combined output.
func run(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s %s: %v (%v)", filepath.Base(name), strings.Join(args, " "), err, time.Since(start).Round(100*time.Millisecond))
	return out.String(), err
}

func mustRun(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, err := run(t, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// needDocker skips the test unless a Docker engine answers.
func needDocker(t *testing.T, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds an image and starts containers; skipped in -short")
	}
	for _, tool := range append([]string{"docker"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: skipping the Docker deployment test", tool)
		}
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("no Docker engine answers (docker info: %v: %s): skipping the Docker deployment test", err, bytes.TrimSpace(out))
	}
}

func needTerraform(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("terraform"); err != nil {
		t.Skip("terraform is not installed: skipping the Terraform checks")
	}
	rc := filepath.Join(t.TempDir(), "terraformrc")
	if err := os.WriteFile(rc, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// No registry: a provider-free module needs no CLI configuration.
	return []string{"TF_CLI_CONFIG_FILE=" + rc, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1"}
}

// The Docker provider takes minutes to build when it is not cached: it is
// built in the background from the start, while the compose test runs.
var (
	providerDone = make(chan struct{})
	providerOut  string
	providerErr  error
)

func startProviderBuild() {
	run := flag.Lookup("test.run").Value.String()
	_, errTF := exec.LookPath("terraform")
	_, errDocker := exec.LookPath("docker")
	if testing.Short() || errTF != nil || errDocker != nil {
		close(providerDone)
		return
	}
	if ok, _ := regexp.MatchString(run, "TestTerraformDockerThreeRegions"); run != "" && !ok {
		close(providerDone)
		return
	}
	go func() {
		defer close(providerDone)
		start := time.Now()
		out, err := exec.Command(filepath.Join(repo, "deploy", "terraform", "provider-mirror.sh")).CombinedOutput()
		providerOut, providerErr = fmt.Sprintf("%s(%v)", out, time.Since(start).Round(time.Second)), err
	}()
}

var (
	imageOnce  sync.Once
	imageErr   error
	imageBuilt bool
	binOnce    sync.Once
	binPath    string
	binErr     error
)

func testImage() string { return "meridian:" + uniq }

// buildImage builds the image once per test process with deploy/docker/build.sh.
func buildImage(t *testing.T) string {
	t.Helper()
	imageOnce.Do(func() {
		start := time.Now()
		var out string
		// Without -trimpath the static build reuses most of what the tests'
		// own builds put in the Go build cache (50 s instead of 3 min cold).
		out, imageErr = run(t, []string{"MERIDIAN_GO_BUILD_FLAGS="}, filepath.Join(repo, "deploy", "docker", "build.sh"), testImage())
		imageBuilt = imageErr == nil
		if imageErr != nil {
			imageErr = fmt.Errorf("%v\n%s", imageErr, out)
		} else {
			t.Logf("image build: %v: %s", time.Since(start).Round(time.Second), strings.TrimSpace(out))
		}
	})
	if imageErr != nil {
		t.Fatal(imageErr)
	}
	return testImage()
}

// meridianBin builds the meridian binary once per test process.
func meridianBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "meridian-deploy-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "meridian")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/meridian")
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// freeSecondOctet picks 10.X for test networks that no existing Docker
// network overlaps.
func freeSecondOctet(t *testing.T, avoid ...int) int {
	t.Helper()
	out := mustRun(t, nil, "docker", "network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", "bridge")
	ids := strings.Fields(mustRun(t, nil, "docker", "network", "ls", "-q"))
	if len(ids) > 0 {
		out += mustRun(t, nil, "docker", append([]string{"network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"}, ids...)...)
	}
	for range 100 {
		x := 100 + rand.IntN(150)
		if strings.Contains(out, fmt.Sprintf("10.%d.", x)) || strings.Contains(fmt.Sprint(avoid), fmt.Sprint(x)) {
			continue
		}
		return x
	}
	t.Fatal("no free 10.X network range")
	return 0
}

// cli runs the meridian CLI with a client configuration.
func cli(t *testing.T, bin, config string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(bin, append([]string{"--config", config}, args...)...).CombinedOutput()
	return string(out), err
}

// putGetAcrossRegions writes at EACH_QUORUM through the client's own
// region and reads the value back through a node of every other region.
func putGetAcrossRegions(t *testing.T, bin, config string, regions []string) {
	t.Helper()
	key, value := "deploy-"+uniq, "value-"+uniq
	if out, err := cli(t, bin, config, "put", key, value, "--consistency", "EACH_QUORUM"); err != nil {
		t.Fatalf("put: %v\n%s", err, out)
	}
	for _, r := range regions {
		out, err := cli(t, bin, config, "--node", r+"-1", "get", key, "--consistency", "EACH_QUORUM")
		if err != nil || !strings.Contains(out, value) {
			t.Fatalf("get through %s-1: %v\n%s", r, err, out)
		}
	}
}

// waitHealthy polls docker until every container reports healthy.
func waitHealthy(t *testing.T, containers []string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var last string
	for time.Now().Before(deadline) {
		out, err := exec.Command("docker", append([]string{"inspect", "--format", "{{.Name}} {{.State.Health.Status}}"}, containers...)...).CombinedOutput()
		last = string(out)
		if err == nil && strings.Count(last, " healthy") == len(containers) {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("containers not healthy:\n%s", last)
}

// TestTerraformTopology: fmt, validate and terraform test of the modules
// that need no provider, and every configuration the topology module writes
// is one meridian node and the client load.
func TestTerraformTopology(t *testing.T) {
	env := needTerraform(t)
	tfdir := filepath.Join(repo, "deploy", "terraform")
	mustRun(t, env, "terraform", "-chdir="+tfdir, "fmt", "-check", "-recursive")
	data := "TF_DATA_DIR=" + filepath.Join(t.TempDir(), "tfdata")
	env = append(env, data)
	topo := filepath.Join(tfdir, "modules", "topology")
	mustRun(t, env, "terraform", "-chdir="+topo, "init", "-backend=false", "-input=false")
	mustRun(t, env, "terraform", "-chdir="+topo, "validate")
	mustRun(t, env, "terraform", "-chdir="+topo, "test")

	root := t.TempDir()
	main := fmt.Sprintf(`
module "topology" {
  source = %q
  regions = {
    east    = { nodes = 3, racks = ["a", "b", "c"], subnet = "10.1.0.0/24" }
    west    = { nodes = 3, racks = ["a", "b"], subnet = "10.2.0.0/24" }
    central = { nodes = 1, subnet = "10.3.0.0/24" }
  }
  keyspaces = {
    default = { replication = { east = 3, west = 2, central = 1 } }
    audit   = { replication = { east = 1, west = 1 }, write_consistency = "EACH_QUORUM", read_consistency = "QUORUM" }
  }
  repair_windows = [{ pair = ["east", "west"], cron = "0 2 * * *", duration = "2h", bytes_per_second = 1048576 }, { pair = ["east", "east"] }]
  gossip_key     = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
  wan_latency    = "40ms"
}
output "node_configs" {
  value     = module.topology.node_configs
  sensitive = true
}
output "client_config" { value = module.topology.client_config }
`, topo)
	if err := os.WriteFile(filepath.Join(root, "main.tf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	env = append(env[:len(env)-1], "TF_DATA_DIR="+filepath.Join(root, ".terraform"))
	mustRun(t, env, "terraform", "-chdir="+root, "init", "-input=false")
	mustRun(t, env, "terraform", "-chdir="+root, "apply", "-auto-approve", "-input=false")
	var configs map[string]string
	if err := json.Unmarshal([]byte(mustRun(t, env, "terraform", "-chdir="+root, "output", "-json", "node_configs")), &configs); err != nil {
		t.Fatal(err)
	}
	if len(configs) != 7 {
		t.Fatalf("%d node configurations, want 7", len(configs))
	}
	for id, text := range configs {
		file := filepath.Join(root, id+".yaml")
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := node.LoadConfig(file)
		if err != nil {
			t.Fatalf("the topology module's configuration of %s is refused: %v\n%s", id, err, text)
		}
		if cfg.ID != id || cfg.Keyspaces["audit"].WriteConsistency != "EACH_QUORUM" || len(cfg.Repair.Windows) != 2 ||
			cfg.Repair.Windows[0].Duration != 2*time.Hour || cfg.WANEmulation == nil || cfg.WANEmulation.Latency != 40*time.Millisecond ||
			len(cfg.WANEmulation.Peers) != 7 || len(cfg.Seeds) != 3 || len(cfg.Auth.Superusers) != 1 || cfg.Auth.Superusers[0] != "admin" {
			t.Errorf("%s: loaded as %+v", id, cfg)
		}
	}
	file := filepath.Join(root, "client.yaml")
	if err := os.WriteFile(file, []byte(mustRun(t, env, "terraform", "-chdir="+root, "output", "-raw", "client_config")), 0o600); err != nil {
		t.Fatal(err)
	}
	cc, err := client.LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	if cc.DC != "central" || len(cc.Nodes) != 7 || cc.TLS.Cert != "certs/admin.pem" {
		t.Errorf("client configuration: %+v", cc)
	}
}

// TestComposeThreeRegions brings up deploy/compose (3 regions x 3 nodes)
// from a freshly built image, writes at EACH_QUORUM from the host and reads
// through every region, checks the health checks, stops and starts west's
// containers under a load recorded by the history harness and checks that
// no acknowledged write was lost, and removes it all.
func TestComposeThreeRegions(t *testing.T) {
	needDocker(t, "docker-compose")
	image := buildImage(t)
	dir := filepath.Join(repo, "deploy", "compose")
	gen := t.TempDir()
	// Host ports PREFIX11 ... PREFIX33 (QUIC) and PREFIX+1 11 ... (admin),
	// PREFIX in 100 ... 166: ports 10011 ... 16733, clear of the process
	// tests' blocks (20000 ... 31999, cmd/meridian's portBlock), of the
	// kernel's ephemeral range (32768 and up) and of the compose defaults
	// (170 and 190), while those tests run beside this one.
	prefix := 100 + 2*rand.IntN(34)
	env := []string{
		"MERIDIAN_PROJECT=" + uniq, "MERIDIAN_IMAGE=" + image, "MERIDIAN_BUILD_IMAGE=0", "MERIDIAN_GENERATED=" + gen,
		fmt.Sprintf("MERIDIAN_NET=10.%d", freeSecondOctet(t)), "MERIDIAN_WAN_LATENCY=20ms",
		fmt.Sprintf("MERIDIAN_PORT_PREFIX=%d", prefix), fmt.Sprintf("MERIDIAN_ADMIN_PORT_PREFIX=%d", prefix+1),
	}
	t.Cleanup(func() {
		if out, err := run(t, env, filepath.Join(dir, "down.sh")); err != nil {
			t.Errorf("down.sh: %v\n%s", err, out)
		}
		if out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=com.docker.compose.project="+uniq).Output(); len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("containers left behind: %s", out)
		}
	})
	start := time.Now()
	if out, err := run(t, env, filepath.Join(dir, "up.sh")); err != nil {
		logs, _ := exec.Command("docker", "logs", "--tail", "30", uniq+"_east-1_1").CombinedOutput()
		t.Fatalf("up.sh: %v\n%s\neast-1's log:\n%s", err, out, logs)
	}
	bin, config := filepath.Join(gen, "meridian"), filepath.Join(gen, "client.yaml")
	putGetAcrossRegions(t, bin, config, []string{"east", "west", "central"})
	t.Logf("compose: up to a first put and get in every region in %v", time.Since(start).Round(100*time.Millisecond))
	var containers []string
	for _, r := range []string{"east", "west", "central"} {
		for i := 1; i <= 3; i++ {
			containers = append(containers, fmt.Sprintf("%s_%s-%d_1", uniq, r, i))
		}
	}
	waitHealthy(t, containers)

	// A region's containers stopped and started again under load: the
	// history harness records every operation of concurrent writers homed
	// in east (LOCAL_QUORUM through east's nodes) and in west (through
	// west's nodes), before, during and after the outage; once every hint
	// is delivered and a repair ran, every replica of every key must hold
	// every acknowledged write that no later write saw, nothing an
	// acknowledged delete saw, and only values that were written.
	west := containers[3:6]
	keys := make([]string, 24)
	for i := range keys {
		keys[i] = fmt.Sprintf("load-%02d", i)
	}
	l := newLoad(t, config, keys, "east", "west")
	l.start(40*time.Millisecond, "east", "east", "east", "east", "west", "west")
	l.await(map[string]int{"east": 40, "west": 15})

	l.phase("stopping west")
	stopping := time.Now()
	mustRun(t, nil, "docker", append([]string{"stop", "--time", "10"}, west...)...)
	down := time.Now()
	l.phase("west down")
	l.await(map[string]int{"east": 60})
	// Hints: the east coordinators hold what west's replicas missed.
	hints := 0
	waitFor(t, "hints stored for west while it is down", time.Minute, func() error {
		st, err := l.clients["east"].Status(context.Background())
		if err != nil {
			return err
		}
		hints = 0
		for _, n := range st.Nodes {
			if n.HintsPending > 0 {
				hints += n.HintsPending
			}
		}
		if hints == 0 {
			return fmt.Errorf("no hint pending: %+v", st.Nodes)
		}
		return nil
	})
	l.phase("starting west")
	restart := time.Now()
	mustRun(t, nil, "docker", append([]string{"start"}, west...)...)
	l.phase("west started")
	// Writes through the restarted west nodes too.
	l.await(map[string]int{"east": 40, "west": 15})
	ops := l.stop()
	t.Logf("load: %v with west stopping, %v down, %v starting", down.Sub(stopping).Round(100*time.Millisecond),
		restart.Sub(down).Round(100*time.Millisecond), time.Since(restart).Round(100*time.Millisecond))
	for _, p := range l.phases {
		t.Logf("phase %-14s acknowledged writes %v, %d not, %d reads", p.name, p.acked, p.errors, p.reads)
	}

	waitFor(t, "every node up and no hint pending", 3*time.Minute, func() error {
		st, err := l.clients["east"].Status(context.Background())
		if err != nil {
			return err
		}
		for _, n := range st.Nodes {
			if n.State != "up" || n.HintsPending != 0 {
				return fmt.Errorf("%s: %s, %d hints", n.ID, n.State, n.HintsPending)
			}
		}
		if len(st.Nodes) != 9 {
			return fmt.Errorf("%d nodes", len(st.Nodes))
		}
		return nil
	})
	states := l.states("east")
	if len(states) != 9 {
		t.Fatalf("inspect answered for %d replicas, want 9: %v", len(states), states)
	}
	// Hinted handoff alone, before any repair, must have brought every
	// acknowledged write to every replica: each was hinted for every
	// replica it did not reach. (Writes acknowledged while west's
	// containers were starting used to be missing on west's replicas
	// until a repair: a node that left gracefully was off the ring, so
	// nothing was hinted for it.) MERIDIAN_TEST_LOGS=DIR keeps the
	// containers' logs and the history there when this fails.
	rep := history.Check(ops, states)
	t.Logf("after handoff, before repair: %s", rep)
	if !rep.OK() {
		t.Errorf("hinted handoff alone left acknowledged writes off replicas or deleted ones on them: %s", rep)
		if d := os.Getenv("MERIDIAN_TEST_LOGS"); d != "" {
			keepLogs(t, d, containers, ops)
		}
	}
	for _, f := range append(rep.Lost, rep.Resurrected...) {
		var s []string
		for id, st := range states {
			s = append(s, fmt.Sprintf("%s=%v", id, st[f.Key]))
		}
		slices.Sort(s)
		t.Logf("replicas of %s before repair: %s", f.Key, strings.Join(s, " "))
		break
	}
	waitFor(t, "repair --now", 3*time.Minute, func() error {
		if out, err := cli(t, bin, config, "repair", "--now", "--json"); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	rep = history.Check(ops, l.states("east"))
	t.Logf("after repair: %s", rep)
	if !rep.OK() {
		t.Errorf("west's stop and start lost acknowledged writes or resurrected deleted ones: %s", rep)
	}
	// Not vacuous: writes acknowledged while west was down, on keys west
	// replicates, and hints stored for them (checked above); the awaits
	// alone make 170 acknowledged writes.
	westReplicas := map[string]int{}
	for _, key := range keys {
		ring, err := l.clients["east"].Ring(context.Background(), "default", []byte(key))
		if err != nil {
			t.Fatal(err)
		}
		westReplicas[key] = len(ring.Replicas["west"])
	}
	duringOutage := 0
	for _, op := range ops {
		if op.Kind != history.Read && op.Outcome == history.OK && op.Start.After(down) && op.End.Before(restart) && westReplicas[op.Key] == 3 {
			duringOutage++
		}
	}
	t.Logf("%d writes acknowledged while west was down, on keys with 3 west replicas; %d hints pending before west started; west stopped to every replica checked in %v",
		duringOutage, hints, time.Since(down).Round(100*time.Millisecond))
	if duringOutage == 0 || rep.Acked < 150 || rep.AckedDeletes == 0 {
		t.Errorf("vacuous run: %d writes acknowledged while west was down: %s", duringOutage, rep)
	}

	// The drill's docker driver against the same cluster: west's
	// containers killed (a crash, where the section above stopped them),
	// what they held at the loss read from their volumes, started again;
	// the drill checks every acknowledged write on every replica.
	drillJSON := filepath.Join(t.TempDir(), "drill.json")
	out, err := run(t, nil, bin, "--config", config, "drill", "--region", "west", "--driver", "docker",
		"--docker-cluster", uniq, "--baseline", "3s", "--down", "10s", "--rate", "100", "--workers", "2",
		"--keys", "200", "--json", drillJSON)
	if err != nil {
		t.Fatalf("drill --driver docker: %v\n%s", err, out)
	}
	b, err := os.ReadFile(drillJSON)
	if err != nil {
		t.Fatal(err)
	}
	var verdict struct {
		Driver         string  `json:"driver"`
		Acked          int     `json:"acked"`
		AckedLost      int     `json:"acked_lost"`
		Resurrected    int     `json:"resurrected"`
		Phantoms       int     `json:"phantoms"`
		RPOChecked     int     `json:"rpo_checked"`
		RPOWrites      int     `json:"rpo_writes"`
		SafeToFailBack bool    `json:"safe_to_fail_back"`
		FailBack       string  `json:"fail_back"`
		Converge       float64 `json:"converge_seconds"`
		Outage         struct {
			Ops    int `json:"ops"`
			Errors int `json:"errors"`
		} `json:"outage"`
	}
	if err := json.Unmarshal(b, &verdict); err != nil {
		t.Fatalf("drill's JSON: %v\n%s", err, b)
	}
	t.Logf("drill (docker driver): %+v", verdict)
	if verdict.Driver != "docker" || verdict.AckedLost != 0 || verdict.Resurrected != 0 || verdict.Phantoms != 0 || !verdict.SafeToFailBack {
		t.Errorf("drill with west's containers killed: %+v\n%s", verdict, out)
	}
	// Not vacuous: writes acknowledged, and some before the loss whose
	// presence in west's stores was read.
	if verdict.Acked == 0 || verdict.RPOChecked == 0 || verdict.Outage.Ops == 0 {
		t.Errorf("vacuous drill: %+v", verdict)
	}
}

// waitFor polls cond until it returns nil.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s: %v", what, err)
}

// TestTerraformDockerThreeRegions applies examples/docker-three-regions
// through try-docker.sh (provider built from the module proxy into a cached
// mirror), writes and reads across regions from the host, and destroys it.
func TestTerraformDockerThreeRegions(t *testing.T) {
	needDocker(t, "terraform")
	tfEnv := needTerraform(t)
	start := time.Now()
	<-providerDone
	if providerErr != nil {
		t.Skipf("the Docker provider could not be built from the module proxy, so the example cannot be applied: %v\n%s", providerErr, providerOut)
	}
	t.Logf("provider mirror ready after %v more: %s", time.Since(start).Round(time.Second), providerOut)
	image := buildImage(t)
	// A copy of deploy/terraform: state and generated files stay out of
	// the tree, and parallel runs do not share them.
	work := t.TempDir()
	if out, err := exec.Command("cp", "-r", filepath.Join(repo, "deploy", "terraform"), work).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	script := filepath.Join(work, "terraform", "try-docker.sh")
	env := append(tfEnv[1:], // try-docker.sh points TF_CLI_CONFIG_FILE at the mirror
		"MERIDIAN_REPO="+repo, "MERIDIAN_BIN="+meridianBin(t), "MERIDIAN_BUILD_IMAGE=0",
		"TF_VAR_image="+image, "TF_VAR_name="+uniq, fmt.Sprintf("TF_VAR_wan_subnet=10.%d.0.0/16", freeSecondOctet(t)),
		"TF_VAR_wan_latency=20ms")
	t.Cleanup(func() {
		if out, err := run(t, env, script, "destroy"); err != nil {
			t.Errorf("try-docker.sh destroy: %v\n%s", err, out)
		}
		// Whatever a failed apply or destroy left behind.
		if ids, _ := exec.Command("docker", "ps", "-aq", "--filter", "name="+uniq+"-").Output(); len(bytes.TrimSpace(ids)) > 0 {
			t.Errorf("containers left behind: %s", ids)
			exec.Command("docker", append([]string{"rm", "-f"}, strings.Fields(string(ids))...)...).Run()
		}
		for _, kind := range []string{"network", "volume"} {
			if names, _ := exec.Command("docker", kind, "ls", "-q", "--filter", "name="+uniq+"-").Output(); len(bytes.TrimSpace(names)) > 0 {
				t.Errorf("%ss left behind: %s", kind, names)
				exec.Command("docker", append([]string{kind, "rm"}, strings.Fields(string(names))...)...).Run()
			}
		}
	})
	start = time.Now()
	out, err := run(t, env, script)
	if err != nil {
		t.Fatalf("try-docker.sh: %v\n%s", err, out)
	}
	t.Logf("terraform: apply to a first put and get in %v", time.Since(start).Round(100*time.Millisecond))
	config := filepath.Join(work, "terraform", "examples", "docker-three-regions", "out", "client.yaml")
	putGetAcrossRegions(t, meridianBin(t), config, []string{"east", "west", "central"})
	var containers []string
	for _, r := range []string{"east", "west", "central"} {
		for i := 1; i <= 3; i++ {
			containers = append(containers, fmt.Sprintf("%s-%s-%d", uniq, r, i))
		}
	}
	waitHealthy(t, containers)
	// The labels meridian drill --driver docker finds a region by.
	got := mustRun(t, nil, "docker", "ps", "--filter", "label=meridian.cluster="+uniq, "--filter", "label=meridian.dc=west",
		"--format", `{{.Names}} {{.Label "meridian.node"}}`)
	if want := fmt.Sprintf("%[1]s-west-1 west-1\n%[1]s-west-2 west-2\n%[1]s-west-3 west-3", uniq); strings.Join(slices.Sorted(strings.Lines(strings.TrimSpace(got)+"\n")), "") != want+"\n" {
		t.Errorf("west's containers by their labels: %q, want %q", got, want)
	}
}

// keepLogs writes every container's log and the recorded history into dir.
func keepLogs(t *testing.T, dir string, containers []string, ops []history.Op) {
	t.Helper()
	for _, c := range containers {
		out, err := exec.Command("docker", "logs", c).CombinedOutput()
		if err != nil {
			t.Logf("docker logs %s: %v", c, err)
		}
		if err := os.WriteFile(filepath.Join(dir, c+".log"), out, 0o644); err != nil {
			t.Log(err)
		}
	}
	var b strings.Builder
	for _, op := range ops {
		fmt.Fprintf(&b, "%+v\n", op)
	}
	if err := os.WriteFile(filepath.Join(dir, "history.txt"), []byte(b.String()), 0o644); err != nil {
		t.Log(err)
	}
	t.Logf("containers' logs and the history are in %s", dir)
}
