package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/telemetry"
	"github.com/meridian-kv/meridian/telemetry/otelsetup"
)

func newNodeCmd(g *globalFlags) *cobra.Command {
	var logFormat string
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
			tel, err := otelsetup.Setup(cmd.Context(), otelsetup.Config{NodeID: cfg.ID, DC: cfg.DC, Rack: cfg.Rack})
			if err != nil {
				return err
			}
			n, err := node.Start(*cfg, nodeOptions(log, tel))
			if err != nil {
				tel.Shutdown(context.Background())
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			select {
			case <-ctx.Done():
			case <-n.Failed():
				// The node stopped itself (another live node has its id).
				tel.Shutdown(context.Background())
				return n.Err()
			}
			log.Info("shutting down")
			return errors.Join(n.Close(), tel.Shutdown(context.Background()))
		},
	}
	cmd.Flags().StringVar(&logFormat, "log-format", "json", "log format: json or text")
	return cmd
}

// nodeOptions hands a node its logger and telemetry providers.
func nodeOptions(log *slog.Logger, tel *otelsetup.Providers) node.Options {
	return node.Options{Logger: log, TracerProvider: tel.Tracer, MeterProvider: tel.Meter, MetricsHandler: tel.Metrics}
}
