package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcdDriver drives an etcd cluster with the same operations as Meridian:
// a read at ONE or LOCAL_ONE is serializable (answered by the member
// reached, like Meridian's one-replica read), any other level is
// linearizable (through the leader, like a quorum read); a write is a
// plain Put (no transaction), which etcd always commits through a raft
// quorum; a read-modify-write is a Get and a Put.
type etcdDriver struct {
	c *clientv3.Client
	// hint completes the error of a cluster that does not answer.
	hint string
}

// etcdTLS names the files for an etcd cluster served over TLS (https
// endpoints), as etcdctl's --cacert, --cert and --key do.
type etcdTLS struct{ CA, Cert, Key string }

func (t etcdTLS) on() bool { return t.CA != "" || t.Cert != "" }

// validate checks t against the endpoints: https endpoints need the CA,
// http ones take no TLS files, and a certificate comes with its key.
func (t etcdTLS) validate(endpoints []string) error {
	var errs []error
	if (t.Cert == "") != (t.Key == "") {
		errs = append(errs, errors.New("--etcd-cert and --etcd-key go together"))
	}
	for _, e := range endpoints {
		switch {
		case strings.HasPrefix(e, "https://") && t.CA == "":
			errs = append(errs, fmt.Errorf("--endpoints %s is https: give --etcd-cacert (and --etcd-cert/--etcd-key if the members check clients)", e))
		case strings.HasPrefix(e, "http://") && t.on():
			errs = append(errs, fmt.Errorf("--endpoints %s is plain http, but TLS files were given: use https endpoints", e))
		}
	}
	return errors.Join(errs...)
}

// config loads t's files into a client TLS configuration (nil when off).
func (t etcdTLS) config() (*tls.Config, error) {
	if !t.on() {
		return nil, nil
	}
	pem, err := os.ReadFile(t.CA)
	if err != nil {
		return nil, fmt.Errorf("etcd: --etcd-cacert: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("etcd: --etcd-cacert %s holds no PEM certificate", t.CA)
	}
	c := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if t.Cert != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("etcd: --etcd-cert/--etcd-key: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

func newEtcdDriver(endpoints []string, t etcdTLS) (*etcdDriver, error) {
	tc, err := t.config()
	if err != nil {
		return nil, err
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, TLS: tc, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	d := &etcdDriver{c: c, hint: "is it up? deploy/etcd/start.sh starts one"}
	if tc != nil && len(tc.Certificates) == 0 {
		d.hint += "; members started with --tls check client certificates: give --etcd-cert and --etcd-key"
	}
	return d, nil
}

func (d *etcdDriver) Close() error { return d.c.Close() }

func etcdSerializable(consistency string) bool {
	return consistency == "ONE" || consistency == "LOCAL_ONE"
}

func (d *etcdDriver) Read(ctx context.Context, key []byte, consistency string) error {
	var opts []clientv3.OpOption
	if etcdSerializable(consistency) {
		opts = append(opts, clientv3.WithSerializable())
	}
	_, err := d.c.Get(ctx, string(key), opts...)
	return err
}

func (d *etcdDriver) Update(ctx context.Context, key, value []byte, _ string) error {
	_, err := d.c.Put(ctx, string(key), string(value))
	return err
}

func (d *etcdDriver) ReadModifyWrite(ctx context.Context, key, value []byte, consistency string) error {
	if err := d.Read(ctx, key, consistency); err != nil {
		return err
	}
	return d.Update(ctx, key, value, consistency)
}

// waitEtcd checks that the cluster answers a linearizable read.
func (d *etcdDriver) wait(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := d.c.Get(ctx, "meridian-bench-probe"); err != nil {
		return fmt.Errorf("etcd did not answer a linearizable read (%s): %w", d.hint, err)
	}
	return nil
}
