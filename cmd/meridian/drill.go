package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/drill"
)

type drillFlags struct {
	region, workload, consistency, driver string
	down, baseline, convergeTimeout       time.Duration
	rate                                  float64
	workers, keys                         int
	jsonFile, markdownFile, plotFile      string
	nodesDir, dockerCluster               string
	seed                                  uint64
}

func newDrillCmd(g *globalFlags) *cobra.Command {
	f := &drillFlags{}
	cmd := &cobra.Command{
		Use:   "drill --region R --down D",
		Short: "Rehearse losing a region: RPO, availability, convergence and a fail-back verdict",
		Long: `drill runs a recorded workload of unique values (a client in every region),
takes region R away for D through a fault driver, restores it, waits for the
cluster to converge (hints delivered, a repair of every pair since the
outage), then reads every key written back from every replica and checks the
history. It prints a Markdown report (and --json, --markdown, --plot files)
and exits 1 if any acknowledged write was lost or any delete undone.

Drivers: fence (default; an admin request to every node of --config that
makes it drop all traffic with the region, for clusters the drill cannot
otherwise touch) and process (SIGKILL the region's node processes by the
pid files in their data directories, restart them with the same binary and
--config; --nodes names the directory of their configurations) and docker
(docker kill the containers labelled meridian.dc=R, as deploy/compose and
the Terraform-on-Docker module label them, and docker start them again;
--docker-cluster picks the compose project or Terraform name when the
engine runs more than one cluster).

The numbers are defined in docs/drill.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDrill(cmd, g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.region, "region", "", "region to lose (required)")
	fl.DurationVar(&f.down, "down", 30*time.Second, "how long the region stays down")
	fl.DurationVar(&f.baseline, "baseline", 10*time.Second, "how long the workload runs before the loss")
	fl.StringVar(&f.workload, "workload", "A", "A (50 % reads, 45 % read-modify-writes, 5 % deletes), B (95 % reads) or W (writes only)")
	fl.Float64Var(&f.rate, "rate", 200, "workload steps per second, all regions together")
	fl.IntVar(&f.workers, "workers", 4, "workers per region")
	fl.IntVar(&f.keys, "keys", 500, "keys the workload spreads over")
	fl.StringVar(&f.consistency, "consistency", "LOCAL_QUORUM", "consistency of the workload's reads and writes")
	fl.StringVar(&f.driver, "driver", "fence", "how to lose the region: fence, process or docker")
	fl.StringVar(&f.nodesDir, "nodes", "", "process driver: the directory of the nodes' configurations (default: nodes/ beside --config)")
	fl.StringVar(&f.dockerCluster, "docker-cluster", "", "docker driver: the cluster's containers (label meridian.cluster: the compose project or the Terraform name), when the engine runs more than one")
	fl.DurationVar(&f.convergeTimeout, "converge-timeout", 3*time.Minute, "how long to wait for convergence after the restore")
	fl.StringVar(&f.jsonFile, "json", "", "write the report as JSON to this file (- for stdout, instead of Markdown)")
	fl.StringVar(&f.markdownFile, "markdown", "", "write the Markdown report to this file too")
	fl.StringVar(&f.plotFile, "plot", "", "draw throughput and p99 over time as a PNG to this file")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the workload's choices")
	return cmd
}

func runDrill(cmd *cobra.Command, g *globalFlags, f *drillFlags) error {
	if f.region == "" {
		return errors.New("--region is required")
	}
	clientFile := g.clientConfigPath()
	cfg, err := client.LoadConfig(clientFile)
	if err != nil {
		return err
	}
	if g.node != "" {
		return errors.New("--node does not apply to drill: it talks to every node")
	}
	var driver drill.Driver
	switch f.driver {
	case "fence":
		fd := drill.NewFence(cfg, f.region, nil)
		fd.For = f.down + 2*time.Minute
		driver = fd
	case "process":
		pd, err := newProcessDriver(cfg, clientFile, f.nodesDir, f.region, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		driver = pd
	case "docker":
		dd, err := newDockerDriver(cmd.Context(), f.region, f.dockerCluster, cfg.Keyspace, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		driver = dd
	default:
		return fmt.Errorf("unknown --driver %q: fence, process or docker", f.driver)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errOut := cmd.ErrOrStderr()
	fmt.Fprintf(errOut, "drill: region %s down for %v (%s driver), workload %s at %.0f steps/s, %s\n", f.region, f.down, f.driver, f.workload, f.rate, f.consistency)
	rep, err := drill.Run(ctx, drill.Options{
		Client: cfg, Region: f.region, Down: f.down, Baseline: f.baseline, Workload: f.workload, Rate: f.rate,
		WorkersPerRegion: f.workers, Keys: f.keys, Consistency: f.consistency, Driver: driver,
		ConvergeTimeout: f.convergeTimeout, Progress: errOut, Seed: f.seed,
	})
	if rep != nil {
		if werr := writeDrillReport(cmd, f, rep); werr != nil {
			return errors.Join(err, werr)
		}
	}
	if err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("drill: %d acknowledged writes lost, %d deletes undone, %d phantom values", rep.AckedLost, rep.Resurrected, rep.Phantoms)
	}
	return nil
}

func writeDrillReport(cmd *cobra.Command, f *drillFlags, rep *drill.Report) error {
	out := cmd.OutOrStdout()
	if f.jsonFile == "-" {
		if err := rep.WriteJSON(out); err != nil {
			return err
		}
	} else if err := rep.WriteMarkdown(out); err != nil {
		return err
	}
	write := func(path string, fn func(*os.File) error) error {
		if path == "" || path == "-" {
			return nil
		}
		file, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := fn(file); err != nil {
			file.Close()
			return err
		}
		return file.Close()
	}
	return errors.Join(
		write(f.jsonFile, func(w *os.File) error { return rep.WriteJSON(w) }),
		write(f.markdownFile, func(w *os.File) error { return rep.WriteMarkdown(w) }),
		write(f.plotFile, func(w *os.File) error { return rep.WritePlot(w) }),
	)
}
