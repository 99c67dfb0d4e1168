// Package devcluster writes the configuration, certificates and keys of a
// local multi-region Meridian cluster on one machine, for `meridian dev`
// and for tests that run a whole cluster:
//
//	cluster, err := devcluster.Write(devcluster.Options{Dir: dir, Regions: []string{"east", "west"}})
//	// cluster.Nodes are the nodes' configurations (also written to
//	// cluster.NodeFiles); cluster.ClientTLS is a superuser's certificate.
//
// Everything it writes can also be made with `meridian cert` and
// `meridian config`; a second Write on the same directory reuses its CA (while
// it has more than a day left), gossip key and encryption key, so a
// restarted dev cluster finds its data.
package devcluster
