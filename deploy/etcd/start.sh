#!/usr/bin/env bash
# Starts a 3-member etcd cluster on loopback from Debian's etcd-server
# package (apt-get install etcd-server), as the peer meridian bench measures
# against:
#   deploy/etcd/start.sh          # start; prints the --endpoints and --etcd-pids to use
#   deploy/etcd/start.sh stop     # stop the members and remove their data
# Members etcd-1..3 listen for clients on 127.0.0.1:23791..23793 and for
# peers on 127.0.0.1:23801..23803; data, logs and the pid file live in
# $MERIDIAN_ETCD_DIR (default /tmp/meridian-etcd). Every write is fsynced
# (etcd's default), like Meridian's replica writes.
#   meridian bench --target meridian,etcd --endpoints "$(deploy/etcd/start.sh endpoints)" ...
set -euo pipefail
dir=${MERIDIAN_ETCD_DIR:-/tmp/meridian-etcd}
etcd=${ETCD:-$(command -v etcd || echo /usr/bin/etcd)}
members=(1 2 3)
endpoints=$(printf 'http://127.0.0.1:2379%d,' "${members[@]}")
endpoints=${endpoints%,}

case "${1:-start}" in
endpoints)
	echo "$endpoints"
	exit 0
	;;
stop)
	if [ -f "$dir/pids" ]; then
		kill $(cat "$dir/pids") 2>/dev/null || true
		for pid in $(cat "$dir/pids"); do
			while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
		done
	fi
	rm -rf "$dir"
	exit 0
	;;
start) ;;
*)
	echo "usage: $0 [start|stop|endpoints]" >&2
	exit 2
	;;
esac

if [ ! -x "$etcd" ]; then
	echo "etcd not found: apt-get install etcd-server (or set ETCD)" >&2
	exit 1
fi
if [ -f "$dir/pids" ]; then
	echo "$dir/pids exists: an etcd cluster may be running; run $0 stop first" >&2
	exit 1
fi
mkdir -p "$dir"
cluster=""
for i in "${members[@]}"; do cluster+="etcd-$i=http://127.0.0.1:2380$i,"; done
cluster=${cluster%,}
pids=()
for i in "${members[@]}"; do
	"$etcd" --name "etcd-$i" --data-dir "$dir/etcd-$i" \
		--listen-client-urls "http://127.0.0.1:2379$i" --advertise-client-urls "http://127.0.0.1:2379$i" \
		--listen-peer-urls "http://127.0.0.1:2380$i" --initial-advertise-peer-urls "http://127.0.0.1:2380$i" \
		--initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token meridian-bench \
		>"$dir/etcd-$i.log" 2>&1 &
	pids+=($!)
done
echo "${pids[*]}" >"$dir/pids"

# Wait (up to 30 s) until every member reports itself healthy (it has a
# leader and serves a linearizable read).
for i in "${members[@]}"; do
	for _ in $(seq 300); do
		if curl -sf "http://127.0.0.1:2379$i/health" 2>/dev/null | grep -q '"health":"true"'; then
			continue 2
		fi
		sleep 0.1
	done
	echo "etcd-$i did not answer within 30 s; see $dir/etcd-$i.log" >&2
	exit 1
done
echo "etcd: 3 members up, data in $dir"
echo "  --endpoints $endpoints --etcd-pids $(IFS=,; echo "${pids[*]}")"
