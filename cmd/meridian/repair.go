package main

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/client"
)

func newRepairCmd(g *globalFlags) *cobra.Command {
	var keyspace string
	var regions []string
	var now, asJSON bool
	var timeout time.Duration
	var maxRate string
	cmd := &cobra.Command{
		Use:   "repair [--keyspace KS] [--regions east,west] --now",
		Short: "Run Merkle anti-entropy repair now, between every pair of replicas of the named regions",
		Long: `repair compares every replica of every range of the ring with every other
replica in the named regions (all by default) by Merkle trees, sends only the
keys that differ, and merges them — it never overwrites and never brings back
what a delete superseded. Progress is checkpointed after every range on the
node that runs it: run the same command again to resume a repair that stopped.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !now {
				return fmt.Errorf("the nodes repair on their own in the windows of their configuration (see meridian repair status); pass --now to start a repair now")
			}
			rate, err := parseRate(maxRate)
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *cliClient) error {
				ctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				errOut := cmd.ErrOrStderr()
				opts := &client.RepairOptions{Keyspace: keyspace, Regions: regions, BytesPerSecond: rate}
				res, err := c.Repair(ctx, opts, func(p *api.RepairProgress) {
					if !asJSON {
						fmt.Fprintf(errOut, "\r%s", progressLine(p))
					}
				})
				if !asJSON {
					fmt.Fprintln(errOut)
				}
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), res)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "repair done in %v: %d ranges of %d region pairs, %d keys compared, %d fixed, %d bytes sent\n",
					time.Duration(res.ElapsedMillis)*time.Millisecond, res.RangesDone, res.PairsTotal, res.KeysCompared, res.KeysFixed, res.BytesSent)
				return nil
			})
		},
	}
	cmd.AddCommand(newRepairStatusCmd(g))
	cmd.Flags().StringVar(&keyspace, "keyspace", "", "keyspace (default: the client configuration's)")
	cmd.Flags().StringSliceVar(&regions, "regions", nil, "regions whose replicas to compare (default: all)")
	cmd.Flags().BoolVar(&now, "now", false, "start the repair now")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the final report as JSON")
	cmd.Flags().DurationVar(&timeout, "timeout", 24*time.Hour, "give up after this long (progress is kept)")
	cmd.Flags().StringVar(&maxRate, "max-rate", "", "bound repair traffic to each destination region, bytes per second (e.g. 500KiB, 20MiB; default: no limit)")
	return cmd
}

// parseRate parses a byte rate: a whole number of bytes, optionally with a
// KiB, MiB or GiB suffix (or KB, MB, GB, powers of 1000). "" is 0.
func parseRate(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("--max-rate %q: want a positive number of bytes per second, like 500KiB or 20MiB", s)
	}
	return n * mult, nil
}

// progressLine renders a progress bar: [#####.....] 50% ranges 8/16 ...
func progressLine(p *api.RepairProgress) string {
	const width = 30
	frac := 0.0
	if p.RangesTotal > 0 {
		frac = float64(p.RangesDone) / float64(p.RangesTotal)
	}
	filled := int(frac * width)
	return fmt.Sprintf("[%s%s] %3.0f%% %s ranges %d/%d  keys fixed %d  sent %d B",
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), 100*frac, p.Pair, p.RangesDone, p.RangesTotal, p.KeysFixed, p.BytesSent)
}

func newRepairStatusCmd(g *globalFlags) *cobra.Command {
	var keyspace string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Per region pair: the last completed repair, the pass in progress and the next window",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *cliClient) error {
				res, err := c.RepairStatus(ctx, keyspace)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), map[string]any{"pairs": res.Pairs})
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "PAIR\tLAST FULL REPAIR\tPASS\tKEYS COMPARED\tKEYS FIXED\tBYTES SENT\tNEXT WINDOW\tSCHEDULE\n")
				for _, p := range res.Pairs {
					last := "never"
					if p.LastFullCompleted > 0 {
						last = time.Unix(p.LastFullCompleted, 0).UTC().Format(time.RFC3339)
					}
					next := "on demand (--now)"
					switch {
					case p.NextWindow < 0:
						next = "open now"
					case p.NextWindow > 0:
						next = time.Unix(p.NextWindow, 0).UTC().Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%.0f%%\t%d\t%d\t%d\t%s\t%s\n", p.Pair, last, 100*p.PassFraction, p.KeysCompared, p.KeysFixed, p.BytesSent, next, p.Schedule)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&keyspace, "keyspace", "", "keyspace (default: the client configuration's)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}
