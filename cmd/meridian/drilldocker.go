package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/internal/wait"
	"github.com/meridian-kv/meridian/node"
)

// Labels the Docker deployments (deploy/compose, the Terraform module
// deploy/terraform/modules/docker-region) give every node's container.
const (
	labelDC      = "meridian.dc"      // the node's region
	labelNode    = "meridian.node"    // the node's ID
	labelCluster = "meridian.cluster" // the compose project, or the Terraform name prefix
)

// dockerDriver loses a region by SIGKILLing its containers (docker kill,
// all at once: a crash, not a shutdown) and restores it with docker start.
// It finds the containers by their labels (meridian.dc, and
// meridian.cluster when the engine runs more than one cluster) through the
// docker CLI.
//
// What the region held at the loss is read from the killed containers'
// stores: each node's data directory is copied out of its stopped
// container (docker cp reads the volume) and opened offline, with the
// encryption key file named by the node configuration inside the
// container. Nothing reaches a stopped container's store, and what a node
// synced is what it held.
type dockerDriver struct {
	region, cluster, keyspace string
	log                       io.Writer
	containers                []string // names, sorted
	killed                    bool
}

func newDockerDriver(ctx context.Context, region, cluster, keyspace string, log io.Writer) (*dockerDriver, error) {
	if keyspace == "" {
		keyspace = "default"
	}
	args := []string{"ps", "-a", "--filter", "label=" + labelDC + "=" + region, "--format", `{{.Names}}	{{.Label "` + labelCluster + `"}}`}
	if cluster != "" {
		args = append(args, "--filter", "label="+labelCluster+"="+cluster)
	}
	out, err := docker(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("docker driver: %w", err)
	}
	d := &dockerDriver{region: region, cluster: cluster, keyspace: keyspace, log: log}
	clusters := map[string]bool{}
	for line := range strings.Lines(out) {
		name, cl, _ := strings.Cut(strings.TrimSpace(line), "\t")
		if name == "" {
			continue
		}
		d.containers = append(d.containers, name)
		clusters[cl] = true
	}
	if len(d.containers) == 0 {
		where := ""
		if cluster != "" {
			where = " of cluster " + cluster
		}
		return nil, fmt.Errorf("docker driver: no container labelled %s=%s%s on this Docker engine", labelDC, region, where)
	}
	if len(clusters) > 1 {
		names := make([]string, 0, len(clusters))
		for c := range clusters {
			names = append(names, fmt.Sprintf("%q", c))
		}
		slices.Sort(names)
		return nil, fmt.Errorf("docker driver: containers of region %s belong to clusters %s: name one with --docker-cluster (the compose project, or the Terraform name)", region, strings.Join(names, ", "))
	}
	slices.Sort(d.containers)
	return d, nil
}

func (d *dockerDriver) Name() string { return "docker" }

// docker runs the docker CLI and returns its standard output.
func docker(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// containerState is what docker inspect says of a container.
type containerState struct {
	running bool
	pid     int    // its main process, in the engine's pid namespace
	id      string // full container ID
}

// states inspects the containers.
func (d *dockerDriver) states(ctx context.Context) (map[string]containerState, error) {
	out, err := docker(ctx, append([]string{"inspect", "--format", "{{.Name}} {{.State.Running}} {{.State.Pid}} {{.Id}}"}, d.containers...)...)
	if err != nil {
		return nil, err
	}
	r := map[string]containerState{}
	for line := range strings.Lines(out) {
		var name, running, id string
		var pid int
		if _, err := fmt.Sscan(line, &name, &running, &pid, &id); err != nil {
			return nil, fmt.Errorf("docker inspect: %q: %w", line, err)
		}
		r[strings.TrimPrefix(name, "/")] = containerState{running: running == "true", pid: pid, id: id}
	}
	return r, nil
}

// hostPid reports whether pid is the container's main process as this
// host sees it: the drill runs beside the engine, in its pid namespace,
// and the process's cgroup names the container.
func hostPid(st containerState) bool {
	if st.pid <= 0 || len(st.id) < 12 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", st.pid))
	return err == nil && strings.Contains(string(b), st.id)
}

// Lose kills every container of the region at once. The loss is when the
// last container's process is gone: seen in /proc while docker kill runs
// when the engine's processes are this host's (docker kill returns, and
// the engine marks the containers stopped, hundreds of milliseconds after
// the processes died); otherwise when the engine reports the last one
// stopped, a later moment, so the RPO is then an upper bound.
func (d *dockerDriver) Lose(ctx context.Context) (time.Time, error) {
	before, err := d.states(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("docker driver: %w", err)
	}
	watch := true
	for _, c := range d.containers {
		if !before[c].running {
			return time.Time{}, fmt.Errorf("docker driver: container %s is not running", c)
		}
		watch = watch && hostPid(before[c])
	}
	d.killed = true
	start := time.Now()
	kill := make(chan error, 1)
	go func() {
		_, err := docker(ctx, append([]string{"kill", "--signal", "KILL"}, d.containers...)...)
		kill <- err
	}()
	var at time.Time
	killed := false
	if watch {
		for _, c := range d.containers {
			for alive(before[c].pid) {
				select {
				case err := <-kill:
					if err != nil {
						return time.Time{}, fmt.Errorf("docker driver: %w", err)
					}
					killed = true
				default:
				}
				if err := wait.Sleep(ctx, 2*time.Millisecond); err != nil {
					return time.Time{}, err
				}
			}
		}
		at = time.Now()
	}
	if !killed {
		if err := <-kill; err != nil {
			return time.Time{}, fmt.Errorf("docker driver: %w", err)
		}
	}
	// Wait until the engine saw each container exit: its data directory
	// is copied out and it is started again after.
	for {
		st, err := d.states(ctx)
		if err != nil {
			return time.Time{}, fmt.Errorf("docker driver: %w", err)
		}
		up := 0
		for _, c := range d.containers {
			if st[c].running {
				up++
			}
		}
		if up == 0 {
			break
		}
		if err := wait.Sleep(ctx, 10*time.Millisecond); err != nil {
			return time.Time{}, err
		}
	}
	stopped := time.Since(start)
	if watch {
		fmt.Fprintf(d.log, "docker driver: killed %s: processes gone after %v, stopped for the engine after %v\n",
			strings.Join(d.containers, " "), at.Sub(start).Round(time.Millisecond), stopped.Round(time.Millisecond))
	} else {
		at = time.Now()
		fmt.Fprintf(d.log, "docker driver: killed %s: stopped for the engine after %v (their processes are not visible here: the moment of loss is the engine's, the RPO an upper bound)\n",
			strings.Join(d.containers, " "), stopped.Round(time.Millisecond))
	}
	return at, nil
}

// Held copies each killed container's data directory out and reads keys
// from it offline.
func (d *dockerDriver) Held(ctx context.Context, keys []string) (map[string][]api.ReplicaState, error) {
	tmp, err := os.MkdirTemp("", "meridian-drill-docker-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := make(map[string][]api.ReplicaState, len(keys))
	for _, c := range d.containers {
		dir := filepath.Join(tmp, c)
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, err
		}
		cfg, err := d.nodeConfig(ctx, c, dir)
		if err != nil {
			return nil, fmt.Errorf("docker driver: %s: %w", c, err)
		}
		if cfg.DC != d.region {
			return nil, fmt.Errorf("docker driver: container %s is labelled %s=%s but its node %s is in %s", c, labelDC, d.region, cfg.ID, cfg.DC)
		}
		data := filepath.Join(dir, "data")
		if _, err := docker(ctx, "cp", c+":"+cfg.DataDir, data); err != nil {
			return nil, fmt.Errorf("docker driver: copying %s's store out: %w", c, err)
		}
		keyFile := ""
		if cfg.Encryption.KeyFile != "" {
			keyFile = filepath.Join(dir, "key")
			if _, err := docker(ctx, "cp", c+":"+cfg.Encryption.KeyFile, keyFile); err != nil {
				return nil, fmt.Errorf("docker driver: copying %s's key file out: %w", c, err)
			}
		}
		if err := readHeld(data, keyFile, cfg.ID, d.region, d.keyspace, keys, out); err != nil {
			return nil, fmt.Errorf("docker driver: %s: %w", c, err)
		}
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// nodeConfig copies the node configuration the container runs with (its
// command's --config) into dir and loads it.
func (d *dockerDriver) nodeConfig(ctx context.Context, c, dir string) (*node.Config, error) {
	out, err := docker(ctx, "inspect", "--format", "{{json .Config.Entrypoint}}\n{{json .Config.Cmd}}", c)
	if err != nil {
		return nil, err
	}
	var args []string
	for line := range strings.Lines(out) {
		var part []string
		if err := json.Unmarshal([]byte(line), &part); err != nil {
			return nil, fmt.Errorf("the container's command %s: %w", out, err)
		}
		args = append(args, part...)
	}
	path := configFlag(args)
	if path == "" {
		return nil, fmt.Errorf("its command %q names no --config", args)
	}
	local := filepath.Join(dir, "node.yaml")
	if _, err := docker(ctx, "cp", c+":"+path, local); err != nil {
		return nil, err
	}
	return node.LoadConfig(local)
}

// configFlag returns the value of the last --config in args ("" for
// none).
func configFlag(args []string) string {
	path := ""
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			path = v
		} else if a == "--config" && i+1 < len(args) {
			path = args[i+1]
		}
	}
	return path
}

// Restore starts every container of the region again.
func (d *dockerDriver) Restore(ctx context.Context) error {
	if !d.killed {
		return nil
	}
	if _, err := docker(ctx, append([]string{"start"}, d.containers...)...); err != nil {
		return errors.New("docker driver: " + err.Error())
	}
	fmt.Fprintf(d.log, "docker driver: started %s again\n", strings.Join(d.containers, " "))
	return nil
}
