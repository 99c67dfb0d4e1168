package main

import (
	"context"
	"fmt"
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
type etcdDriver struct{ c *clientv3.Client }

func newEtcdDriver(endpoints []string) (*etcdDriver, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	return &etcdDriver{c: c}, nil
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
		return fmt.Errorf("etcd did not answer a linearizable read (is it up? deploy/etcd/start.sh starts one): %w", err)
	}
	return nil
}
