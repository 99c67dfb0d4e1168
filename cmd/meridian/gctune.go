package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// The Go garbage collector's settings for a node process.
//
// A node's Go heap is small (the store's block cache lives outside it) and
// short-lived: request envelopes, decoded objects and sealed copies. With
// the runtime's default (GOGC=100) the collector ran often enough under
// load to take a large share of a node's CPU, and each cycle shrank the
// stacks of the idle request workers, which then grew them again on their
// next request. A node therefore runs with GOGC=400 — the heap may grow to
// five times what is live between collections — and, so that this cannot
// grow without bound, a soft memory limit of a quarter of the machine's
// memory (as CockroachDB's --max-go-memory does), past which the collector
// runs as often as it must. GOGC or GOMEMLIMIT in the environment turn this
// off: the operator's settings win.
const (
	nodeGCPercent      = 400
	nodeMemLimitShare  = 4 // 1/4 of MemTotal
	minNodeMemoryLimit = 256 << 20
)

// gcSettings is what tuneGC applies: GC percent (0: leave it) and memory
// limit in bytes (0: leave it).
type gcSettings struct {
	percent int
	limit   int64
}

func (s gcSettings) String() string {
	if s.percent == 0 && s.limit == 0 {
		return "runtime defaults (GOGC or GOMEMLIMIT set)"
	}
	return fmt.Sprintf("GOGC=%d GOMEMLIMIT=%dMiB", s.percent, s.limit>>20)
}

// nodeGCSettings decides the settings from the environment and the
// machine's meminfo (nil: unknown, no limit).
func nodeGCSettings(getenv func(string) string, meminfo io.Reader) gcSettings {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return gcSettings{}
	}
	s := gcSettings{percent: nodeGCPercent}
	if total := memTotal(meminfo); total > 0 {
		s.limit = max(total/nodeMemLimitShare, minNodeMemoryLimit)
	}
	return s
}

// memTotal parses MemTotal (bytes) from /proc/meminfo's format; 0 if
// absent.
func memTotal(r io.Reader) int64 {
	if r == nil {
		return 0
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || kb <= 0 {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// tuneGC applies a node process's collector settings and returns them.
func tuneGC() gcSettings {
	var meminfo io.Reader
	if f, err := os.Open("/proc/meminfo"); err == nil {
		defer f.Close()
		meminfo = f
	}
	s := nodeGCSettings(os.Getenv, meminfo)
	if s.percent != 0 {
		debug.SetGCPercent(s.percent)
	}
	if s.limit != 0 {
		debug.SetMemoryLimit(s.limit)
	}
	return s
}
