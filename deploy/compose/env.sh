# Settings shared by up.sh and down.sh (sourced). Override any of them in
# the environment.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# The compose project: containers, networks and volumes are named after it.
export MERIDIAN_PROJECT=${MERIDIAN_PROJECT:-meridian}
# First two octets of the networks: WAN $MERIDIAN_NET.0.0/24, regions
# $MERIDIAN_NET.1.0/24 (east), .2 (west), .3 (central).
export MERIDIAN_NET=${MERIDIAN_NET:-10.213}
# Host ports: QUIC of node i of region r on 127.0.0.1:${MERIDIAN_PORT_PREFIX}ri
# (east 1, west 2, central 3: 17011 ... 17033), admin on
# ${MERIDIAN_ADMIN_PORT_PREFIX}ri (19011 ... 19033).
export MERIDIAN_PORT_PREFIX=${MERIDIAN_PORT_PREFIX:-170}
export MERIDIAN_ADMIN_PORT_PREFIX=${MERIDIAN_ADMIN_PORT_PREFIX:-190}
export MERIDIAN_IMAGE=${MERIDIAN_IMAGE:-meridian:local}
export MERIDIAN_GENERATED=${MERIDIAN_GENERATED:-$here/generated/$MERIDIAN_PROJECT}
# docker-compose v1 (Debian's); the v2 plugin reads the same file.
COMPOSE=${COMPOSE:-docker-compose}
compose() { $COMPOSE -p "$MERIDIAN_PROJECT" -f "$here/docker-compose.yml" "$@"; }
