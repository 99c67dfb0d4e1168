#!/usr/bin/env bash
# Runs every check Meridian's CI runs: formatting, vet, the tests (under
# the race detector) and a short fuzz of every
# decoder of network input. Needs only Go (see go.mod for the version).
set -euo pipefail
cd "$(dirname "$0")"

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...
go build -o bin/meridian ./cmd/meridian

# The passes below the race pass run beside it, their output kept and
# printed after it: the race pass spends much of its time waiting on node
# processes and containers, and these fill the idle processor.
side=$(mktemp -d)
trap 'rm -rf "$side"' EXIT
side_passes() {
	set -euo pipefail
	# The whole fault matrix on the simulated cluster: under the race
	# detector only three of its rows run (it slows the simulation
	# tenfold), so those three are the only tests that run twice.
	go test -count=1 -timeout 10m -run TestFaultMatrix ./sim
	# The node tests that move megabytes of values, skipped under the race
	# detector (movesMegabytes in node/cluster_test.go): it makes them
	# tenfold slower and they reach no concurrency the others do not.
	go test -count=1 -timeout 10m -run '^(TestSiblingsLargerThanAFrameKeepTheKeyUsable|TestLargeObjectsAreHintedAndDelivered|TestLargeObjectsAreRepaired|TestRepairConvergesDifferencesLargerThanAFrame|TestBackgroundPassGoesOnPastAFailingSegment)$' ./node
	# Every fuzz target of a decoder that takes network (or disk) input, a
	# few seconds each; the committed corpora under testdata/fuzz run in the
	# ordinary tests. Each package's instrumented test binary is built once
	# (go test -c -fuzz) and runs each of its targets with one worker (the
	# race pass has the other core), with the corpus cache go test -fuzz
	# uses. Fuzz one longer with e.g.
	#   go test -run '^$' -fuzz '^FuzzNodeMessage$' -fuzztime 10m ./node
	# A count of inputs, not seconds: under the race pass's load a 3 s run
	# could end while still gathering its baseline coverage, which go test
	# reports as a failure ("context deadline exceeded").
	local fuzztime=${FUZZTIME:-20000x} bin cache pkg targets t
	while read -r pkg targets; do
		bin="$side/$(basename "$pkg").test"
		go test -c -fuzz "^${targets%% *}\$" -o "$bin" "$pkg"
		cache="$(go env GOCACHE)/fuzz/$(go list "$pkg")"
		for t in $targets; do
			(cd "$pkg" && "$bin" -test.run '^$' -test.fuzz "^${t}\$" -test.fuzztime "$fuzztime" -test.parallel 1 -test.fuzzcachedir "$cache")
		done
	done <<'TARGETS'
./wan FuzzReadFrame FuzzReadMessage FuzzDecodePayload FuzzParseEnvelope
./codec FuzzUnmarshal
./consistency FuzzParse
./api FuzzClientMessage FuzzMessageDecoding
./node FuzzNodeMessage FuzzHintDeliver FuzzGrantSet
./version FuzzDecodeContext FuzzUnmarshalObject FuzzObjectDecoding
./repair FuzzDecodeProgress FuzzDecodeDirtySet
./store FuzzDecodeHint FuzzDecodeObject FuzzOpenSealed
TARGETS
}
side_passes > "$side/log" 2>&1 &
side_pid=$!

# The Terraform test needs the Docker provider, built from source when it
# is not cached (deploy/terraform/provider-mirror.sh): start it now, beside
# everything else, rather than when the deploy tests start. On a machine
# whose caches are cold it took 19 minutes under the load of this script,
# hence the race pass's timeout (go test's timeout ends the whole package).
if command -v terraform >/dev/null && command -v docker >/dev/null && command -v flock >/dev/null; then
	deploy/terraform/provider-mirror.sh > "$side/provider.log" 2>&1 &
fi

# One pass, every package under the race detector: the process tests run
# binaries built without it, so only the in-process packages pay for it.
race=0
go test -count=1 -race -timeout 30m ./... || race=$?
side_rc=0
wait "$side_pid" || side_rc=$?
echo "--- the fault matrix without the race detector, node's megabyte tests and the fuzz targets:"
cat "$side/log"
if [ "$race" -ne 0 ] || [ "$side_rc" -ne 0 ]; then
	echo "FAIL: race pass exit $race, other passes exit $side_rc"
	exit 1
fi
