package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/meridian-kv/meridian/node"
	"github.com/meridian-kv/meridian/wan"
)

// Default certificate lifetimes.
const (
	defaultCALifetime   = "10y"
	defaultLeafLifetime = "1y"
)

type certFlags struct {
	dir string
}

// signFlags are the flags of one command that writes certificates.
type signFlags struct {
	*certFlags
	caKey     string
	lifetime  string
	overwrite bool
}

func newCertCmd() *cobra.Command {
	f := &certFlags{}
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Create and list the cluster CA and node and client certificates",
		Long: `cert manages a certificates directory (--certs-dir): the cluster CA as
ca.pem and ca-key.pem, and each node's or client's certificate and key as
NAME.pem and NAME-key.pem (keys are written 0600). Point a node's tls.ca,
tls.cert and tls.key, or a client configuration's, at them.

  meridian cert create-ca
  meridian cert create-node --id east-1 --dc east --host 10.0.0.5 --host east-1.internal
  meridian cert create-client --name alice
  meridian cert list

Existing files are never replaced without --overwrite. To rotate a node's
certificate, create-node --overwrite into the directory its configuration
names (the node reloads it on SIGHUP or when the files change); to revoke a
certificate, add the serial cert list shows to tls.revoked or
tls.revoked_file of every node and reload them (docs/security.md).`,
		Args: cobra.NoArgs,
	}
	cmd.PersistentFlags().StringVar(&f.dir, "certs-dir", "certs", "certificates directory")
	cmd.AddCommand(newCertCreateCACmd(f), newCertCreateNodeCmd(f), newCertCreateClientCmd(f), newCertListCmd(f))
	return cmd
}

// signingFlags adds the flags of a command that writes certificates.
func signingFlags(cmd *cobra.Command, cf *certFlags, lifetime string, caKey bool) *signFlags {
	f := &signFlags{certFlags: cf}
	if caKey {
		cmd.Flags().StringVar(&f.caKey, "ca-key", "", "CA private key (default CERTS-DIR/ca-key.pem)")
	}
	cmd.Flags().StringVar(&f.lifetime, "lifetime", lifetime, "validity: a number of years (10y), days (90d) or a Go duration (720h)")
	cmd.Flags().BoolVar(&f.overwrite, "overwrite", false, "replace existing files")
	return f
}

func newCertCreateCACmd(cf *certFlags) *cobra.Command {
	var name string
	var f *signFlags
	cmd := &cobra.Command{
		Use:   "create-ca",
		Short: "Create the cluster CA (ca.pem, ca-key.pem)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lifetime, err := parseLifetime(f.lifetime)
			if err != nil {
				return err
			}
			ca, err := node.CreateCA(f.dir, name, time.Now(), lifetime, f.overwrite)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s: CA %q, serial %s, valid until %s\nkeep %s secret (offline if you can): it signs every certificate the cluster trusts\n",
				filepath.Join(f.dir, node.CACertFile), filepath.Join(f.dir, node.CAKeyFile), ca.Cert.Subject.CommonName,
				wan.FormatSerial(ca.Cert.SerialNumber), ca.Cert.NotAfter.UTC().Format(time.RFC3339), node.CAKeyFile)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "Meridian cluster CA", "the CA's common name")
	f = signingFlags(cmd, cf, defaultCALifetime, false)
	return cmd
}

func newCertCreateNodeCmd(cf *certFlags) *cobra.Command {
	var id, dc string
	var hosts []string
	var f *signFlags
	cmd := &cobra.Command{
		Use:   "create-node --id ID --dc DC [--host HOST]...",
		Short: "Create a node's certificate (ID.pem, ID-key.pem)",
		Long: `create-node issues the certificate of node ID in datacenter DC, signed by the
cluster CA. Its identity is the Subject CN (ID) and OU (node); the datacenter
is recorded as the URI meridian://node/ID?dc=DC, and each --host (an IP
address or DNS name the node is reached at) as a subject alternative name.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" || dc == "" {
				return errors.New("--id and --dc are required")
			}
			return createLeaf(cmd, f, func(ca *wan.CA, lifetime time.Duration) (wan.TLSFiles, error) {
				return node.WriteNodeCert(ca, f.dir, id, dc, hosts, time.Now(), lifetime, f.overwrite)
			})
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "node id (the configuration's id)")
	cmd.Flags().StringVar(&dc, "dc", "", "the node's datacenter (the configuration's dc)")
	cmd.Flags().StringSliceVar(&hosts, "host", nil, "IP address or DNS name of the node (repeatable)")
	f = signingFlags(cmd, cf, defaultLeafLifetime, true)
	return cmd
}

func newCertCreateClientCmd(cf *certFlags) *cobra.Command {
	var name string
	var f *signFlags
	cmd := &cobra.Command{
		Use:   "create-client --name NAME",
		Short: "Create a client certificate for principal NAME (NAME.pem, NAME-key.pem)",
		Long: `create-client issues a client certificate whose principal is NAME: its Subject
CN and a URI meridian://principal/NAME, which nodes take as the principal.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return errors.New("--name is required")
			}
			return createLeaf(cmd, f, func(ca *wan.CA, lifetime time.Duration) (wan.TLSFiles, error) {
				return node.WriteClientCert(ca, f.dir, name, time.Now(), lifetime, f.overwrite)
			})
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the client's principal")
	f = signingFlags(cmd, cf, defaultLeafLifetime, true)
	return cmd
}

// createLeaf loads the CA, issues with write and reports the files.
func createLeaf(cmd *cobra.Command, f *signFlags, write func(*wan.CA, time.Duration) (wan.TLSFiles, error)) error {
	lifetime, err := parseLifetime(f.lifetime)
	if err != nil {
		return err
	}
	ca, err := node.LoadCA(f.dir, f.caKey)
	if err != nil {
		return err
	}
	files, err := write(ca, lifetime)
	if err != nil {
		return err
	}
	infos, err := node.ListCerts(f.dir, time.Now())
	if err != nil {
		return err
	}
	for _, in := range infos {
		if sameFile(in.File, files.Cert) {
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s: %s %q, serial %s, valid until %s\n",
				files.Cert, files.Key, in.Role, in.Principal, in.Serial, in.NotAfter.UTC().Format(time.RFC3339))
			return nil
		}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s\n", files.Cert, files.Key)
	return nil
}

func sameFile(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}

// certJSON is one line of cert list --json.
type certJSON struct {
	File      string    `json:"file"`
	Role      string    `json:"role"`
	Subject   string    `json:"subject"`
	Principal string    `json:"principal,omitempty"`
	DC        string    `json:"dc,omitempty"`
	Hosts     []string  `json:"hosts,omitempty"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	Status    string    `json:"status"`
}

func newCertListCmd(f *certFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the certificates of the certificates directory, with their serials",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			infos, err := node.ListCerts(f.dir, time.Now())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				list := make([]certJSON, 0, len(infos))
				for _, in := range infos {
					list = append(list, certJSON{File: in.File, Role: in.Role, Subject: in.Subject, Principal: in.Principal, DC: in.DC, Hosts: in.Hosts,
						Serial: in.Serial, NotBefore: in.NotBefore.UTC(), NotAfter: in.NotAfter.UTC(), Status: in.Status})
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			if len(infos) == 0 {
				fmt.Fprintf(out, "no certificates in %s\n", f.dir)
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FILE\tROLE\tSUBJECT\tPRINCIPAL\tDC\tSERIAL\tVALID FROM\tVALID UNTIL\tSTATUS")
			for _, in := range infos {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", filepath.Base(in.File), in.Role, in.Subject, dash(in.Principal), dash(in.DC), in.Serial,
					in.NotBefore.UTC().Format(time.DateOnly), in.NotAfter.UTC().Format(time.DateOnly), in.Status)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseLifetime reads "10y", "90d" or a Go duration.
func parseLifetime(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("--lifetime %q: want a positive number of years (10y), days (90d) or a Go duration (720h)", s)
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "y"); ok {
		v, err := strconv.Atoi(n)
		if err != nil {
			return 0, bad
		}
		d = time.Duration(v) * 365 * 24 * time.Hour
	} else if n, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.Atoi(n)
		if err != nil {
			return 0, bad
		}
		d = time.Duration(v) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, bad
		}
	}
	if d <= 0 {
		return 0, bad
	}
	return d, nil
}
