package meridian_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// pure lists the packages whose non-test code must be a deterministic
// function of its inputs: no clock, no randomness, no file system, no
// network, no telemetry SDK. A caller that needs the time or a random number
// passes it in (a clock function, a seed), so the same inputs give the same
// outputs in a test, in a simulation and in production.
var pure = []string{"api", "codec", "consistency", "grants", "history", "placement", "repair", "version"}

// bannedImports are the import paths (and, ending in "/", path prefixes) a
// pure package may not use.
var bannedImports = []string{
	"math/rand", "math/rand/",
	"crypto/rand",
	"os", "os/",
	"net", "net/",
	"go.opentelemetry.io/otel/sdk", "go.opentelemetry.io/otel/sdk/",
	"go.opentelemetry.io/otel/exporters/",
}

// bannedTime are the functions of package time that read the clock or wait
// on it. time.Time, time.Duration and their methods stay allowed: they are
// values.
var bannedTime = []string{"After", "AfterFunc", "NewTicker", "NewTimer", "Now", "Since", "Sleep", "Tick", "Until"}

func bannedImport(p string) bool {
	for _, b := range bannedImports {
		if p == b || (strings.HasSuffix(b, "/") && strings.HasPrefix(p, b)) {
			return true
		}
	}
	return false
}

// purityViolations parses one Go source file and returns a line for every
// banned import and every use of a banned time function in it (called or
// taken as a value, under any import name). A dot import of time is banned
// outright, since its uses cannot be told from local names.
func purityViolations(filename string, src any) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filename, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var out []string
	timeNames := map[string]bool{}
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		pos := fset.Position(imp.Pos())
		if bannedImport(p) {
			out = append(out, pos.String()+": imports "+p)
		}
		if p != "time" {
			continue
		}
		switch {
		case imp.Name == nil:
			timeNames["time"] = true
		case imp.Name.Name == ".":
			out = append(out, pos.String()+": dot-imports time")
		case imp.Name.Name != "_":
			timeNames[imp.Name.Name] = true
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); ok && timeNames[id.Name] && slices.Contains(bannedTime, sel.Sel.Name) {
			out = append(out, fset.Position(sel.Pos()).String()+": uses time."+sel.Sel.Name)
		}
		return true
	})
	return out, nil
}

// TestPurityChecker plants each banned thing in a small source file and
// checks purityViolations reports it, and that allowed uses of time pass.
func TestPurityChecker(t *testing.T) {
	bad := map[string]string{
		"math/rand":         `import "math/rand"; var _ = rand.Int`,
		"math/rand/v2":      `import "math/rand/v2"; var _ = rand.Int`,
		"crypto/rand":       `import "crypto/rand"; var _ = rand.Reader`,
		"os":                `import "os"; var _ = os.Args`,
		"os/exec":           `import "os/exec"; var _ = exec.Command`,
		"net":               `import "net"; var _ net.Conn`,
		"net/http":          `import "net/http"; var _ = http.Get`,
		"otel sdk":          `import "go.opentelemetry.io/otel/sdk/trace"; var _ = trace.NewTracerProvider`,
		"otel exporter":     `import "go.opentelemetry.io/otel/exporters/prometheus"; var _ = prometheus.New`,
		"time.Now":          `import "time"; func f() { _ = time.Now() }`,
		"time.Now value":    `import "time"; var now = time.Now`,
		"time.Sleep":        `import "time"; func f() { time.Sleep(1) }`,
		"time.After":        `import "time"; func f() { <-time.After(1) }`,
		"time.AfterFunc":    `import "time"; func f() { time.AfterFunc(1, nil) }`,
		"time.NewTimer":     `import "time"; func f() { time.NewTimer(1) }`,
		"time.NewTicker":    `import "time"; func f() { time.NewTicker(1) }`,
		"time.Tick":         `import "time"; func f() { time.Tick(1) }`,
		"time.Since":        `import "time"; func f(t time.Time) { time.Since(t) }`,
		"time.Until":        `import "time"; func f(t time.Time) { time.Until(t) }`,
		"renamed time":      `import clock "time"; func f() { clock.Now() }`,
		"dot-imported time": `import . "time"; func f() { Now() }`,
	}
	for name, body := range bad {
		got, err := purityViolations(name+".go", "package p\n"+body+"\n")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) == 0 {
			t.Errorf("%s: not reported", name)
		}
	}
	good := `package p
import (
	"time"
	"crypto/sha256"
	"math"
	"sync"
)
type T struct{ At time.Time; Every time.Duration; now func() time.Time }
func (t T) Due(now time.Time) bool { return now.Sub(t.At) >= t.Every && now.After(t.At) }
func f() time.Time { var mu sync.Mutex; mu.Lock(); defer mu.Unlock(); _ = sha256.Sum256(nil); _ = math.Pi; return time.Unix(0, 0).Add(time.Second) }
`
	got, err := purityViolations("good.go", good)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("allowed uses reported: %v", got)
	}
}
