#!/usr/bin/env bash
# Starts a 3-member etcd cluster on loopback from Debian's etcd-server
# package (apt-get install etcd-server), as the peer meridian bench measures
# against:
#   deploy/etcd/start.sh          # start; prints the --endpoints and --etcd-pids to use
#   deploy/etcd/start.sh --tls    # the same over TLS, clients and peers alike, with
#                                 # client certificates checked (as etcd is run in
#                                 # production, and as Meridian always runs); also
#                                 # prints the --etcd-cacert/--etcd-cert/--etcd-key
#   deploy/etcd/start.sh stop     # stop the members and remove their data
#   deploy/etcd/start.sh endpoints  # the running cluster's client URLs
# Members etcd-1..3 listen for clients on 127.0.0.1:23791..23793 and for
# peers on 127.0.0.1:23801..23803 ($MERIDIAN_ETCD_PORT moves the first
# client port, and the others with it); data, logs, certificates (tls/, a CA of
# its own made with openssl) and the pid file live in $MERIDIAN_ETCD_DIR
# (default /tmp/meridian-etcd). Every write is fsynced (etcd's default),
# like Meridian's replica writes.
#   meridian bench --target meridian,etcd --endpoints "$(deploy/etcd/start.sh endpoints)" ...
set -euo pipefail
dir=${MERIDIAN_ETCD_DIR:-/tmp/meridian-etcd}
etcd=${ETCD:-$(command -v etcd || echo /usr/bin/etcd)}
members=(1 2 3)
port=${MERIDIAN_ETCD_PORT:-23791}
client_port() { echo $((port + $1 - 1)); }
peer_port() { echo $((port + 10 + $1 - 1)); }

action=start
tls=0
for arg in "$@"; do
	case "$arg" in
	--tls) tls=1 ;;
	start | stop | endpoints) action=$arg ;;
	*)
		echo "usage: $0 [start|stop|endpoints] [--tls]" >&2
		exit 2
		;;
	esac
done

scheme=http
if [ "$action" = endpoints ] && [ -f "$dir/scheme" ]; then
	scheme=$(cat "$dir/scheme")
elif [ "$tls" = 1 ]; then
	scheme=https
fi
endpoints=""
for i in "${members[@]}"; do endpoints+="$scheme://127.0.0.1:$(client_port "$i"),"; done
endpoints=${endpoints%,}

case "$action" in
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
echo "$scheme" >"$dir/scheme"

tlsflags=()
curlflags=()
if [ "$tls" = 1 ]; then
	command -v openssl >/dev/null || {
		echo "openssl not found: apt-get install openssl" >&2
		exit 1
	}
	t=$dir/tls
	mkdir -p "$t"
	# sign NAME CN EXTENSIONS: a P-256 key and a certificate from the CA.
	sign() {
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
			-keyout "$t/$1-key.pem" -out "$t/$1.csr" 2>/dev/null
		printf '%b' "$3" >"$t/$1.ext"
		openssl x509 -req -in "$t/$1.csr" -CA "$t/ca.pem" -CAkey "$t/ca-key.pem" -CAcreateserial \
			-days 30 -extfile "$t/$1.ext" -out "$t/$1.pem" 2>/dev/null
		rm -f "$t/$1.csr" "$t/$1.ext"
	}
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
		-subj "/CN=meridian bench etcd CA" -keyout "$t/ca-key.pem" -out "$t/ca.pem" 2>/dev/null
	# One certificate serves every member, to clients and to its peers.
	sign member etcd 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n'
	sign client meridian-bench 'extendedKeyUsage=clientAuth\n'
	tlsflags=(--cert-file "$t/member.pem" --key-file "$t/member-key.pem" --trusted-ca-file "$t/ca.pem" --client-cert-auth
		--peer-cert-file "$t/member.pem" --peer-key-file "$t/member-key.pem" --peer-trusted-ca-file "$t/ca.pem" --peer-client-cert-auth)
	curlflags=(--cacert "$t/ca.pem" --cert "$t/client.pem" --key "$t/client-key.pem")
fi

cluster=""
for i in "${members[@]}"; do cluster+="etcd-$i=$scheme://127.0.0.1:$(peer_port "$i"),"; done
cluster=${cluster%,}
pids=()
for i in "${members[@]}"; do
	"$etcd" --name "etcd-$i" --data-dir "$dir/etcd-$i" \
		--listen-client-urls "$scheme://127.0.0.1:$(client_port "$i")" --advertise-client-urls "$scheme://127.0.0.1:$(client_port "$i")" \
		--listen-peer-urls "$scheme://127.0.0.1:$(peer_port "$i")" --initial-advertise-peer-urls "$scheme://127.0.0.1:$(peer_port "$i")" \
		--initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token meridian-bench \
		"${tlsflags[@]}" >"$dir/etcd-$i.log" 2>&1 &
	pids+=($!)
done
echo "${pids[*]}" >"$dir/pids"

# Wait (up to 30 s) until every member reports itself healthy (it has a
# leader and serves a linearizable read).
for i in "${members[@]}"; do
	for _ in $(seq 300); do
		if curl -sf "${curlflags[@]}" "$scheme://127.0.0.1:$(client_port "$i")/health" 2>/dev/null | grep -q '"health":"true"'; then
			continue 2
		fi
		sleep 0.1
	done
	echo "etcd-$i did not answer within 30 s; see $dir/etcd-$i.log" >&2
	exit 1
done
echo "etcd: 3 members up over $scheme, data in $dir"
flags="--endpoints $endpoints --etcd-pids $(
	IFS=,
	echo "${pids[*]}"
)"
if [ "$tls" = 1 ]; then
	flags+=" --etcd-cacert $t/ca.pem --etcd-cert $t/client.pem --etcd-key $t/client-key.pem"
fi
echo "  $flags"
