package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/meridian-kv/meridian/api"
)

func newRepairCmd(g *globalFlags) *cobra.Command {
	var keyspace string
	var regions []string
	var now, asJSON bool
	var timeout time.Duration
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
				return fmt.Errorf("repair runs only on demand so far: pass --now (scheduled windows come with the repair scheduler)")
			}
			return g.withClient(cmd, func(ctx context.Context, c *cliClient) error {
				ctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				errOut := cmd.ErrOrStderr()
				res, err := c.Repair(ctx, keyspace, regions, func(p *api.RepairProgress) {
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
	return cmd
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
				fmt.Fprintf(tw, "PAIR\tLAST FULL REPAIR\tPASS\tKEYS COMPARED\tKEYS FIXED\tBYTES SENT\tNEXT WINDOW\n")
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
					fmt.Fprintf(tw, "%s\t%s\t%.0f%%\t%d\t%d\t%d\t%s\n", p.Pair, last, 100*p.PassFraction, p.KeysCompared, p.KeysFixed, p.BytesSent, next)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&keyspace, "keyspace", "", "keyspace (default: the client configuration's)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}
