#!/usr/bin/env bash
# Builds the meridian:local image (or the tag in $1): a static binary built
# on this machine, copied into a FROM scratch image. Needs Go and a Docker
# engine; pulls nothing.
set -euo pipefail
tag=${1:-meridian:local}
repo=$(cd "$(dirname "$0")/../.." && pwd)
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT

# MERIDIAN_GO_BUILD_FLAGS replaces -trimpath (the tests set it empty: a
# build without -trimpath shares most of the Go build cache with the tests'
# builds, which saves minutes on a cold CI machine).
flags=${MERIDIAN_GO_BUILD_FLAGS--trimpath}
(cd "$repo" && CGO_ENABLED=0 go build $flags -ldflags "-s -w" -o "$ctx/meridian" ./cmd/meridian)
mkdir -p "$ctx/data" "$ctx/etc"
cp "$repo/deploy/docker/Dockerfile" "$ctx/Dockerfile"
# The classic builder: BuildKit would try to pull its own front end.
DOCKER_BUILDKIT=0 docker build -q -t "$tag" "$ctx" >/dev/null
echo "built $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.1f MB", $1/1e6}'))"
