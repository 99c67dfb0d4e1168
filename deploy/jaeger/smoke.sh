#!/usr/bin/env bash
# smoke.sh is the opt-in end-to-end check of Meridian's tracing: it starts
# Jaeger (run.sh; built by build.sh on first use), runs
# otelsetup.TestJaegerEndToEnd, which exports a client → coordinator →
# replica trace over OTLP/HTTP and OTLP/gRPC and reads it back from
# /api/traces, and stops Jaeger again if it started it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
host=${JAEGER_HOST:-127.0.0.1}

started=0
if ! "$here/run.sh" status >/dev/null 2>&1; then
	"$here/run.sh" start
	started=1
fi
if [[ $started == 1 ]]; then
	trap '"$here/run.sh" stop' EXIT
fi

cd "$root"
MERIDIAN_JAEGER_QUERY="http://$host:16686" \
	MERIDIAN_JAEGER_OTLP_HTTP="http://$host:4318" \
	MERIDIAN_JAEGER_OTLP_GRPC="http://$host:4317" \
	go test -count=1 -run '^TestJaegerEndToEnd$' -v ./telemetry/otelsetup
