package main

import (
	"strings"
	"testing"
)

func TestNodeGCSettings(t *testing.T) {
	const meminfo = "MemTotal:       24683612 kB\nMemFree:        22816012 kB\n"
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	got := nodeGCSettings(env(nil), strings.NewReader(meminfo))
	if want := (gcSettings{percent: 400, limit: 24683612 << 10 / 4}); got != want {
		t.Errorf("no environment: got %+v, want %+v", got, want)
	}
	for _, v := range []string{"GOGC", "GOMEMLIMIT"} {
		if got := nodeGCSettings(env(map[string]string{v: "200"}), strings.NewReader(meminfo)); got != (gcSettings{}) {
			t.Errorf("%s set: got %+v, want the runtime's own settings left alone", v, got)
		}
	}
	if got := nodeGCSettings(env(nil), strings.NewReader("MemFree: 1 kB\n")); got != (gcSettings{percent: 400}) {
		t.Errorf("no MemTotal: got %+v, want GOGC=400 and no limit", got)
	}
	if got := nodeGCSettings(env(nil), strings.NewReader("MemTotal: 102400 kB\n")); got.limit != minNodeMemoryLimit {
		t.Errorf("100 MiB machine: limit %d, want the %d floor", got.limit, minNodeMemoryLimit)
	}
	if got := nodeGCSettings(env(nil), nil); got != (gcSettings{percent: 400}) {
		t.Errorf("no meminfo: got %+v", got)
	}
}
