package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/meridian-kv/meridian/node"
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
			log := newLogger(logFormat)
			n, err := node.Start(*cfg, node.Options{Logger: log})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			<-ctx.Done()
			log.Info("shutting down")
			return n.Close()
		},
	}
	cmd.Flags().StringVar(&logFormat, "log-format", "json", "log format: json or text")
	return cmd
}

func newLogger(format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}
