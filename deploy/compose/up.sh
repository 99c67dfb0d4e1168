#!/usr/bin/env bash
# Brings up 3 regions x 3 Meridian nodes on this Docker engine:
#  1. builds the meridian binary (for meridian cert / config) and the
#     meridian:local image (../docker/build.sh; MERIDIAN_BUILD_IMAGE=0 keeps
#     an existing image);
#  2. writes a CA, a gossip key, each node's certificate and configuration
#     and an admin client certificate into generated/PROJECT/;
#  3. docker-compose up; then writes generated/PROJECT/client.yaml with the
#     host ports the nodes' QUIC endpoints are published on (fixed, see
#     env.sh), and waits until
#     every node is up.
# Then: meridian --config generated/PROJECT/client.yaml status
set -euo pipefail
source "$(dirname "$0")/env.sh"
WAN_LATENCY=${MERIDIAN_WAN_LATENCY:-40ms}
REGIONS=(east west central)
NODES_PER_REGION=3

gen=$MERIDIAN_GENERATED
mkdir -p "$gen/ca" "$gen/nodes"
chmod 700 "$gen"
bin=$gen/meridian
(cd "$repo" && go build -o "$bin" ./cmd/meridian)
# The image is rebuilt (seconds with a warm Go cache) so that it matches the
# binary that writes the configurations; MERIDIAN_BUILD_IMAGE=0 keeps the
# existing one.
if [ "${MERIDIAN_BUILD_IMAGE:-1}" != 0 ] || ! docker image inspect "$MERIDIAN_IMAGE" >/dev/null 2>&1; then
	"$repo/deploy/docker/build.sh" "$MERIDIAN_IMAGE"
fi

# The cluster CA, the gossip key and the host's client certificate, once.
ca=$gen/ca
[ -f "$ca/ca.pem" ] || "$bin" cert create-ca --certs-dir "$ca" --name "Meridian $MERIDIAN_PROJECT CA" >/dev/null
[ -f "$ca/gossip.key" ] || "$bin" config gossip-key --out "$ca/gossip.key"
[ -f "$ca/admin.pem" ] || "$bin" cert create-client --certs-dir "$ca" --name admin >/dev/null

# Node i of region r (r = 1..3) has WAN address NET.0.(10r+i).
wan_ip() { echo "$MERIDIAN_NET.0.$((10 * $1 + $2))"; }
seeds=() peers=()
for r in "${!REGIONS[@]}"; do
	seeds+=(--seed "$(wan_ip $((r + 1)) 1):7946")
	for i in $(seq 1 $NODES_PER_REGION); do
		peers+=(--wan-peer "$(wan_ip $((r + 1)) "$i"):7000=${REGIONS[r]}")
	done
done
keyspace="default:$(printf '%s=3,' "${REGIONS[@]}" | sed 's/,$//')"

for r in "${!REGIONS[@]}"; do
	dc=${REGIONS[r]}
	for i in $(seq 1 $NODES_PER_REGION); do
		id=$dc-$i ip=$(wan_ip $((r + 1)) "$i")
		dir=$gen/nodes/$id
		mkdir -p "$dir"
		cp "$ca/ca.pem" "$dir/ca.pem"
		# Only this node's certificate and key go into its container.
		[ -f "$dir/$id.pem" ] || "$bin" cert create-node --certs-dir "$dir" --ca-key "$ca/ca-key.pem" \
			--id "$id" --dc "$dc" --host "$ip" --host "$id" >/dev/null
		"$bin" config node --out "$dir/node.yaml" --overwrite \
			--id "$id" --dc "$dc" --rack "rack$i" \
			--listen 0.0.0.0:7000 --advertise "$ip:7000" --gossip "$ip:7946" --admin 0.0.0.0:9090 \
			"${seeds[@]}" --data-dir /data --certs-dir /etc/meridian \
			--gossip-key-file "$ca/gossip.key" --gossip-profile lan \
			--keyspace "$keyspace" --superuser admin --wan-latency "$WAN_LATENCY" "${peers[@]}"
		# The node runs as UID 10001 in its container: it must read its key.
		chmod 755 "$dir"
		chmod 644 "$dir"/*
	done
done

compose up -d --remove-orphans

# The host reaches each node's QUIC endpoint on its published port
# (docker-compose.yml: 127.0.0.1:${MERIDIAN_PORT_PREFIX}ri).
nodes=()
for r in "${!REGIONS[@]}"; do
	for i in $(seq 1 $NODES_PER_REGION); do
		id=${REGIONS[r]}-$i
		nodes+=(--node "$id@${REGIONS[r]}=127.0.0.1:$MERIDIAN_PORT_PREFIX$((r + 1))$i")
	done
done
"$bin" config client --out "$gen/client.yaml" --overwrite --dc "${REGIONS[0]}" \
	--certs-dir "$ca" --name admin "${nodes[@]}"

want=$(( ${#REGIONS[@]} * NODES_PER_REGION ))
deadline=$((SECONDS + ${MERIDIAN_UP_TIMEOUT:-120}))
until [ "$("$bin" --config "$gen/client.yaml" status --json 2>/dev/null | grep -c '"state": "up"')" -ge "$want" ]; do
	if [ $SECONDS -ge $deadline ]; then
		echo "not every node is up after ${MERIDIAN_UP_TIMEOUT:-120}s:" >&2
		"$bin" --config "$gen/client.yaml" status >&2 || true
		compose ps >&2 || true
		compose logs --tail 5 >&2 || true
		exit 1
	fi
	sleep 1
done
echo "up: $want nodes in ${#REGIONS[@]} regions (project $MERIDIAN_PROJECT)"
echo "  $bin --config $gen/client.yaml status"
echo "  $bin --config $gen/client.yaml put greeting hello --consistency EACH_QUORUM"
