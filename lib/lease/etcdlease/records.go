package etcdlease

import (
	"context"
	"fmt"
	"sort"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Records live under <prefix>/.records/<kind>/<name>; etcd replaces a
// value atomically by nature.
func (e *Store) recordKey(kind, name string) string {
	return e.Prefix + "/.records/" + kind + "/" + name
}

func checkPath(kind, name string) error {
	if strings.Contains(name, "/") {
		return fmt.Errorf("bad record name %q", name)
	}
	for _, p := range append(strings.Split(kind, "/"), name) {
		if p == "" || p == "." || p == ".." || strings.HasPrefix(p, ".") {
			return fmt.Errorf("bad record path %q/%q", kind, name)
		}
	}
	return nil
}

func (e *Store) PutRecord(ctx context.Context, kind, name string, value []byte) error {
	if err := checkPath(kind, name); err != nil {
		return err
	}
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	if _, err := e.client.Put(ctx, e.recordKey(kind, name), string(value)); err != nil {
		return e.unavailable("write", kind+"/"+name, err)
	}
	return nil
}

func (e *Store) GetRecord(ctx context.Context, kind, name string) ([]byte, error) {
	if err := checkPath(kind, name); err != nil {
		return nil, err
	}
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	resp, err := e.client.Get(ctx, e.recordKey(kind, name))
	if err != nil {
		return nil, e.unavailable("read", kind+"/"+name, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return resp.Kvs[0].Value, nil
}

func (e *Store) DeleteRecord(ctx context.Context, kind, name string) error {
	if err := checkPath(kind, name); err != nil {
		return err
	}
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	if _, err := e.client.Delete(ctx, e.recordKey(kind, name)); err != nil {
		return e.unavailable("delete", kind+"/"+name, err)
	}
	return nil
}

func (e *Store) ListRecords(ctx context.Context, kind string) ([]string, error) {
	if err := checkPath(kind, "x"); err != nil {
		return nil, err
	}
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	prefix := e.recordKey(kind, "")
	resp, err := e.client.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, e.unavailable("list", kind, err)
	}
	var out []string
	for _, kv := range resp.Kvs {
		name := strings.TrimPrefix(string(kv.Key), prefix)
		if name != "" && !strings.Contains(name, "/") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}
