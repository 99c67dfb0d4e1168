package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newStatusCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List the cluster's nodes with their datacenter, rack and state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *cliClient) error {
				res, err := c.Status(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), map[string]any{"node": res.Node, "nodes": res.Nodes})
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "ID\tDC\tRACK\tADDR\tSTATE\tRTT\tHINTS\tHINT BYTES\n")
				for _, n := range res.Nodes {
					rtt := "-"
					if n.State == "up" && n.ID != res.Node {
						rtt = fmt.Sprintf("%.1fms", n.RTTms)
					}
					hints, hintBytes := "?", "?"
					if n.HintsPending >= 0 {
						hints, hintBytes = fmt.Sprint(n.HintsPending), fmt.Sprint(n.HintBytes)
					}
					state := n.State
					if n.ReadGated {
						state += " (reads gated until repaired)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, n.DC, n.Rack, n.Addr, state, rtt, hints, hintBytes)
				}
				fmt.Fprintf(tw, "(as seen by %s)\n", res.Node)
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newRingCmd(g *globalFlags) *cobra.Command {
	var keyspace string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ring KEY",
		Short: "Print the preference list of a key: replicas and fallbacks per datacenter",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *cliClient) error {
				res, err := c.Ring(ctx, keyspace, []byte(args[0]))
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), map[string]any{"token": res.Token, "replicas": res.Replicas, "fallbacks": res.Fallbacks, "short": res.Short})
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "token %016x\n", res.Token)
				for _, dc := range sortedKeys(res.Replicas) {
					fmt.Fprintf(out, "%s: replicas %s", dc, strings.Join(res.Replicas[dc], ", "))
					if fb := res.Fallbacks[dc]; len(fb) > 0 {
						fmt.Fprintf(out, "; fallbacks %s", strings.Join(fb, ", "))
					}
					if s := res.Short[dc]; s > 0 {
						fmt.Fprintf(out, "; short by %d", s)
					}
					fmt.Fprintln(out)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&keyspace, "keyspace", "", "keyspace (default: the client configuration's)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func newInspectCmd(g *globalFlags) *cobra.Command {
	var keyspace string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect KEY",
		Short: "Ask every replica of a key, in every region, what it holds",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *cliClient) error {
				res, err := c.Inspect(ctx, keyspace, []byte(args[0]))
				if err != nil {
					return err
				}
				if res.Replicas == nil {
					return fmt.Errorf("meridian: inspect %q: the node sent no answer (a node older than this CLI may drop a reply too large to send); retry with --node naming another node", args[0])
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), map[string]any{"token": res.Token, "replicas": res.Replicas})
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "NODE\tDC\tVALUES\tVERSION\n")
				for _, r := range res.Replicas {
					vals := fmt.Sprintf("%q", r.Values)
					switch {
					case r.Error != "":
						vals = "error: " + r.Error
					case r.Deleted:
						vals = "(deleted)"
					case len(r.Values) == 0:
						vals = "(none)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Node, r.DC, vals, formatVersion(r.Version))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&keyspace, "keyspace", "", "keyspace (default: the client configuration's)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func formatVersion(v map[string]uint64) string {
	if len(v) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(v))
	for _, k := range sortedKeys(v) {
		parts = append(parts, fmt.Sprintf("%s:%d", k, v[k]))
	}
	return strings.Join(parts, ",")
}
