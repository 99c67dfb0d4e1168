package main

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// defaultDevDir is where meridian dev keeps its cluster unless told.
const defaultDevDir = ".meridian-dev"

type globalFlags struct {
	config string
	node   string
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "meridian",
		Short:         "Meridian: a multi-region Dynamo-style key-value store",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.config, "config", "", "client configuration file (default $MERIDIAN_CONFIG, else "+filepath.Join(defaultDevDir, "client.yaml")+")")
	root.PersistentFlags().StringVar(&g.node, "node", "", "talk to this node only (by id), e.g. to see the cluster as it sees it")
	root.AddCommand(newDevCmd(), newNodeCmd(g),
		newPutCmd(g), newGetCmd(g), newDeleteCmd(g), newStatusCmd(g), newRingCmd(g), newInspectCmd(g), newRepairCmd(g))
	root.AddCommand(newCertCmd())
	root.AddCommand(newGrantCmd(g), newRevokeCmd(g), newGrantsCmd(g))
	root.AddCommand(newConfigCmd(), newHealthCmd())
	root.AddCommand(newKeysCmd(), newReencryptCmd(g))
	root.AddCommand(newBenchCmd(g), newDrillCmd(g))
	return root
}

func (g *globalFlags) clientConfigPath() string {
	if g.config != "" {
		return g.config
	}
	if env := os.Getenv("MERIDIAN_CONFIG"); env != "" {
		return env
	}
	return filepath.Join(defaultDevDir, "client.yaml")
}
