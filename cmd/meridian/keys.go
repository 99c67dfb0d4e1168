package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/meridian-kv/meridian/store"
)

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage a node's encryption-at-rest key file",
		Long: `A key file holds a node's AES-256 encryption keys by id and names the
active one, which seals every value written from then on:

  active: k2
  keys:
    k1: <base64 of 32 bytes>
    k2: <base64 of 32 bytes>

Name it in the node configuration as encryption: {key_file: PATH}. It must be
mode 0600 (nodes refuse it otherwise). To rotate: add a key with --activate,
reload or restart the node, run meridian reencrypt, then remove the old key.`,
		Args: cobra.NoArgs,
	}
	var file, id string
	var activate bool
	gen := &cobra.Command{
		Use:   "generate --file PATH [--id ID] [--activate]",
		Short: "Add a new random key to a key file (created 0600 if missing)",
		Long: `generate adds a new random AES-256 key to the key file, creating the file
(mode 0600) if it does not exist. The new key becomes the active one only with
--activate (or when the file had no key): a key can be added to every node's
file first and activated later. Nodes see the change when they reload their
keys or restart.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("--file is required")
			}
			got, err := store.GenerateKey(file, id, activate)
			if err != nil {
				return err
			}
			kr, err := store.LoadKeyFile(file)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added key %s to %s (active key: %s; keys: %s)\n", got, file, kr.Active(), strings.Join(kr.IDs(), ", "))
			return nil
		},
	}
	gen.Flags().StringVar(&file, "file", "", "key file")
	gen.Flags().StringVar(&id, "id", "", "id of the new key (default: the first free of k1, k2, …)")
	gen.Flags().BoolVar(&activate, "activate", false, "make the new key the active one")

	var rmFile, rmID string
	rm := &cobra.Command{
		Use:   "remove --file PATH --id ID",
		Short: "Remove a key that no value is sealed under any more (after meridian reencrypt)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rmFile == "" || rmID == "" {
				return errors.New("--file and --id are required")
			}
			if err := store.RemoveKey(rmFile, rmID); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed key %s from %s\n", rmID, rmFile)
			return nil
		},
	}
	rm.Flags().StringVar(&rmFile, "file", "", "key file")
	rm.Flags().StringVar(&rmID, "id", "", "id of the key to remove")
	cmd.AddCommand(gen, rm)
	return cmd
}

func newReencryptCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "reencrypt [--node ID]",
		Short: "Re-seal every stored value under each node's active encryption key",
		Long: `reencrypt asks every node (or only the one --node names) to rewrite each
value and hint it stores sealed under a key other than its active one (or not
sealed at all, from before encryption was turned on), and reports per node how
many it rewrote, by old key id. Writes to a key wait for at most one batch of
the rewrite. Once every node reports no error and nothing unreadable, the old
keys can be removed from the key files. It needs the cluster admin principal.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *cliClient) error {
				ctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				res, err := c.Reencrypt(ctx, g.node == "")
				if err != nil {
					return err
				}
				if asJSON {
					if err := printJSON(cmd.OutOrStdout(), map[string]any{"nodes": res.Nodes}); err != nil {
						return err
					}
				} else {
					tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
					fmt.Fprintf(tw, "NODE\tACTIVE KEY\tREWRITTEN\tCURRENT\tUNREADABLE\tFROM\tERROR\n")
					for _, n := range res.Nodes {
						fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", n.Node, orDash(n.ActiveKey), n.Rewritten, n.Current, n.Unreadable, byKeyString(n.ByKey), orDash(n.Error))
					}
					if err := tw.Flush(); err != nil {
						return err
					}
				}
				var failed []string
				for _, n := range res.Nodes {
					if n.Error != "" || n.Unreadable > 0 {
						failed = append(failed, n.Node)
					}
				}
				if len(failed) > 0 {
					return fmt.Errorf("reencrypt did not finish on %s: keep the old keys until it does", strings.Join(failed, ", "))
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Hour, "give up after this long (run again to finish)")
	return cmd
}

// byKeyString renders rewritten counts by old key id, e.g. "k1=10 unsealed=2".
func byKeyString(m map[string]int64) string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var parts []string
	for _, id := range ids {
		name := id
		if name == "" {
			name = "unsealed"
		}
		parts = append(parts, fmt.Sprintf("%s=%d", name, m[id]))
	}
	return orDash(strings.Join(parts, " "))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
