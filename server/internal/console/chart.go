package console

import (
	"fmt"
	"strconv"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
)

// The chart of a connection page: granted and denied token exchanges per hour over the last 7
// days, drawn on the server as SVG (no script, no external file). Geometry is in viewBox units;
// the style sheet scales the picture to the width of the page.
const (
	chartHours  = 7 * 24
	chartBarW   = 4
	chartLeft   = 44 // room for the y-axis labels
	chartTop    = 12
	chartPlotH  = 140
	chartBottom = 28 // room for the day labels
	chartRight  = 8
)

// chart is what the template draws.
type chart struct {
	Width, Height int
	PlotLeft      int
	PlotRight     int
	Baseline      int
	Bars          []chartBar
	Days          []chartTick
	Grid          []chartTick
	Granted       int64
	Denied        int64
	// Summary describes the chart in words (its accessible name).
	Summary string
	// PerDay is the same data by UTC day (the first and the last partly), as a table for those
	// who cannot see the picture.
	PerDay []chartDay
}

type chartBar struct {
	X, W               int
	GrantedY, GrantedH int
	DeniedY, DeniedH   int
	Title              string // the hour and its counts (a tooltip)
}

type chartTick struct {
	X, Y  int
	Label string
}

type chartDay struct {
	Day             string
	Granted, Denied int64
}

// buildChart lays out hourly counts (connection.ExchangeCount with Hour set) over the 7×24
// hours that end with the hour of now.
func buildChart(counts []connection.ExchangeCount, now time.Time) chart {
	end := now.UTC().Truncate(time.Hour)
	start := end.Add(-(chartHours - 1) * time.Hour)
	var granted, denied [chartHours]int64
	for _, c := range counts {
		i := int(c.Hour.Sub(start) / time.Hour)
		if i < 0 || i >= chartHours {
			continue
		}
		switch c.Outcome {
		case api.OutcomeGranted:
			granted[i] += c.Count
		case api.OutcomeDenied:
			denied[i] += c.Count
		}
	}
	ch := chart{Width: chartLeft + chartHours*chartBarW + chartRight, Height: chartTop + chartPlotH + chartBottom,
		PlotLeft: chartLeft, PlotRight: chartLeft + chartHours*chartBarW, Baseline: chartTop + chartPlotH}
	var peak int64
	for i := range chartHours {
		ch.Granted += granted[i]
		ch.Denied += denied[i]
		peak = max(peak, granted[i]+denied[i])
	}
	top := niceCeil(peak)
	scale := func(n int64) int {
		if n == 0 {
			return 0
		}
		return max(1, int(n*chartPlotH/top)) // a single exchange stays visible
	}
	ticks := []int64{0, top}
	if top >= 2 {
		ticks = []int64{0, top / 2, top}
	}
	for _, v := range ticks {
		ch.Grid = append(ch.Grid, chartTick{Y: ch.Baseline - scale(v), Label: strconv.FormatInt(v, 10)})
	}
	for i := range chartHours {
		hour := start.Add(time.Duration(i) * time.Hour)
		x := chartLeft + i*chartBarW
		if hour.Hour() == 0 {
			ch.Days = append(ch.Days, chartTick{X: x, Label: hour.Format("Mon 2")})
		}
		if granted[i]+denied[i] == 0 {
			continue
		}
		gh, dh := scale(granted[i]), scale(denied[i])
		ch.Bars = append(ch.Bars, chartBar{X: x, W: chartBarW - 1,
			GrantedY: ch.Baseline - gh, GrantedH: gh, DeniedY: ch.Baseline - gh - dh, DeniedH: dh,
			Title: fmt.Sprintf("%s: %d granted, %d denied", hour.Format("Mon 2 Jan 15:00 UTC"), granted[i], denied[i])})
	}
	for i := range chartHours {
		day := start.Add(time.Duration(i) * time.Hour).Format("Mon 2 Jan")
		if n := len(ch.PerDay); n == 0 || ch.PerDay[n-1].Day != day {
			ch.PerDay = append(ch.PerDay, chartDay{Day: day})
		}
		last := &ch.PerDay[len(ch.PerDay)-1]
		last.Granted += granted[i]
		last.Denied += denied[i]
	}
	ch.Summary = fmt.Sprintf("Token exchanges per hour, %s to %s: %d granted and %d denied; the busiest hour had %d.",
		start.Format("2 Jan 15:00"), end.Add(time.Hour).Format("2 Jan 15:00 UTC"), ch.Granted, ch.Denied, peak)
	return ch
}

// niceCeil is the smallest 1, 2 or 5 × 10^k at or above n (at least 1), the top of the y axis.
func niceCeil(n int64) int64 {
	for p := int64(1); ; p *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if m*p >= n {
				return m * p
			}
		}
	}
}
