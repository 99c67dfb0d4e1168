package repair

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

var nightly = Window{Pair: [2]string{"us-east", "eu-west"}, Cron: "0 2 * * *", Duration: 2 * time.Hour}

func TestNextWindow(t *testing.T) {
	for _, tc := range []struct {
		w          Window
		now        string
		start, end string
		in         bool
	}{
		{nightly, "2025-03-10T01:00:00Z", "2025-03-10T02:00:00Z", "2025-03-10T04:00:00Z", false},
		{nightly, "2025-03-10T01:59:59.999Z", "2025-03-10T02:00:00Z", "2025-03-10T04:00:00Z", false},
		{nightly, "2025-03-10T02:00:00Z", "2025-03-10T02:00:00Z", "2025-03-10T04:00:00Z", true},
		{nightly, "2025-03-10T03:59:59.999Z", "2025-03-10T02:00:00Z", "2025-03-10T04:00:00Z", true},
		{nightly, "2025-03-10T04:00:00Z", "2025-03-11T02:00:00Z", "2025-03-11T04:00:00Z", false},
		{nightly, "2025-03-10T23:00:00Z", "2025-03-11T02:00:00Z", "2025-03-11T04:00:00Z", false},
		// Month and year ends.
		{nightly, "2025-12-31T22:00:00Z", "2026-01-01T02:00:00Z", "2026-01-01T04:00:00Z", false},
		// A window that runs past midnight.
		{Window{Pair: nightly.Pair, Cron: "30 23 * * *", Duration: 3 * time.Hour}, "2025-03-11T01:00:00Z", "2025-03-10T23:30:00Z", "2025-03-11T02:30:00Z", true},
		// Weekends only: Saturday and Sunday 00:00 for 24h join into one
		// 48h window.
		{Window{Pair: nightly.Pair, Cron: "0 0 * * 6,0", Duration: 24 * time.Hour}, "2025-03-12T12:00:00Z", "2025-03-15T00:00:00Z", "2025-03-17T00:00:00Z", false},
		{Window{Pair: nightly.Pair, Cron: "0 0 * * 6,0", Duration: 24 * time.Hour}, "2025-03-16T12:00:00Z", "2025-03-16T00:00:00Z", "2025-03-17T00:00:00Z", true},
		// Descriptor.
		{Window{Pair: nightly.Pair, Cron: "@daily", Duration: time.Hour}, "2025-03-10T00:30:00Z", "2025-03-10T00:00:00Z", "2025-03-10T01:00:00Z", true},
		// Leap day: February 29 only.
		{Window{Pair: nightly.Pair, Cron: "0 0 29 2 *", Duration: time.Hour}, "2025-03-01T00:00:00Z", "2028-02-29T00:00:00Z", "2028-02-29T01:00:00Z", false},
	} {
		now := utc(tc.now)
		start, end := NextWindow(tc.w, now)
		if !start.Equal(utc(tc.start)) || !end.Equal(utc(tc.end)) {
			t.Errorf("%q for %v at %s: window [%s, %s), want [%s, %s)", tc.w.Cron, tc.w.Duration, tc.now, start.Format(time.RFC3339), end.Format(time.RFC3339), tc.start, tc.end)
		}
		if got := InWindow(tc.w, now); got != tc.in {
			t.Errorf("%q at %s: InWindow = %v, want %v", tc.w.Cron, tc.now, got, tc.in)
		}
		// The answer does not depend on the zone now is expressed in.
		zoned := now.In(time.FixedZone("UTC+5:30", 5*3600+1800))
		if s, e := NextWindow(tc.w, zoned); !s.Equal(start) || !e.Equal(end) || InWindow(tc.w, zoned) != tc.in {
			t.Errorf("%q at %s: a non-UTC now gives another answer", tc.w.Cron, tc.now)
		}
	}
}

// TestWindowScan walks a week minute by minute with an injected clock:
// the nightly window is open exactly 120 minutes a day, from 02:00.
func TestWindowScan(t *testing.T) {
	start := utc("2025-03-03T00:00:00Z")
	open := 0
	for m := 0; m < 7*24*60; m++ {
		now := start.Add(time.Duration(m) * time.Minute)
		in := InWindow(nightly, now)
		if want := now.Hour() >= 2 && now.Hour() < 4; in != want {
			t.Fatalf("at %s InWindow = %v", now.Format(time.RFC3339), in)
		}
		if in {
			open++
		}
	}
	if open != 7*120 {
		t.Fatalf("open %d minutes in a week, want %d", open, 7*120)
	}
}

func TestOverlappingOpeningsJoin(t *testing.T) {
	w := Window{Pair: nightly.Pair, Cron: "0 * * * *", Duration: 90 * time.Minute}
	now := utc("2025-03-10T00:30:00Z")
	start, end := NextWindow(w, now)
	if start.After(now) || end.Sub(now) < 24*time.Hour {
		t.Fatalf("hourly 90-minute windows at %s: [%s, %s), want one long open window", now, start, end)
	}
	for m := 0; m < 24*60; m += 7 {
		if !InWindow(w, now.Add(time.Duration(m)*time.Minute)) {
			t.Fatalf("closed at +%dm", m)
		}
	}
}

func TestAlwaysOpenWindow(t *testing.T) {
	w := Window{Pair: [2]string{"us-east", "us-east"}}
	if err := w.Validate(); err != nil {
		t.Fatal(err)
	}
	now := utc("2025-03-10T12:00:00Z")
	start, end := NextWindow(w, now)
	if !start.Equal(now) || !end.IsZero() || !InWindow(w, now) {
		t.Fatalf("always-open window: [%v, %v), open %v", start, end, InWindow(w, now))
	}
}

func TestValidateWindows(t *testing.T) {
	ws := []Window{
		nightly,
		{Pair: [2]string{"us-east", "ap-south"}, Cron: "0 2 * *", Duration: time.Hour},
		{Pair: [2]string{"us-east", "ap-south"}, Cron: "CRON_TZ=Europe/Berlin 0 2 * * *", Duration: time.Hour},
		{Pair: [2]string{"us-east", "ap-south"}, Cron: "CRON_TZ=UTC", Duration: time.Hour},
		{Pair: [2]string{"us-east", "ap-south"}, Cron: "@every 1h", Duration: time.Hour},
		{Pair: [2]string{"us-east", "ap-south"}, Cron: "0 0 30 2 *", Duration: time.Hour},
		{Pair: [2]string{"us-east", "ap-south"}, Cron: "0 2 * * *"},
		{Pair: [2]string{"us-east", ""}, Cron: "0 2 * * *", Duration: time.Hour, BytesPerSecond: -1},
		{Pair: [2]string{"us-east", "us-east"}, Duration: time.Hour},
		{Pair: [2]string{"us-east", "us-east"}, PassInterval: -time.Second},
		{Pair: [2]string{"us-east", "eu-west"}, Cron: "61 2 * * *", Duration: time.Hour},
	}
	err := ValidateWindows(ws)
	if err == nil {
		t.Fatal("no error")
	}
	var we *WindowError
	if !errors.As(err, &we) || we.Index != 1 {
		t.Fatalf("first problem %v, want a *WindowError for window 1", err)
	}
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{
		`window 1 (us-east↔ap-south): bad cron expression "0 2 * *"`,
		`window 2 (us-east↔ap-south): bad cron expression "CRON_TZ=Europe/Berlin 0 2 * * *": time zone prefixes are not supported`,
		`window 3 (us-east↔ap-south): bad cron expression "CRON_TZ=UTC"`,
		`window 4 (us-east↔ap-south): bad cron expression "@every 1h": @every has no fixed start`,
		`window 5 (us-east↔ap-south): bad cron expression "0 0 30 2 *": never fires`,
		`window 6 (us-east↔ap-south): duration 0s`,
		`window 7 (us-east↔): pair needs two datacenter names`,
		`window 7 (us-east↔): bytes per second -1 is negative`,
		`window 8 (inside us-east): duration 1h0m0s given for an always-open window`,
		`window 9 (inside us-east): pass interval -1s is negative`,
		`window 10 (us-east↔eu-west): bad cron expression "61 2 * * *"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("errors lack %q", want)
		}
	}
	if strings.Contains(msg, "window 0 ") {
		t.Error("the valid window was reported")
	}
	if err := ValidateWindows([]Window{nightly}); err != nil {
		t.Errorf("valid windows: %v", err)
	}
	if s, e := NextWindow(ws[1], utc("2025-03-10T00:00:00Z")); !s.IsZero() || !e.IsZero() || InWindow(ws[1], utc("2025-03-10T02:00:00Z")) {
		t.Error("an invalid window opens")
	}
}
