#!/usr/bin/env bash
# Stops and removes the cluster's containers, networks and data volumes,
# and its generated certificates and configurations.
set -euo pipefail
source "$(dirname "$0")/env.sh"
compose down -v --remove-orphans --timeout 10
rm -rf "$MERIDIAN_GENERATED"
