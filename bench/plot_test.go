package bench

import (
	"bytes"
	"image/png"
	"testing"
)

// TestWritePlot draws two targets' sweeps and checks the image: its size,
// one line per target, operation and level, and each series' colour on the
// canvas.
func TestWritePlot(t *testing.T) {
	r := &Report{Runs: []*Result{
		{Target: "meridian", Threads: 16, OpsPerSec: 1200, PerOp: []OpResult{{Op: "read", Consistency: "LOCAL_QUORUM", Count: 10, P99Ms: 19}, {Op: "update", Consistency: "LOCAL_QUORUM", Count: 10, P99Ms: 98}}},
		{Target: "meridian", Threads: 64, OpsPerSec: 2100, PerOp: []OpResult{{Op: "read", Consistency: "LOCAL_QUORUM", Count: 10, P99Ms: 86}, {Op: "update", Consistency: "LOCAL_QUORUM", Count: 10, P99Ms: 153}}},
		{Target: "etcd", Threads: 16, OpsPerSec: 1400, PerOp: []OpResult{{Op: "read", Consistency: "LOCAL_QUORUM", Count: 10, P99Ms: 30}}},
	}}
	series := r.Series()
	if len(series) != 3 {
		t.Fatalf("%d series, want 3: %+v", len(series), series)
	}
	if s := series[1]; s.Name != "meridian read LOCAL_QUORUM" || len(s.Points) != 2 || s.Points[0] != [2]float64{1200, 19} || s.Points[1] != [2]float64{2100, 86} {
		t.Errorf("series %+v, want meridian's reads at 16 then 64 threads", s)
	}
	var buf bytes.Buffer
	if err := r.WritePlot(&buf); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != plotW || b.Dy() != plotH {
		t.Fatalf("image %v, want %dx%d", b, plotW, plotH)
	}
	for i := range series {
		want := palette[i]
		found := false
		for y := 0; y < plotH && !found; y++ {
			for x := 0; x < plotW-marginR && !found; x++ { // the plot area, not the legend
				r, g, b, _ := img.At(x, y).RGBA()
				found = uint8(r>>8) == want.R && uint8(g>>8) == want.G && uint8(b>>8) == want.B
			}
		}
		if !found {
			t.Errorf("series %q's colour is not drawn in the plot area", series[i].Name)
		}
	}
	if err := (&Report{}).WritePlot(&buf); err == nil {
		t.Error("an empty report plotted without an error")
	}
}

// TestWriteChartsStacks draws two panels with a mark: the image holds both
// bands, each series drawn in its own, and the mark's grey in both.
func TestWriteChartsStacks(t *testing.T) {
	var buf bytes.Buffer
	charts := []Chart{
		{XLabel: "s", YLabel: "ops/s", Series: []PlotSeries{{Name: "ops/s", Points: [][2]float64{{0, 100}, {10, 120}, {20, 10}}}}, Marks: []Mark{{X: 10, Label: "loss"}}},
		{XLabel: "s", YLabel: "p99 ms", Series: []PlotSeries{{Name: "p99", Points: [][2]float64{{0, 5}, {10, 50}, {20, 8}}}}, Marks: []Mark{{X: 10, Label: "loss"}}},
	}
	if err := WriteCharts(&buf, charts...); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != plotW || b.Dy() != 2*chartH {
		t.Fatalf("image %v, want %dx%d", b, plotW, 2*chartH)
	}
	for band := range 2 {
		found := false
		want := palette[0]
		for y := band * chartH; y < (band+1)*chartH && !found; y++ {
			for x := 0; x < plotW-marginR && !found; x++ {
				r, g, b, _ := img.At(x, y).RGBA()
				found = uint8(r>>8) == want.R && uint8(g>>8) == want.G && uint8(b>>8) == want.B
			}
		}
		if !found {
			t.Errorf("panel %d: its series is not drawn in its band", band)
		}
	}
	if err := WriteCharts(&buf); err == nil {
		t.Error("no chart drawn without an error")
	}
}
