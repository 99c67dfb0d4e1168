#!/usr/bin/env bash
# Runs every check Meridian's CI runs: formatting, vet, the tests (with the
# race detector on the concurrent packages) and a short fuzz of the wire
# decoder. Needs only Go (see go.mod for the version).
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
go test -run '^$' -fuzz '^FuzzReadFrame$' -fuzztime 15s ./wan
