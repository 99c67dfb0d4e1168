package repair

import (
	"slices"
	"testing"
	"time"
)

var eastWest = [2]string{"us-east", "eu-west"}

// runTasks plays the node: it carries out every task Plan returns at now,
// each taking step, recording it, until Plan has nothing or the clock
// passes until. It returns the clock and the tasks run.
func runTasks(t *testing.T, windows []Window, ps []Progress, dirty *DirtySet, now, until time.Time, step time.Duration) (time.Time, []Task) {
	t.Helper()
	var ran []Task
	for now.Before(until) {
		tasks := Plan(windows, ps, dirty, now)
		if len(tasks) == 0 {
			return now, ran
		}
		for _, task := range tasks {
			if !task.WindowEnd.IsZero() && now.Add(step).After(task.WindowEnd) {
				return now, ran // would not finish in the window: stop, as the node does
			}
			for i := range ps {
				if ps[i].Pair == task.Pair && ps[i].Keyspace == task.Keyspace {
					if err := ps[i].Record(task, RangeStats{KeysCompared: 10, BytesSent: 100}, now, now.Add(step)); err != nil {
						t.Fatal(err)
					}
				}
			}
			if dirty != nil {
				dirty.Clear(task.Pair, task.Keyspace, task.Range, now)
			}
			ran = append(ran, task)
		}
		now = now.Add(step)
	}
	return now, ran
}

func TestPlanNightlyPass(t *testing.T) {
	ws := []Window{nightly}
	ps := []Progress{NewProgress([2]string{"eu-west", "us-east"}, "users")}
	ps[0].Segments = 16

	if tasks := Plan(ws, ps, nil, utc("2025-03-10T01:00:00Z")); len(tasks) != 0 {
		t.Fatalf("outside the window: %v", tasks)
	}
	tasks := Plan(ws, ps, nil, utc("2025-03-10T02:30:00Z"))
	if len(tasks) != 1 {
		t.Fatalf("in the window: %d tasks", len(tasks))
	}
	want := Task{Kind: TaskPass, Pair: [2]string{"eu-west", "us-east"}, Keyspace: "users",
		Range: Segments(16)[0], WindowEnd: utc("2025-03-10T04:00:00Z"), BytesPerSecond: DefaultBytesPerSecond}
	if tasks[0] != want {
		t.Fatalf("task %+v, want %+v", tasks[0], want)
	}

	// 10 minutes per segment: 9 segments fit before the window closes at
	// 04:00 when starting at 02:30 (the 10th would end at 04:10).
	now, ran := runTasks(t, ws, ps, nil, utc("2025-03-10T02:30:00Z"), utc("2025-03-11T00:00:00Z"), 10*time.Minute)
	if len(ran) != 9 || ps[0].PassStarted.IsZero() || len(ps[0].Done) != 1 || ps[0].Done[0] != (Range{From: 0, To: Segments(16)[9].From}) {
		t.Fatalf("first night ran %d tasks, progress %+v", len(ran), ps[0])
	}
	if tasks := Plan(ws, ps, nil, utc("2025-03-10T04:00:00Z")); len(tasks) != 0 {
		t.Fatalf("after the window closed at %v: %v", now, tasks)
	}

	// A restart: the checkpoint goes through the store and back.
	b, err := EncodeProgress(ps[0])
	if err != nil {
		t.Fatal(err)
	}
	if ps[0], err = DecodeProgress(b); err != nil {
		t.Fatal(err)
	}

	// The next night resumes at segment 9 and completes the pass.
	tasks = Plan(ws, ps, nil, utc("2025-03-11T02:00:00Z"))
	if len(tasks) != 1 || tasks[0].Range != Segments(16)[9] {
		t.Fatalf("resume: %+v", tasks)
	}
	_, ran = runTasks(t, ws, ps, nil, utc("2025-03-11T02:00:00Z"), utc("2025-03-11T04:00:00Z"), 10*time.Minute)
	if len(ran) != 7 {
		t.Fatalf("second night ran %d tasks, want the 7 left", len(ran))
	}
	p := ps[0]
	if !p.LastFullStarted.Equal(utc("2025-03-10T02:30:00Z")) || !p.LastFullCompleted.Equal(utc("2025-03-11T03:10:00Z")) {
		t.Fatalf("last full repair [%v, %v]", p.LastFullStarted, p.LastFullCompleted)
	}
	if !p.PassStarted.IsZero() || p.Done != nil || p.LastPass.KeysCompared != 160 || p.Total.BytesSent != 1600 {
		t.Fatalf("after the pass: %+v", p)
	}
	// One pass per opening: nothing more tonight, a new pass tomorrow.
	if tasks := Plan(ws, ps, nil, utc("2025-03-11T03:30:00Z")); len(tasks) != 0 {
		t.Fatalf("a second pass in the same window: %v", tasks)
	}
	if tasks := Plan(ws, ps, nil, utc("2025-03-12T02:00:00Z")); len(tasks) != 1 || tasks[0].Range != Segments(16)[0] {
		t.Fatalf("next night: %+v", tasks)
	}
}

func TestPlanDirtyFirst(t *testing.T) {
	ws := []Window{nightly}
	ps := []Progress{NewProgress(eastWest, "users")}
	dirty := NewDirtySet(16)
	tok := Segments(16)[5].From + 12345
	dropped := utc("2025-03-09T15:00:00Z")
	if err := dirty.Add("users", eastWest, Range{From: tok, To: tok + 1}, dropped.Add(-3*time.Hour), dropped); err != nil {
		t.Fatal(err)
	}
	// A dirty range of another pair or keyspace is not this pair's.
	dirty.Add("users", [2]string{"us-east", "ap-south"}, Segments(16)[1], dropped, dropped)
	dirty.Add("orders", eastWest, Segments(16)[2], dropped, dropped)

	now := utc("2025-03-10T02:00:00Z")
	tasks := Plan(ws, ps, dirty, now)
	if len(tasks) != 1 || tasks[0].Kind != TaskDirty || tasks[0].Range != Segments(16)[5] {
		t.Fatalf("tasks %+v, want the dirty segment 5", tasks)
	}
	// A repair that started before the last dropped write does not clear
	// the entry; one that started after it does.
	if n := dirty.Clear(eastWest, "users", tasks[0].Range, dropped.Add(-time.Minute)); n != 0 {
		t.Fatalf("a repair started before the drop cleared %d entries", n)
	}
	if n := dirty.Clear(eastWest, "users", tasks[0].Range, now); n != 1 {
		t.Fatalf("cleared %d entries, want 1", n)
	}
	// No pass in progress: the dirty task did not start one.
	ps[0].Record(tasks[0], RangeStats{KeysFixed: 1}, now, now.Add(time.Minute))
	if !ps[0].PassStarted.IsZero() || ps[0].Total.KeysFixed != 1 {
		t.Fatalf("after a dirty task: %+v", ps[0])
	}
	tasks = Plan(ws, ps, dirty, now)
	if len(tasks) != 1 || tasks[0].Kind != TaskPass || tasks[0].Range != Segments(DefaultSegments)[0] {
		t.Fatalf("then %+v, want the pass", tasks)
	}
}

func TestPlanOrderAndWindows(t *testing.T) {
	ws := []Window{
		nightly,
		{Pair: [2]string{"us-east", "ap-south"}, Cron: "0 1 * * *", Duration: 4 * time.Hour, BytesPerSecond: 1 << 20},
		{Pair: [2]string{"ap-south", "us-east"}, Cron: "0 2 * * *", Duration: 4 * time.Hour, BytesPerSecond: 4 << 20},
		{Pair: [2]string{"us-east", "us-east"}, BytesPerSecond: 64 << 20},
		{Pair: [2]string{"eu-west", "ap-south"}, Cron: "bad"},
	}
	old := NewProgress([2]string{"ap-south", "us-east"}, "users")
	old.LastFullStarted, old.LastFullCompleted = utc("2025-03-01T01:00:00Z"), utc("2025-03-01T03:00:00Z")
	recent := NewProgress(eastWest, "users")
	recent.LastFullStarted, recent.LastFullCompleted = utc("2025-03-08T02:00:00Z"), utc("2025-03-08T03:00:00Z")
	ps := []Progress{
		recent, old,
		NewProgress([2]string{"us-east", "us-east"}, "users"),
		NewProgress([2]string{"eu-west", "ap-south"}, "users"),
	}
	dirty := NewDirtySet(0)
	dirty.Add("users", eastWest, Segments(DefaultSegments)[7], utc("2025-03-09T00:00:00Z"), utc("2025-03-09T01:00:00Z"))

	tasks := Plan(ws, ps, dirty, utc("2025-03-10T02:30:00Z"))
	if len(tasks) != 3 {
		t.Fatalf("%d tasks: %+v", len(tasks), tasks)
	}
	// Dirty first; then never repaired (inside us-east); then the oldest.
	if tasks[0].Kind != TaskDirty || tasks[0].Pair != CanonicalPair(eastWest) {
		t.Errorf("first task %+v, want the dirty one", tasks[0])
	}
	if tasks[1].Pair != [2]string{"us-east", "us-east"} || !tasks[1].WindowEnd.IsZero() || tasks[1].BytesPerSecond != 64<<20 {
		t.Errorf("second task %+v, want the continuous pass inside us-east", tasks[1])
	}
	// Two windows of ap-south↔us-east are open: the later end, the larger
	// budget.
	if tasks[2].Pair != [2]string{"ap-south", "us-east"} || !tasks[2].WindowEnd.Equal(utc("2025-03-10T06:00:00Z")) || tasks[2].BytesPerSecond != 4<<20 {
		t.Errorf("third task %+v", tasks[2])
	}
}

func TestPlanContinuousInterval(t *testing.T) {
	inside := [2]string{"us-east", "us-east"}
	ws := []Window{{Pair: inside}}
	p := NewProgress(inside, "users")
	p.Segments = 4
	ps := []Progress{p}
	now := utc("2025-03-10T00:00:00Z")
	_, ran := runTasks(t, ws, ps, nil, now, now.Add(time.Hour), time.Minute)
	if len(ran) != 4 || !ps[0].LastFullStarted.Equal(now) {
		t.Fatalf("continuous pass ran %d tasks, progress %+v", len(ran), ps[0])
	}
	if tasks := Plan(ws, ps, nil, now.Add(59*time.Minute)); len(tasks) != 0 {
		t.Fatalf("a new pass before DefaultContinuousInterval: %v", tasks)
	}
	if tasks := Plan(ws, ps, nil, now.Add(DefaultContinuousInterval)); len(tasks) != 1 {
		t.Fatalf("no new pass after DefaultContinuousInterval")
	}
	ws[0].PassInterval = 24 * time.Hour
	if tasks := Plan(ws, ps, nil, now.Add(2*time.Hour)); len(tasks) != 0 {
		t.Fatalf("PassInterval 24h ignored: %v", tasks)
	}
}

// TestPlanGapsAreClipped: a pass whose Done came from ranges off the
// segment grid (dirty ranges of another grid) continues with the gaps,
// clipped to segments.
func TestPlanGapsAreClipped(t *testing.T) {
	ws := []Window{{Pair: eastWest}}
	p := NewProgress(eastWest, "ks")
	p.Segments = 4
	seg := Segments(4)
	p.PassStarted = utc("2025-03-10T00:00:00Z")
	p.Done = []Range{{From: 0, To: seg[0].To + 10}, {From: seg[1].To - 5, To: seg[2].To}}
	tasks := Plan(ws, []Progress{p}, nil, utc("2025-03-10T01:00:00Z"))
	if len(tasks) != 1 || tasks[0].Range != (Range{From: seg[0].To + 10, To: seg[1].To - 5}) {
		t.Fatalf("tasks %+v", tasks)
	}
	p.Done = []Range{{From: 0, To: seg[2].To + 1}}
	tasks = Plan(ws, []Progress{p}, nil, utc("2025-03-10T01:00:00Z"))
	if len(tasks) != 1 || tasks[0].Range != (Range{From: seg[2].To + 1, To: seg[3].To}) {
		t.Fatalf("last gap: %+v", tasks)
	}
}

// TestPlanSpreadPacesAPass: an always-open window with a Spread plans
// segment i of a pass no earlier than i·Spread/Segments after the pass
// started, so a pass of 4 segments over 12h takes four tasks 3h apart, and
// the next pass starts PassInterval after the first.
func TestPlanSpreadPacesAPass(t *testing.T) {
	ws := []Window{{Pair: eastWest, PassInterval: 24 * time.Hour, Spread: 12 * time.Hour}}
	p := NewProgress(eastWest, "ks")
	p.Segments = 4
	ps := []Progress{p}
	start := utc("2025-03-10T00:00:00Z")
	var ranAt []time.Duration
	for now := start; now.Before(start.Add(48 * time.Hour)); now = now.Add(10 * time.Minute) {
		for _, task := range Plan(ws, ps, nil, now) {
			if err := ps[0].Record(task, RangeStats{KeysCompared: 1}, now, now.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			ranAt = append(ranAt, now.Sub(start))
		}
	}
	want := []time.Duration{0, 3 * time.Hour, 6 * time.Hour, 9 * time.Hour, 24 * time.Hour, 27 * time.Hour, 30 * time.Hour, 33 * time.Hour}
	if !slices.Equal(ranAt, want) {
		t.Fatalf("tasks ran at %v, want %v", ranAt, want)
	}
	if ps[0].LastFullCompleted.IsZero() || ps[0].LastFullStarted != start.Add(24*time.Hour) {
		t.Fatalf("progress after two passes: %+v", ps[0])
	}
	if err := (Window{Pair: eastWest, Spread: -time.Hour}).Validate(); err == nil {
		t.Fatal("a negative spread was accepted")
	}
}
