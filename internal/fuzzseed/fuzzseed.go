// Package fuzzseed keeps the seed corpora of the project's fuzz targets in
// step with the messages they are made from. A test builds each seed from a
// real message and calls Check, which fails when the committed file under
// testdata/fuzz/<target>/ is missing or stale, so `go test` runs every seed
// and `go test -fuzz` starts from real messages. With MERIDIAN_WRITE_SEEDS=1
// in the environment it writes the files instead, after a message format
// changes.
package fuzzseed

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// WriteEnv names the environment variable that makes Check write the seeds.
const WriteEnv = "MERIDIAN_WRITE_SEEDS"

// Check checks (or, with WriteEnv set, writes) each seed as
// testdata/fuzz/<target>/<name> in the go test fuzz v1 format, relative to
// the test's package directory. typ is the Go type of the target's one
// argument ("[]byte" or "string").
func Check(t testing.TB, target, typ string, seeds map[string][]byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	for name, b := range seeds {
		want := fmt.Sprintf("go test fuzz v1\n%s(%q)\n", typ, b)
		path := filepath.Join(dir, name)
		if os.Getenv(WriteEnv) != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("seed %s is missing or stale (%v): run %s=1 go test -run %s", path, err, WriteEnv, t.Name())
		}
	}
}
