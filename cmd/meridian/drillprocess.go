package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/internal/wait"
	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/store"
)

// processDriver loses a region by SIGKILLing its node processes (found by
// the pid files in their data directories) and restores it by starting
// them again with the same binary, arguments and working directory,
// detached, their output appended to DATA_DIR/meridian.log.
//
// What the region held at the loss is read from the killed nodes' stores
// themselves, opened offline before the restart: what a node synced is
// what it held (an acknowledgement needs the sync), and nothing can reach
// a store between the kill and the read.
type processDriver struct {
	region   string
	keyspace string
	log      io.Writer
	nodes    []procNode
}

// procNode is one node of the region.
type procNode struct {
	id, cfgPath string
	cfg         *node.Config
	// Set by Lose: how to start it again.
	exe, dir string
	args     []string
}

func newProcessDriver(cfg *client.Config, clientFile, nodesDir, region string, log io.Writer) (*processDriver, error) {
	if nodesDir == "" {
		nodesDir = filepath.Join(filepath.Dir(clientFile), "nodes")
	}
	files, err := filepath.Glob(filepath.Join(nodesDir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	d := &processDriver{region: region, keyspace: cfg.Keyspace, log: log}
	if d.keyspace == "" {
		d.keyspace = "default"
	}
	for _, f := range files {
		nc, err := node.LoadConfig(f)
		if err != nil {
			return nil, fmt.Errorf("process driver: %w", err)
		}
		if nc.DC == region {
			d.nodes = append(d.nodes, procNode{id: nc.ID, cfgPath: f, cfg: nc})
		}
	}
	if len(d.nodes) == 0 {
		return nil, fmt.Errorf("process driver: no node configuration of region %q in %s (name it with --nodes)", region, nodesDir)
	}
	return d, nil
}

func (d *processDriver) Name() string { return "process" }

// Lose kills every node of the region at once; the loss is when the last
// one is dead.
func (d *processDriver) Lose(ctx context.Context) (time.Time, error) {
	pids := make([]int, len(d.nodes))
	for i := range d.nodes {
		n := &d.nodes[i]
		pid, err := readPidFile(filepath.Join(n.cfg.DataDir, PidFileName))
		if err != nil {
			return time.Time{}, fmt.Errorf("process driver: %s: %w (is it running as meridian node?)", n.id, err)
		}
		proc := fmt.Sprintf("/proc/%d", pid)
		if n.exe, err = os.Readlink(proc + "/exe"); err != nil {
			return time.Time{}, fmt.Errorf("process driver: %s (pid %d): %w", n.id, pid, err)
		}
		n.exe = strings.TrimSuffix(n.exe, " (deleted)")
		cmdline, err := os.ReadFile(proc + "/cmdline")
		if err != nil {
			return time.Time{}, fmt.Errorf("process driver: %s (pid %d): %w", n.id, pid, err)
		}
		n.args = strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")[1:]
		if n.dir, err = os.Readlink(proc + "/cwd"); err != nil {
			return time.Time{}, fmt.Errorf("process driver: %s (pid %d): %w", n.id, pid, err)
		}
		pids[i] = pid
	}
	for i, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return time.Time{}, fmt.Errorf("process driver: killing %s (pid %d): %w", d.nodes[i].id, pid, err)
		}
	}
	// Not our children: wait until each is gone, or a zombie.
	for i, pid := range pids {
		for alive(pid) {
			if err := wait.Sleep(ctx, 5*time.Millisecond); err != nil {
				return time.Time{}, err
			}
		}
		fmt.Fprintf(d.log, "process driver: killed %s (pid %d)\n", d.nodes[i].id, pid)
	}
	return time.Now(), nil
}

// alive reports whether process pid exists and is not a zombie whose
// threads have all exited. A killed process's main thread turns zombie
// while its other threads may still be exiting, holding the open files
// (the store's lock among them): until the last is gone, it is alive.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid)); err == nil && len(tasks) > 1 {
		return true
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

// Held opens each killed node's store offline and reads keys.
func (d *processDriver) Held(ctx context.Context, keys []string) (map[string][]api.ReplicaState, error) {
	out := make(map[string][]api.ReplicaState, len(keys))
	for _, n := range d.nodes {
		if err := readHeld(n.cfg.DataDir, n.cfg.Encryption.KeyFile, n.id, d.region, d.keyspace, keys, out); err != nil {
			return nil, fmt.Errorf("process driver: %w", err)
		}
	}
	return out, nil
}

// readHeld opens the store in dataDir (of node id in region; keyFile its
// encryption key file, "" for none) offline and appends its state of
// each key to out[key].
func readHeld(dataDir, keyFile, id, region, keyspace string, keys []string, out map[string][]api.ReplicaState) error {
	var kr *store.Keyring
	if keyFile != "" {
		var err error
		if kr, err = store.LoadKeyFile(keyFile); err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
	}
	st, err := store.Open(dataDir, &store.Options{NodeID: id, Keyring: kr})
	if err != nil {
		return fmt.Errorf("opening the store of %s offline: %w", id, err)
	}
	for _, key := range keys {
		obj, err := st.Get(keyspace, []byte(key))
		if err != nil {
			st.Close()
			return fmt.Errorf("reading %q from %s: %w", key, id, err)
		}
		rs := api.ReplicaState{Node: id, DC: region, Values: []string{}}
		if obj != nil {
			rs.Version = obj.Clock
			for _, s := range obj.Siblings {
				if !s.Deleted {
					rs.Values = append(rs.Values, string(s.Value))
				}
			}
			rs.Deleted = len(rs.Values) == 0 && len(obj.Siblings) > 0
		}
		// Every node's state counts, replica of the key or not: a
		// fallback's copy is in the region too.
		out[key] = append(out[key], rs)
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("closing the store of %s: %w", id, err)
	}
	return nil
}

// Restore starts every node of the region again, detached.
func (d *processDriver) Restore(ctx context.Context) error {
	var errs []error
	for _, n := range d.nodes {
		if n.exe == "" {
			continue // never killed
		}
		logf, err := os.OpenFile(filepath.Join(n.cfg.DataDir, "meridian.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cmd := exec.Command(n.exe, n.args...)
		cmd.Dir = n.dir
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		err = cmd.Start()
		logf.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("process driver: starting %s: %w", n.id, err))
			continue
		}
		fmt.Fprintf(d.log, "process driver: started %s again (pid %d; output in %s)\n", n.id, cmd.Process.Pid, filepath.Join(n.cfg.DataDir, "meridian.log"))
		// Reap it if it exits while the drill runs; it outlives the drill
		// otherwise.
		go cmd.Wait()
	}
	return errors.Join(errs...)
}
