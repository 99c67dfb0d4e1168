#!/usr/bin/env bash
# From a fresh clone: builds the image, the meridian binary and the Docker
# provider mirror, applies examples/docker-three-regions (3 regions x 3
# nodes on this machine's Docker engine), writes the host's client
# configuration to examples/docker-three-regions/out/client.yaml, waits for
# every node and runs a put at EACH_QUORUM and a get from another region.
#
#   deploy/terraform/try-docker.sh            # apply
#   deploy/terraform/try-docker.sh destroy    # remove containers, networks, volumes and out/
#
# Environment: TF_VAR_name, TF_VAR_wan_subnet, TF_VAR_nodes_per_region
# (see the example's variables.tf); MERIDIAN_BUILD_IMAGE=0 uses the
# existing meridian:local image; MERIDIAN_BIN names a meridian binary to use.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=${MERIDIAN_REPO:-$(cd "$here/../.." && pwd)}
ex=$here/examples/docker-three-regions
out=$ex/out
mkdir -p "$out"
chmod 700 "$out"

bin=${MERIDIAN_BIN:-$out/meridian}
if [ -z "${MERIDIAN_BIN:-}" ]; then
	(cd "$repo" && go build -o "$bin" ./cmd/meridian)
fi
mirror=$("$here/provider-mirror.sh")
export TF_CLI_CONFIG_FILE=$mirror/terraformrc
export TF_IN_AUTOMATION=1
[ -f "$out/gossip.key" ] || "$bin" config gossip-key --out "$out/gossip.key"
export TF_VAR_gossip_key=$(cat "$out/gossip.key")
export TF_VAR_meridian_bin=$bin
tf() { terraform -chdir="$ex" "$@"; }

if [ "${1:-}" = "destroy" ]; then
	if [ -d "$ex/.terraform" ]; then
		tf destroy -auto-approve -input=false
	fi
	rm -rf "$out" "$ex/.terraform" "$ex/.terraform.lock.hcl" "$ex"/terraform.tfstate*
	echo "destroyed"
	exit 0
fi

if [ "${MERIDIAN_BUILD_IMAGE:-1}" != 0 ]; then
	"$repo/deploy/docker/build.sh" "${TF_VAR_image:-meridian:local}"
fi
tf init -input=false >/dev/null
tf apply -auto-approve -input=false
tf output -raw client_config >"$out/client.yaml"

want=$(tf output -json nodes | grep -o '"dc"' | wc -l)
deadline=$((SECONDS + ${MERIDIAN_UP_TIMEOUT:-120}))
until [ "$("$bin" --config "$out/client.yaml" status --json 2>/dev/null | grep -c '"state": "up"')" -ge "$want" ]; do
	if [ $SECONDS -ge $deadline ]; then
		echo "not every node is up:" >&2
		"$bin" --config "$out/client.yaml" status >&2 || true
		exit 1
	fi
	sleep 1
done
"$bin" --config "$out/client.yaml" status
"$bin" --config "$out/client.yaml" put try-docker "hello from $(hostname)" --consistency EACH_QUORUM
"$bin" --config "$out/client.yaml" --node west-1 get try-docker --consistency EACH_QUORUM
echo "client configuration: $out/client.yaml"
echo "  $bin --config $out/client.yaml status"
