package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/meridian-kv/meridian/api"
	"github.com/meridian-kv/meridian/grants"
)

func newGrantCmd(g *globalFlags) *cobra.Command  { return newGrantOrRevokeCmd(g, false) }
func newRevokeCmd(g *globalFlags) *cobra.Command { return newGrantOrRevokeCmd(g, true) }

func newGrantOrRevokeCmd(g *globalFlags, revoke bool) *cobra.Command {
	var asJSON bool
	verb, past, prep := "grant", "granted", "to"
	if revoke {
		verb, past, prep = "revoke", "revoked", "from"
	}
	cmd := &cobra.Command{
		Use:   verb + " PRINCIPAL PERMISSION KEYSPACE",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " a permission (read, write or admin) on a keyspace ('*' = every keyspace) " + prep + " a principal",
		Long: `A principal is the name (common name) of a client certificate. Permissions:
  read    get keys of the keyspace
  write   put and delete keys of the keyspace
  admin   read and write, inspect and repair the keyspace, and grant on it;
          admin on '*' is cluster administration (status, ring, every keyspace)
Nothing is allowed without a grant, except to the superusers of the node
configuration (auth.superusers). Grants are stored in the cluster and reach
every node of every region within seconds. You need admin on the keyspace.`,
		Example: "  meridian " + verb + " alice write default\n  meridian " + verb + " ops admin '*'",
		Args:    cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			principal, perm, keyspace := args[0], args[1], args[2]
			p, err := grants.ParsePermission(perm)
			if err != nil {
				return err
			}
			if err := grants.CheckPrincipal(principal); err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *cliClient) error {
				var res *api.GrantResponse
				var err error
				if revoke {
					res, err = c.Revoke(ctx, principal, p.String(), keyspace)
				} else {
					res, err = c.Grant(ctx, principal, p.String(), keyspace)
				}
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), res)
				}
				out := cmd.OutOrStdout()
				switch {
				case res.Changed && res.Reached == res.Members:
					fmt.Fprintf(out, "%s %s on %s %s %s (stored on %s and on all %d other nodes)\n",
						past, p, ksName(res.Keyspace), prep, principal, res.Node, res.Members)
				case res.Changed:
					fmt.Fprintf(out, "%s %s on %s %s %s (stored on %s; %d of %d other nodes have it, the rest get it within seconds of being reachable)\n",
						past, p, ksName(res.Keyspace), prep, principal, res.Node, res.Reached, res.Members)
				default:
					fmt.Fprintf(out, "no change: %s was already %s %s on %s\n", principal, past, p, ksName(res.Keyspace))
				}
				fmt.Fprintf(out, "%s may now on %s: %s\n", principal, ksName(res.Keyspace), res.Effect)
				if res.Warning != "" {
					fmt.Fprintln(cmd.ErrOrStderr(), "warning:", res.Warning)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func ksName(ks string) string {
	if ks == grants.AllKeyspaces {
		return "every keyspace ('*')"
	}
	return fmt.Sprintf("keyspace %q", ks)
}

func newGrantsCmd(g *globalFlags) *cobra.Command {
	var principal string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "grants [--principal P]",
		Short: "List grants: your own, and all grants on the keyspaces you administer",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *cliClient) error {
				res, err := c.Grants(ctx, principal)
				if err != nil {
					return err
				}
				if asJSON {
					if res.Grants == nil {
						res.Grants = []api.Grant{}
					}
					return printJSON(cmd.OutOrStdout(), res)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "PRINCIPAL\tKEYSPACE\tPERMISSIONS\n")
				for _, gr := range res.Grants {
					perms := strings.Join(gr.Permissions, ",")
					if gr.Superuser {
						perms += " (superuser, from the node configuration)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", gr.Principal, gr.Keyspace, perms)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&principal, "principal", "", "only this principal's grants")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}
