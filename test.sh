#!/usr/bin/env bash
# Runs every check Meridian's CI runs: formatting, vet, the tests (with the
# race detector on the concurrent packages) and a short fuzz of every
# decoder of network input. Needs only Go (see go.mod for the version).
set -euo pipefail
cd "$(dirname "$0")"

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...
go build -o bin/meridian ./cmd/meridian
go test -count=1 -timeout 15m ./...
go test -count=1 -race -timeout 15m ./store ./wan ./node ./client
# Every fuzz target of a decoder that takes network (or disk) input, a few
# seconds each; the committed corpora under testdata/fuzz run in the
# ordinary tests above. Fuzz one longer with e.g.
#   go test -run '^$' -fuzz '^FuzzNodeMessage$' -fuzztime 10m ./node
fuzztime=${FUZZTIME:-3s}
while read -r pkg targets; do
	for t in $targets; do
		go test -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" "$pkg"
	done
done <<'TARGETS'
./wan FuzzReadFrame FuzzReadMessage FuzzDecodePayload
./codec FuzzUnmarshal
./consistency FuzzParse
./api FuzzClientMessage
./node FuzzNodeMessage FuzzHintDeliver FuzzGrantSet
./version FuzzDecodeContext FuzzUnmarshalObject
./repair FuzzDecodeProgress FuzzDecodeDirtySet
./store FuzzDecodeHint FuzzDecodeObject
TARGETS
