package meridian_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/meridian-kv/meridian/"

// allowed lists, for each package, the project packages it may import
// (DESIGN.md: cmd → node → {wan, placement, repair, store, telemetry},
// client → wan; the pure packages import no I/O package).
var allowed = map[string][]string{
	"codec":       {},
	"placement":   {},
	"consistency": {},
	"history":     {},
	"grants":      {},
	"version":     {"codec"},
	"api":         {"codec", "consistency", "version"},
	"repair":      {"codec", "consistency", "placement", "version"},
	"telemetry":   {},
	// otelsetup installs the OpenTelemetry SDK and exporters; only cmd may
	// use it, so libraries (the Go client above all) link the API only.
	"telemetry/otelsetup": {"telemetry"},
	"deploy":              {},
	// fuzzseed keeps fuzz seed corpora for the packages' tests.
	"internal/fuzzseed": {},
	"internal/race":     {},
	// wait is the one context-bound sleep.
	"internal/wait": {},
	// walsync lets tests hold, count or fail the store's log syncs.
	"internal/walsync": {},
	"store":            {"codec", "placement", "version"},
	"wan":              {"codec"},
	"client":           {"api", "codec", "consistency", "telemetry", "version", "wan"},
	"node":             {"api", "codec", "consistency", "grants", "internal/wait", "placement", "repair", "store", "telemetry", "version", "wan"},
	"workload":         {"api", "client", "consistency", "history", "telemetry", "version", "wan"},
	// bench generates YCSB load and reports it; targets plug in through
	// its Driver interface, so it depends on no project package.
	"bench": {},
	// drill runs a failover drill over the client and the workload.
	"drill": {"api", "bench", "client", "history", "internal/wait", "version", "workload"},
	"sim":   {"api", "client", "consistency", "history", "node", "telemetry", "version", "wan", "workload"},
	// devcluster writes a local cluster's node configurations, certificates
	// and keys for `meridian dev` and for tests.
	"devcluster": {"node", "store", "wan"},
	"cmd/meridian": {"api", "bench", "client", "codec", "consistency", "devcluster", "drill", "grants", "history", "internal/wait", "node", "placement", "store",
		"telemetry", "telemetry/otelsetup", "version", "wan"},
}

// TestImportDirection fails when a package imports a project package its
// layer may not depend on, or when a pure package (see pure in
// purity_test.go) reads a clock, draws randomness or reaches the file
// system, the network or the telemetry SDK, so the dependency direction
// cannot rot.
func TestImportDirection(t *testing.T) {
	seen := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "tools") && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		pkg := filepath.ToSlash(filepath.Dir(path))
		if pkg == "." {
			return nil
		}
		seen[pkg] = true
		rules, ok := allowed[pkg]
		if !ok {
			t.Errorf("package %s has no import rule: add it to allowed in imports_test.go", pkg)
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		if slices.Contains(pure, pkg) {
			bad, err := purityViolations(path, nil)
			if err != nil {
				return err
			}
			for _, b := range bad {
				t.Errorf("%s, but package %s is pure: pass the clock, random source or I/O in", b, pkg)
			}
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(p, module) {
				continue
			}
			dep := strings.TrimPrefix(p, module)
			i := sort.SearchStrings(rules, dep)
			if i == len(rules) || rules[i] != dep {
				t.Errorf("%s imports %s, which its layer may not depend on", path, dep)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, must := range append([]string{"store", "wan", "node", "client", "cmd/meridian"}, pure...) {
		if !seen[must] {
			t.Errorf("package %s not found: is the test running at the module root?", must)
		}
	}
}
