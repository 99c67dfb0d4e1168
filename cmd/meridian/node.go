package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/telemetry"
	"github.com/meridian-kv/meridian/telemetry/otelsetup"
)

func newNodeCmd(g *globalFlags) *cobra.Command {
	var logFormat string
	var watchInterval time.Duration
	cmd := &cobra.Command{
		Use:   "node --config FILE",
		Short: "Run one node from its YAML configuration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			configPath := g.config
			if configPath == "" {
				return fmt.Errorf("--config is required (meridian dev --config-only writes one per node)")
			}
			cfg, err := node.LoadConfig(configPath)
			if err != nil {
				return err
			}
			if err := telemetry.CheckLogFormat(logFormat); err != nil {
				return err
			}
			log := slog.New(telemetry.NewLogHandler(os.Stderr, logFormat, slog.LevelInfo))
			log.Info("garbage collector", "settings", tuneGC().String())
			tel, err := otelsetup.Setup(cmd.Context(), otelsetup.Config{NodeID: cfg.ID, DC: cfg.DC, Rack: cfg.Rack})
			if err != nil {
				return err
			}
			opts := nodeOptions(log, tel)
			opts.ConfigPath = configPath
			n, err := node.Start(*cfg, opts)
			if err != nil {
				tel.Shutdown(context.Background())
				return err
			}
			// The store's lock makes this process the data directory's
			// only node: its pid file names it to the drill's process
			// driver (and to operators' scripts).
			pidFile := filepath.Join(cfg.DataDir, PidFileName)
			if err := writePidFile(pidFile); err != nil {
				log.Warn("could not write the pid file", "path", pidFile, "err", err)
			}
			defer removePidFile(pidFile)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// SIGHUP, or a change of the TLS files, reloads certificates
			// and the revocation list (node.Reload logs the outcome).
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			watchCtx, stopWatch := context.WithCancel(ctx)
			watched := make(chan struct{})
			go func() {
				defer close(watched)
				n.WatchFiles(watchCtx, watchInterval)
			}()
			defer func() { stopWatch(); <-watched }()
		wait:
			for {
				select {
				case <-ctx.Done():
					break wait
				case <-hup:
					log.Info("SIGHUP: reloading")
					n.Reload()
				case <-n.Failed():
					// The node stopped itself (another live node has its id).
					tel.Shutdown(context.Background())
					return n.Err()
				}
			}
			log.Info("shutting down")
			return errors.Join(n.Close(), tel.Shutdown(context.Background()))
		},
	}
	// The root's --config names the client configuration; this command
	// shadows it with its own flag, writing the same variable, because
	// here it names the node's configuration and is required.
	cmd.Flags().StringVar(&g.config, "config", "", "node configuration file (required; meridian dev --config-only writes one per node)")
	cmd.Flags().StringVar(&logFormat, "log-format", "json", "log format: json or text")
	cmd.Flags().DurationVar(&watchInterval, "watch-interval", 5*time.Second, "how often to check the configuration and TLS files for changes, which reload certificates and the revocation list (0 = only on SIGHUP)")
	return cmd
}

// nodeOptions hands a node its logger and telemetry providers.
func nodeOptions(log *slog.Logger, tel *otelsetup.Providers) node.Options {
	return node.Options{Logger: log, TracerProvider: tel.Tracer, MeterProvider: tel.Meter, MetricsHandler: tel.Metrics}
}

// PidFileName is the file in a node's data directory that holds the pid of
// the process running it, while it runs.
const PidFileName = "meridian.pid"

func writePidFile(path string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// removePidFile removes path if it still names this process.
func removePidFile(path string) {
	if pid, err := readPidFile(path); err == nil && pid == os.Getpid() {
		os.Remove(path)
	}
}

// readPidFile returns the pid a pid file holds.
func readPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s holds no pid: %q", path, b)
	}
	return pid, nil
}
