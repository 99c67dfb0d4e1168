package node

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/meridian-kv/meridian/codec"
	"github.com/meridian-kv/meridian/wan"
)

// withVersion returns a copy of message m (a pointer to a struct) with its
// V set to v.
func withVersion(m any, v uint8) any {
	c := reflect.New(reflect.TypeOf(m).Elem())
	c.Elem().Set(reflect.ValueOf(m).Elem())
	c.Elem().FieldByName("V").SetUint(uint64(v))
	return c.Interface()
}

// TestDecodeRefusesUnknownVersion: every node message decodes with the
// version nodes write (0) and is refused, with an error saying so, with
// any other, whether a handler decodes it as a request or a caller as a
// reply.
func TestDecodeRefusesUnknownVersion(t *testing.T) {
	for _, m := range nodeMessages() {
		for _, v := range []uint8{msgVersion, msgVersion + 1, 255} {
			b, err := codec.Marshal(withVersion(m.sample, v))
			if err != nil {
				t.Fatal(err)
			}
			err = codec.Unmarshal(b, m.new())
			switch {
			case v == msgVersion && err != nil:
				t.Errorf("%s of version %d: %v", m.name, v, err)
			case v != msgVersion && !errors.Is(err, errMessageVersion):
				t.Errorf("%s of version %d decoded with %v, want %v", m.name, v, err, errMessageVersion)
			}
			if _, ok := m.sample.(nodeRequest); !ok || v == msgVersion {
				continue
			}
			env, err := wan.NewEnvelope(typeReplicaWrite, withVersion(m.sample, v))
			if err != nil {
				t.Fatal(err)
			}
			err = decodeRequest(env, m.new().(nodeRequest))
			if !errors.Is(err, wan.ErrMalformed) || !errors.Is(err, errMessageVersion) || !strings.Contains(err.Error(), "upgrade this node") {
				t.Errorf("%s of version %d as a request: %v", m.name, v, err)
			}
		}
	}
}

// TestDecodeListsEveryMessage: the node-to-node messages are the toarray
// structs of this package, all declared in messages.go, and every one
// with a version field is among nodeMessages, so its version check and
// its fuzzing are tested.
func TestDecodeListsEveryMessage(t *testing.T) {
	listed := map[string]bool{}
	for _, m := range nodeMessages() {
		listed[reflect.TypeOf(m.sample).Elem().Name()] = true
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok || len(st.Fields.List) == 0 || st.Fields.List[0].Tag == nil || !strings.Contains(st.Fields.List[0].Tag.Value, "toarray") {
				return true
			}
			found++
			if file != "messages.go" {
				t.Errorf("%s declares %s, a toarray struct: node-to-node messages belong in messages.go", file, ts.Name.Name)
			}
			for _, fld := range st.Fields.List {
				for _, name := range fld.Names {
					if name.Name == "V" && !listed[ts.Name.Name] {
						t.Errorf("message %s is missing from nodeMessages (fuzz_test.go)", ts.Name.Name)
					}
				}
			}
			return true
		})
	}
	if found < len(listed) {
		t.Fatalf("found %d toarray structs, fewer than the %d messages listed: is the test in the node directory?", found, len(listed))
	}
}
