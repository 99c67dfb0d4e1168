package bench

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Op is one kind of operation.
type Op string

// The operations of the core workloads.
const (
	OpRead            Op = "read"
	OpUpdate          Op = "update"
	OpReadModifyWrite Op = "read-modify-write"
)

// Workload names a mix of operations.
type Workload string

// The workloads.
const (
	WorkloadA     Workload = "A" // 50 % reads, 50 % updates (update heavy)
	WorkloadB     Workload = "B" // 95 % reads, 5 % updates (read mostly)
	WorkloadC     Workload = "C" // reads only
	WorkloadF     Workload = "F" // 50 % reads, 50 % read-modify-writes
	WorkloadWrite Workload = "W" // updates only
)

// Workloads lists every workload, for help texts.
var Workloads = []Workload{WorkloadA, WorkloadB, WorkloadC, WorkloadF, WorkloadWrite}

// mix is the share of each operation, in per mille, in a fixed order so
// the draw is reproducible.
type mix []struct {
	op     Op
	permil int
}

var mixes = map[Workload]mix{
	WorkloadA:     {{OpRead, 500}, {OpUpdate, 500}},
	WorkloadB:     {{OpRead, 950}, {OpUpdate, 50}},
	WorkloadC:     {{OpRead, 1000}},
	WorkloadF:     {{OpRead, 500}, {OpReadModifyWrite, 500}},
	WorkloadWrite: {{OpUpdate, 1000}},
}

// ParseWorkload accepts A, B, C, F and W (or "write"), in any case.
func ParseWorkload(s string) (Workload, error) {
	u := strings.ToUpper(s)
	if u == "WRITE" || u == "WRITE-ONLY" {
		u = "W"
	}
	if _, ok := mixes[Workload(u)]; !ok {
		return "", fmt.Errorf("bench: unknown workload %q: use A, B, C, F or W (write-only)", s)
	}
	return Workload(u), nil
}

// Spec describes the load: which workload over how many records of what
// size, with which key chooser.
type Spec struct {
	Workload     Workload
	Records      uint64
	ValueSize    int
	Distribution Distribution
}

// Generator draws operations and keys for a Spec. It is safe for
// concurrent use; each caller brings its own random source.
type Generator struct {
	spec Spec
	mix  mix
	keys KeyChooser
}

// NewGenerator checks spec and returns its generator.
func NewGenerator(spec Spec) (*Generator, error) {
	m, ok := mixes[spec.Workload]
	if !ok {
		return nil, fmt.Errorf("bench: unknown workload %q: use A, B, C, F or W (write-only)", spec.Workload)
	}
	if spec.ValueSize < 0 {
		return nil, fmt.Errorf("bench: value size %d is negative", spec.ValueSize)
	}
	if spec.Distribution == "" {
		spec.Distribution = Uniform
	}
	keys, err := NewKeyChooser(spec.Distribution, spec.Records)
	if err != nil {
		return nil, err
	}
	return &Generator{spec: spec, mix: m, keys: keys}, nil
}

// Spec returns the generator's spec, defaults filled in.
func (g *Generator) Spec() Spec { return g.spec }

// Next draws the next operation and its record number.
func (g *Generator) Next(r *rand.Rand) (Op, uint64) {
	return g.op(r), g.keys.Next(r)
}

func (g *Generator) op(r *rand.Rand) Op {
	n := r.IntN(1000)
	for _, m := range g.mix {
		if n < m.permil {
			return m.op
		}
		n -= m.permil
	}
	return g.mix[len(g.mix)-1].op
}
