package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeDocker puts a docker on PATH that answers ps with the containers
// of two clusters, filtered by the label filters it is given.
func fakeDocker(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	script := `#!/bin/sh
[ "$1" = ps ] || { echo "unexpected: $*" >&2; exit 2; }
lines='a_west-1_1	a	west
a_west-2_1	a	west
b-west-1	b	west
a_east-1_1	a	east'
shift
while [ $# -gt 0 ]; do
	case "$1" in
	--filter)
		case "$2" in
		label=meridian.dc=*) lines=$(printf '%s\n' "$lines" | awk -F'\t' -v v="${2#label=meridian.dc=}" '$3 == v');;
		label=meridian.cluster=*) lines=$(printf '%s\n' "$lines" | awk -F'\t' -v v="${2#label=meridian.cluster=}" '$2 == v');;
		*) echo "unexpected filter $2" >&2; exit 2;;
		esac
		shift 2;;
	*) shift;;
	esac
done
[ -n "$lines" ] && printf '%s\n' "$lines" | cut -f1,2
exit 0
`
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func TestDockerDriverFindsRegion(t *testing.T) {
	fakeDocker(t)
	ctx := context.Background()
	// Region west has containers in two clusters: the driver must not
	// take both.
	if _, err := newDockerDriver(ctx, "west", "", "", io.Discard); err == nil || !strings.Contains(err.Error(), "--docker-cluster") || !strings.Contains(err.Error(), `"a", "b"`) {
		t.Fatalf("two clusters' containers: got %v, want an error naming both and --docker-cluster", err)
	}
	d, err := newDockerDriver(ctx, "west", "a", "", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a_west-1_1", "a_west-2_1"}; !slices.Equal(d.containers, want) || d.keyspace != "default" {
		t.Fatalf("cluster a's west: %v (keyspace %q), want %v", d.containers, d.keyspace, want)
	}
	if d, err = newDockerDriver(ctx, "east", "", "ks", io.Discard); err != nil || !slices.Equal(d.containers, []string{"a_east-1_1"}) {
		t.Fatalf("east: %v, %v", d, err)
	}
	if _, err := newDockerDriver(ctx, "south", "", "", io.Discard); err == nil || !strings.Contains(err.Error(), "meridian.dc=south") {
		t.Fatalf("no container of the region: got %v", err)
	}
}

func TestConfigFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"node", "--config", "/etc/meridian/node.yaml"}, "/etc/meridian/node.yaml"},
		{[]string{"/meridian", "node", "--config=/c.yaml"}, "/c.yaml"},
		{[]string{"node", "--config"}, ""},
		{[]string{"node"}, ""},
	} {
		if got := configFlag(c.args); got != c.want {
			t.Errorf("configFlag(%q) = %q, want %q", c.args, got, c.want)
		}
	}
}
