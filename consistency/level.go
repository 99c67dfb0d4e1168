package consistency

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Level is a named consistency level.
type Level string

// The levels, as in Cassandra. "Local" is the coordinator's datacenter.
const (
	One         Level = "ONE"
	LocalOne    Level = "LOCAL_ONE"
	LocalQuorum Level = "LOCAL_QUORUM"
	EachQuorum  Level = "EACH_QUORUM"
	Quorum      Level = "QUORUM"
	All         Level = "ALL"
)

// Levels lists every named level.
var Levels = []Level{One, LocalOne, LocalQuorum, EachQuorum, Quorum, All}

// ErrInvalid is wrapped by every error about a consistency specification.
var ErrInvalid = errors.New("consistency: invalid consistency")

// Spec is a parsed consistency: either a Level or an explicit per-DC map.
// The zero Spec means "the keyspace default".
type Spec struct {
	Level Level
	PerDC map[string]int
}

// IsZero reports whether the spec is unset.
func (s Spec) IsZero() bool { return s.Level == "" && s.PerDC == nil }

// String renders the spec in the form Parse accepts.
func (s Spec) String() string {
	if s.PerDC == nil {
		return string(s.Level)
	}
	dcs := make([]string, 0, len(s.PerDC))
	for dc := range s.PerDC {
		dcs = append(dcs, dc)
	}
	sort.Strings(dcs)
	parts := make([]string, len(dcs))
	for i, dc := range dcs {
		parts[i] = dc + "=" + strconv.Itoa(s.PerDC[dc])
	}
	return strings.Join(parts, ",")
}

// Parse reads a level name (case-insensitive) or a per-DC vector
// "dc=n,dc=n". The empty string is the zero Spec.
func Parse(s string) (Spec, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Spec{}, nil
	}
	if !strings.Contains(s, "=") {
		l := Level(strings.ToUpper(s))
		for _, known := range Levels {
			if l == known {
				return Spec{Level: l}, nil
			}
		}
		return Spec{}, fmt.Errorf("%w: unknown level %q (use one of ONE, LOCAL_ONE, LOCAL_QUORUM, EACH_QUORUM, QUORUM, ALL, or a per-datacenter map like east=2,west=1)", ErrInvalid, s)
	}
	m := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		dc, n, ok := strings.Cut(strings.TrimSpace(part), "=")
		dc = strings.TrimSpace(dc)
		if !ok || dc == "" {
			return Spec{}, fmt.Errorf("%w: %q is not of the form dc=n", ErrInvalid, part)
		}
		v, err := strconv.Atoi(strings.TrimSpace(n))
		if err != nil || v < 0 {
			return Spec{}, fmt.Errorf("%w: %q needs a non-negative replica count", ErrInvalid, part)
		}
		if _, dup := m[dc]; dup {
			return Spec{}, fmt.Errorf("%w: datacenter %q named twice", ErrInvalid, dc)
		}
		m[dc] = v
	}
	return Spec{PerDC: m}, nil
}

// Need is what a request must collect: at least PerDC[dc] acks in each
// named datacenter, and at least Total acks in all.
type Need struct {
	PerDC map[string]int
	Total int
}

// Resolve turns the spec into a Need for a keyspace with replication rep
// ({dc: replicas}) at a coordinator in localDC. It fails when the spec can
// never be met: a datacenter that holds no replicas, more acks than
// replicas, or a LOCAL level at a coordinator whose datacenter holds none.
func (s Spec) Resolve(rep map[string]int, localDC string) (Need, error) {
	total := 0
	for _, n := range rep {
		total += n
	}
	if total == 0 {
		return Need{}, fmt.Errorf("%w: the keyspace keeps no replicas", ErrInvalid)
	}
	need := Need{PerDC: map[string]int{}}
	switch {
	case s.PerDC != nil:
		sum := 0
		for dc, n := range s.PerDC {
			if rep[dc] == 0 && n > 0 {
				return Need{}, fmt.Errorf("%w: datacenter %q holds no replicas of this keyspace (it replicates to %s)", ErrInvalid, dc, repString(rep))
			}
			if n > rep[dc] {
				return Need{}, fmt.Errorf("%w: %s=%d asks for more acks than the %d replicas in %q", ErrInvalid, dc, n, rep[dc], dc)
			}
			if n > 0 {
				need.PerDC[dc] = n
			}
			sum += n
		}
		if sum == 0 {
			return Need{}, fmt.Errorf("%w: %q asks for no acknowledgement at all", ErrInvalid, s.String())
		}
	case s.Level == One:
		need.Total = 1
	case s.Level == Quorum:
		need.Total = total/2 + 1
	case s.Level == LocalOne, s.Level == LocalQuorum:
		n := rep[localDC]
		if n == 0 {
			return Need{}, fmt.Errorf("%w: %s needs replicas in the coordinator's datacenter %q, which keeps none (it replicates to %s); use QUORUM or a per-datacenter map", ErrInvalid, s.Level, localDC, repString(rep))
		}
		if s.Level == LocalOne {
			need.PerDC[localDC] = 1
		} else {
			need.PerDC[localDC] = n/2 + 1
		}
	case s.Level == EachQuorum, s.Level == All:
		for dc, n := range rep {
			if n == 0 {
				continue
			}
			if s.Level == All {
				need.PerDC[dc] = n
			} else {
				need.PerDC[dc] = n/2 + 1
			}
		}
	default:
		return Need{}, fmt.Errorf("%w: unknown level %q", ErrInvalid, s.Level)
	}
	return need, nil
}

func repString(rep map[string]int) string {
	parts := make([]string, 0, len(rep))
	for dc, n := range rep {
		if n > 0 {
			parts = append(parts, dc+"="+strconv.Itoa(n))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
