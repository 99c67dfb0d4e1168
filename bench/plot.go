package bench

import (
	"cmp"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"maps"
	"math"
	"slices"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// plot geometry, in pixels.
const (
	plotW, plotH           = 960, 600
	marginL, marginR       = 80, 240 // the legend sits on the right
	marginT, marginB       = 40, 60
	plotTicks              = 5
	pointHalf              = 3
	legendLine, legendStep = 20, 18
)

// palette colours the series, in order.
var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xd6, 0x27, 0x28, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xff, 0x7f, 0x0e, 0xff},
	{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0x17, 0xbe, 0xcf, 0xff},
}

// PlotSeries is one line of the plot: a target's operation at one
// consistency level over the sweep, each point a run's throughput (all
// operations, ops/s) and that operation's p99 latency (ms).
type PlotSeries struct {
	Name   string
	Points [][2]float64
}

// Series groups r's runs into the plot's lines, ordered by name, each
// line's points in sweep order (threads, or rate).
func (r *Report) Series() []PlotSeries {
	byName := map[string]*PlotSeries{}
	runs := slices.Clone(r.Runs)
	slices.SortStableFunc(runs, func(a, b *Result) int {
		return cmp.Or(cmp.Compare(a.Threads, b.Threads), cmp.Compare(a.Rate, b.Rate))
	})
	for _, run := range runs {
		for _, op := range run.PerOp {
			if op.Count == 0 {
				continue
			}
			name := fmt.Sprintf("%s %s %s", run.Target, op.Op, op.Consistency)
			s := byName[name]
			if s == nil {
				s = &PlotSeries{Name: name}
				byName[name] = s
			}
			s.Points = append(s.Points, [2]float64{run.OpsPerSec, op.P99Ms})
		}
	}
	var out []PlotSeries
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		out = append(out, *byName[name])
	}
	return out
}

// WritePlot draws the report's runs as a PNG: throughput (ops/s) across,
// p99 latency (ms) up, one line per target, operation and consistency
// level over the sweep, with a legend.
func (r *Report) WritePlot(w io.Writer) error {
	series := r.Series()
	if len(series) == 0 {
		return errors.New("bench: no run to plot")
	}
	return WriteCharts(w, Chart{XLabel: "throughput (ops/s)", YLabel: "p99 latency (ms)", Series: series, Points: true})
}

// Chart is one panel of a plot: lines through points over linear axes
// from 0, a legend, and labelled vertical marks (the phases of a drill).
type Chart struct {
	XLabel, YLabel string
	Series         []PlotSeries
	Marks          []Mark
	// Points draws each point as a square, not only the lines.
	Points bool
	// XMax, if positive, ends the x axis there instead of at the next
	// 1, 2 or 5 times a power of ten above the largest x.
	XMax float64
}

// Mark is a labelled vertical line at X.
type Mark struct {
	X     float64
	Label string
}

// chartH is the height of each panel when several are stacked.
const chartH = 360

// WriteCharts draws charts as one PNG, stacked top to bottom, each with
// its own axes.
func WriteCharts(w io.Writer, charts ...Chart) error {
	if len(charts) == 0 {
		return errors.New("bench: no chart to draw")
	}
	h := plotH
	if len(charts) > 1 {
		h = chartH * len(charts)
	}
	img := image.NewRGBA(image.Rect(0, 0, plotW, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	for i, c := range charts {
		top := i * (h / len(charts))
		drawChart(img, c, top, h/len(charts))
	}
	return png.Encode(w, img)
}

// drawChart draws c into the band of img from top, height pixels tall.
func drawChart(img *image.RGBA, c Chart, top, height int) {
	var maxX, maxY float64
	for _, s := range c.Series {
		for _, p := range s.Points {
			maxX, maxY = math.Max(maxX, p[0]), math.Max(maxY, p[1])
		}
	}
	for _, m := range c.Marks {
		maxX = math.Max(maxX, m.X)
	}
	maxX, maxY = niceCeil(maxX), niceCeil(maxY)
	if c.XMax > 0 {
		maxX = c.XMax
	}
	x0, y0 := marginL, top+height-marginB // the origin, in pixels
	x1, y1 := plotW-marginR, top+marginT
	at := func(p [2]float64) (int, int) {
		return x0 + int(p[0]/maxX*float64(x1-x0)), y0 - int(p[1]/maxY*float64(y0-y1))
	}
	grey, black := color.RGBA{0xdd, 0xdd, 0xdd, 0xff}, color.RGBA{0, 0, 0, 0xff}
	for i := 0; i <= plotTicks; i++ {
		fx, fy := maxX*float64(i)/plotTicks, maxY*float64(i)/plotTicks
		px, _ := at([2]float64{fx, 0})
		_, py := at([2]float64{0, fy})
		line(img, px, y0, px, y1, grey)
		line(img, x0, py, x1, py, grey)
		label(img, px-12, y0+18, tick(fx), black)
		label(img, x0-8-7*len(tick(fy)), py+4, tick(fy), black)
	}
	line(img, x0, y0, x1, y0, black)
	line(img, x0, y0, x0, y1, black)
	label(img, (x0+x1)/2-60, top+height-15, c.XLabel, black)
	label(img, 8, top+marginT-15, c.YLabel, black)
	markC := color.RGBA{0x55, 0x55, 0x55, 0xff}
	for _, m := range c.Marks {
		px, _ := at([2]float64{m.X, 0})
		for y := y1; y < y0; y += 6 { // dashed
			line(img, px, y, px, min(y+3, y0), markC)
		}
		label(img, px+3, y1+12, m.Label, markC)
	}
	for i, s := range c.Series {
		col := palette[i%len(palette)]
		for j, p := range s.Points {
			px, py := at(p)
			if c.Points {
				fill(img, px-pointHalf, py-pointHalf, px+pointHalf, py+pointHalf, col)
			}
			if j > 0 {
				qx, qy := at(s.Points[j-1])
				line(img, qx, qy, px, py, col)
			}
		}
		ly := top + marginT + 10 + i*legendStep
		line(img, x1+15, ly, x1+15+legendLine, ly, col)
		if c.Points {
			fill(img, x1+15+legendLine/2-pointHalf, ly-pointHalf, x1+15+legendLine/2+pointHalf, ly+pointHalf, col)
		}
		label(img, x1+20+legendLine, ly+4, s.Name, black)
	}
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (1 for v ≤ 0).
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func tick(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func label(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func fill(img *image.RGBA, xa, ya, xb, yb int, c color.Color) {
	draw.Draw(img, image.Rect(xa, ya, xb+1, yb+1), image.NewUniform(c), image.Point{}, draw.Src)
}

// line draws from (xa, ya) to (xb, yb) (Bresenham).
func line(img *image.RGBA, xa, ya, xb, yb int, c color.Color) {
	dx, dy := abs(xb-xa), -abs(yb-ya)
	sx, sy := sign(xb-xa), sign(yb-ya)
	e := dx + dy
	for {
		img.Set(xa, ya, c)
		if xa == xb && ya == yb {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			xa += sx
		}
		if e2 <= dx {
			e += dx
			ya += sy
		}
	}
}

func abs(v int) int { return max(v, -v) }

func sign(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}
