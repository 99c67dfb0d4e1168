package main

import "testing"

func TestParseRate(t *testing.T) {
	good := map[string]int64{"": 0, "1": 1, "500KiB": 500 << 10, "20MiB": 20 << 20, "1GiB": 1 << 30, "3MB": 3e6, "7 KB": 7e3, "12B": 12}
	for in, want := range good {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "-5MiB", "fast", "1.5MiB", "MiB", "9223372036854775807KiB"} {
		if got, err := parseRate(in); err == nil {
			t.Errorf("parseRate(%q) = %d, want an error", in, got)
		}
	}
}
