#!/usr/bin/env bash
# build.sh builds Jaeger v2's all-in-one binary from the Go module proxy and
# caches it outside the repository. It prints the binary's path on stdout.
#
# Jaeger's go.mod carries replace directives, so `go install ...@version`
# refuses it; instead the module is downloaded, copied out of the read-only
# module cache and built as the main module (see /work/shared/ECOSYSTEM.md).
# Takes about 5-8 minutes on 2 cores the first time; later runs are no-ops.
#
# Environment:
#   JAEGER_VERSION    module version (default v1.76.0 = Jaeger 2.13)
#   JAEGER_CACHE_DIR  where sources and binary live
#                     (default ${XDG_CACHE_HOME:-$HOME/.cache}/meridian/jaeger)
#   JAEGER_REBUILD=1  build even if the binary exists
set -euo pipefail

version=${JAEGER_VERSION:-v1.76.0}
module=github.com/jaegertracing/jaeger
cache=${JAEGER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/meridian/jaeger}
bin="$cache/jaeger-$version"

if [[ -x "$bin" && "${JAEGER_REBUILD:-0}" != 1 ]]; then
	echo "jaeger: $bin already built" >&2
	echo "$bin"
	exit 0
fi

mkdir -p "$cache"

# Download from outside any module so the caller's go.mod and go.sum stay untouched.
dir=$(cd "$cache" && GOFLAGS= GO111MODULE=on go mod download -json "$module@$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
if [[ -z "$dir" || ! -d "$dir" ]]; then
	echo "jaeger: go mod download $module@$version gave no directory" >&2
	exit 1
fi

src="$cache/src-$version"
rm -rf "$src" "$src.tmp"
cp -r "$dir" "$src.tmp"
chmod -R u+w "$src.tmp"
mv "$src.tmp" "$src"

echo "jaeger: building $module@$version in $src (5-8 minutes on 2 cores)" >&2
(
	cd "$src"
	# -mod=mod lets go fill in go.sum entries the module zip may lack.
	GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin.tmp" ./cmd/jaeger
)
mv "$bin.tmp" "$bin"
rm -rf "$src" # regenerable from the module cache; only the binary is kept
ln -sfn "$(basename "$bin")" "$cache/jaeger"
echo "jaeger: built $bin" >&2
echo "$bin"
