#!/usr/bin/env bash
# check-meridian.sh: the end-to-end tracing check against a real Jaeger.
#
# Starts Jaeger (building it first if needed, see build.sh), starts a
# `meridian dev` cluster of 3 regions exporting OTLP to it, makes an
# EACH_QUORUM put and a get through the CLI, then asks Jaeger's HTTP API for
# the put's trace and checks that it holds the client span, the
# coordinator's span, a relay span in each remote region and a replica span
# on every replica — from nodes of every region — and that the get's span
# carries the sibling count. Prints the span tree. Needs curl and python3.
#
# Environment: MERIDIAN_BASE_PORT (default 7400), JAEGER_* as in run.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
port=${MERIDIAN_BASE_PORT:-7400}
query=http://${JAEGER_HOST:-127.0.0.1}:16686
dev_pid=""
started_jaeger=0

cleanup() {
	[[ -n "$dev_pid" ]] && kill -INT "$dev_pid" 2>/dev/null && wait "$dev_pid" 2>/dev/null || true
	[[ $started_jaeger == 1 ]] && "$here/run.sh" stop >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

echo "building meridian..."
(cd "$repo" && go build -o "$work/meridian" ./cmd/meridian)
if ! "$here/run.sh" status >/dev/null 2>&1; then
	"$here/run.sh" start
	started_jaeger=1
fi

export OTEL_EXPORTER_OTLP_ENDPOINT=http://${JAEGER_HOST:-127.0.0.1}:4318
export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf
export OTEL_BSP_SCHEDULE_DELAY=200

m() { "$work/meridian" --config "$work/dev/client.yaml" "$@"; }

"$work/meridian" dev --dir "$work/dev" --base-port "$port" --wan-latency 20ms >"$work/dev.log" 2>&1 &
dev_pid=$!
for _ in $(seq 100); do
	if m status --json 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if sum(n["state"]=="up" for n in d["nodes"])==9 else 1)'; then
		break
	fi
	sleep 0.2
done
m status

key="traced-$RANDOM"
m put "$key" hello --consistency EACH_QUORUM
m put "$key" world             # a blind write: two siblings
m get "$key" --consistency EACH_QUORUM
sleep 2 # let every node's batch processor export

python3 - "$query" <<'PY'
import json, sys, time, urllib.parse, urllib.request
query = sys.argv[1]

def traces(service, operation):
    url = f"{query}/api/traces?service={urllib.parse.quote(service)}&operation={urllib.parse.quote(operation)}&limit=20&lookback=1h"
    return json.load(urllib.request.urlopen(url))["data"]

def tags(obj):
    return {t["key"]: t["value"] for t in obj.get("tags", [])}

def newest(service, operation, want=lambda t: True):
    for _ in range(50):
        ts = [t for t in traces(service, operation) if want(t)]
        if ts:
            return max(ts, key=lambda t: min(s["startTime"] for s in t["spans"]))
        time.sleep(0.2)
    sys.exit(f"no {operation!r} trace of {service!r} in Jaeger")

def each_quorum(t):
    return any(tags(s).get("meridian.consistency") == "EACH_QUORUM" for s in t["spans"])

def tree(t):
    procs = {pid: tags(p) | {"service": p["serviceName"]} for pid, p in t["processes"].items()}
    spans = {s["spanID"]: s for s in t["spans"]}
    kids = {}
    for s in t["spans"]:
        parent = next((r["spanID"] for r in s.get("references", []) if r["refType"] == "CHILD_OF" and r["spanID"] in spans), None)
        kids.setdefault(parent, []).append(s)
    lines = []
    def walk(parent, depth):
        for s in sorted(kids.get(parent, []), key=lambda s: s["startTime"]):
            p = procs[s["processID"]]
            who = p.get("service.instance.id", p["service"])
            lines.append(f'{"  " * depth}{s["operationName"]}  [{who}, dc {p.get("meridian.dc", "-")}, {s["duration"]}us]')
            walk(s["spanID"], depth + 1)
    walk(None, 0)
    return procs, lines

put = newest("meridian-cli", "put default", each_quorum)
procs, lines = tree(put)
print(f"\ntrace {put['traceID']} ({len(put['spans'])} spans):")
print("\n".join(lines))

ops = [s["operationName"] for s in put["spans"]]
proc_of = {s["spanID"]: procs[s["processID"]] for s in put["spans"]}
def dcs(pred):
    return {proc_of[s["spanID"]].get("meridian.dc") for s in put["spans"] if pred(s)}
problems = []
if not any(procs[s["processID"]]["service"] == "meridian-cli" for s in put["spans"]):
    problems.append("no client span")
if ops.count("put default") < 2:
    problems.append("no coordinator span")
relay_dcs = dcs(lambda s: s["operationName"].startswith("relay.write") and tags(s).get("span.kind") == "server")
if len(relay_dcs) < 2:
    problems.append(f"relay server spans only in {relay_dcs}")
replica_nodes = {proc_of[s["spanID"]].get("service.instance.id") for s in put["spans"] if s["operationName"].startswith(("replica.write", "relay.write")) and tags(s).get("span.kind") == "server"}
if len(replica_nodes) < 8:
    problems.append(f"replica server spans on only {sorted(replica_nodes)}")
regions = {p.get("meridian.dc") for p in procs.values() if p["service"] == "meridian"}
if len(regions) < 2:
    problems.append(f"spans from regions {regions}")

get = newest("meridian", "get default")
sib = [tags(s)["meridian.siblings"] for s in get["spans"] if s["operationName"] == "get default" and "meridian.siblings" in tags(s)]
print(f"\nget trace {get['traceID']}: meridian.siblings = {sib}")
if not sib:
    problems.append("get span has no meridian.siblings")

if problems:
    sys.exit("FAILED: " + "; ".join(problems))
print(f"\nOK: one trace spans the client, the coordinator, relays in {sorted(relay_dcs)} and replicas on {len(replica_nodes)} nodes in {sorted(regions)}")
PY
