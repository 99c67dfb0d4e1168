package repair_test

import (
	"fmt"
	"time"

	"github.com/meridian-kv/meridian/repair"
)

func ExamplePlan() {
	windows := []repair.Window{
		// us-east↔eu-west from 02:00 UTC for two hours, 8 MiB/s of WAN.
		{Pair: [2]string{"us-east", "eu-west"}, Cron: "0 2 * * *", Duration: 2 * time.Hour, BytesPerSecond: 8 << 20},
	}
	if err := repair.ValidateWindows(windows); err != nil {
		panic(err)
	}
	progress := []repair.Progress{repair.NewProgress([2]string{"us-east", "eu-west"}, "users")}

	now := time.Date(2025, 3, 10, 1, 0, 0, 0, time.UTC)
	start, end := repair.NextWindow(windows[0], now)
	fmt.Println("next window:", start.Format("15:04"), "to", end.Format("15:04"))
	fmt.Println("tasks at 01:00:", len(repair.Plan(windows, progress, nil, now)))

	now = now.Add(90 * time.Minute)
	for _, t := range repair.Plan(windows, progress, nil, now) {
		fmt.Println(t.Kind, t.Pair, t.Keyspace, t.Range, "until", t.WindowEnd.Format("15:04"))
		// The node repairs t.Range, then:
		progress[0].Record(t, repair.RangeStats{KeysCompared: 390}, now, now.Add(time.Minute))
	}
	fmt.Printf("pass %.2f%% done\n", 100*progress[0].Fraction())
	// Output:
	// next window: 02:00 to 04:00
	// tasks at 01:00: 0
	// pass [eu-west us-east] users [0x0000000000000000, 0x0100000000000000) until 04:00
	// pass 0.39% done
}
