package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meridian-kv/meridian/client"
	"github.com/meridian-kv/meridian/telemetry/otelsetup"
)

// cliClient is a client with the CLI's telemetry: a span per command,
// exported as the OTEL_* variables say.
type cliClient struct {
	*client.Client
	tel *otelsetup.Providers
}

// Close closes the client and flushes its spans.
func (c *cliClient) Close() error {
	return errors.Join(c.Client.Close(), c.tel.Shutdown(context.Background()))
}

func (g *globalFlags) dial(ctx context.Context) (*cliClient, error) {
	path := g.clientConfigPath()
	cfg, err := client.LoadConfig(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w\nstart a local cluster with `meridian dev`, or pass --config", err)
		}
		return nil, err
	}
	if g.node != "" {
		var ids []string
		for _, n := range cfg.Nodes {
			ids = append(ids, n.ID)
			if n.ID == g.node {
				cfg.Nodes, cfg.DC = []client.Node{n}, n.DC
				break
			}
		}
		if len(cfg.Nodes) != 1 || cfg.Nodes[0].ID != g.node {
			return nil, fmt.Errorf("--node %s: %s lists no such node (it lists %s)", g.node, path, strings.Join(ids, ", "))
		}
	}
	tel, err := otelsetup.Setup(ctx, otelsetup.Config{ServiceName: "meridian-cli", DC: cfg.DC})
	if err != nil {
		return nil, err
	}
	cfg.TracerProvider = tel.Tracer
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		tel.Shutdown(context.Background())
		return nil, err
	}
	return &cliClient{Client: c, tel: tel}, nil
}

// withClient runs f with a client dialled from the global flags and closes
// the client (flushing the command's span) afterwards.
func (g *globalFlags) withClient(cmd *cobra.Command, f func(ctx context.Context, c *cliClient) error) error {
	ctx := cmd.Context()
	c, err := g.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return f(ctx, c)
}

type writeFlags struct {
	keyspace, consistency, context string
	json                           bool
}

func (w *writeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&w.keyspace, "keyspace", "", "keyspace (default: the client configuration's)")
	cmd.Flags().StringVar(&w.consistency, "consistency", "", "ONE, LOCAL_ONE, LOCAL_QUORUM, EACH_QUORUM, QUORUM, ALL, or per datacenter like east=2,west=1 (default: the keyspace's)")
	cmd.Flags().StringVar(&w.context, "context", "", "causal context from a previous get: supersede what it saw")
	cmd.Flags().BoolVar(&w.json, "json", false, "print the result as JSON")
}

func newPutCmd(g *globalFlags) *cobra.Command {
	var w writeFlags
	cmd := &cobra.Command{
		Use:   "put KEY VALUE",
		Short: "Write a value (VALUE - reads it from standard input)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			value := []byte(args[1])
			if args[1] == "-" {
				var err error
				if value, err = io.ReadAll(cmd.InOrStdin()); err != nil {
					return err
				}
			}
			return runWrite(cmd, g, &w, []byte(args[0]), value, false)
		},
	}
	w.register(cmd)
	return cmd
}

func newDeleteCmd(g *globalFlags) *cobra.Command {
	var w writeFlags
	cmd := &cobra.Command{
		Use:   "delete KEY",
		Short: "Delete a key (pass --context to supersede exactly what a get returned)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWrite(cmd, g, &w, []byte(args[0]), nil, true)
		},
	}
	w.register(cmd)
	return cmd
}

func runWrite(cmd *cobra.Command, g *globalFlags, w *writeFlags, key, value []byte, del bool) error {
	return g.withClient(cmd, func(ctx context.Context, c *cliClient) error {
		return printWrite(ctx, cmd, c, w, key, value, del)
	})
}

func printWrite(ctx context.Context, cmd *cobra.Command, c *cliClient, w *writeFlags, key, value []byte, del bool) error {
	opts := &client.WriteOptions{Keyspace: w.keyspace, Consistency: w.consistency, Context: w.context}
	var res *client.PutResult
	var err error
	if del {
		res, err = c.Delete(ctx, key, opts)
	} else {
		res, err = c.Put(ctx, key, value, opts)
	}
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if w.json {
		return printJSON(out, map[string]any{
			"context": res.Context, "siblings": res.Siblings, "acked": res.Acked,
			"warning": res.Warning, "coordinator": res.Coordinator,
		})
	}
	if res.Warning != "" {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning:", res.Warning)
	}
	fmt.Fprintf(out, "ok (coordinator %s, acked %s, siblings %d)\ncontext: %s\n", res.Coordinator, formatCounts(res.Acked), res.Siblings, res.Context)
	return nil
}

func newGetCmd(g *globalFlags) *cobra.Command {
	var keyspace, consistency string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Read a key: every sibling and the causal context",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *cliClient) error {
				res, err := c.Get(ctx, []byte(args[0]), &client.ReadOptions{Keyspace: keyspace, Consistency: consistency})
				if err != nil {
					return err
				}
				values := make([]string, len(res.Values))
				for i, v := range res.Values {
					values[i] = string(v)
				}
				out := cmd.OutOrStdout()
				if asJSON {
					return printJSON(out, map[string]any{
						"values": values, "context": res.Context, "siblings": len(values),
						"deleted": res.Deleted, "writers": res.Writers, "acked": res.Acked,
					})
				}
				switch {
				case len(values) == 0 && res.Deleted:
					fmt.Fprintln(out, "(deleted)")
				case len(values) == 0:
					fmt.Fprintln(out, "(not found)")
				case len(values) > 1:
					fmt.Fprintf(out, "%d siblings (concurrent writes; write back with the context to resolve):\n", len(values))
					for i, v := range values {
						fmt.Fprintf(out, "  [%s] %s\n", res.Writers[i], v)
					}
				default:
					fmt.Fprintln(out, values[0])
				}
				if res.Context != "" {
					fmt.Fprintf(out, "context: %s\n", res.Context)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&keyspace, "keyspace", "", "keyspace (default: the client configuration's)")
	cmd.Flags().StringVar(&consistency, "consistency", "", "read consistency (default: the keyspace's)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print {values, context, ...} as JSON")
	return cmd
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func formatCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, ",")
}
