package harness

import (
	"testing"
	"time"
)

func TestSummariseUsesNearestRankPercentiles(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(100-i) * time.Millisecond // unsorted on purpose: 100 ms … 1 ms
	}
	cases := []struct {
		name string
		in   []time.Duration
		want Latency
	}{
		{"empty set is all zeros", nil, Latency{}},
		{"one value is every percentile", []time.Duration{3 * time.Millisecond}, Latency{P50: 3, P95: 3, P99: 3, Max: 3, Mean: 3}},
		{"1..100 ms", hundred, Latency{P50: 50, P95: 95, P99: 99, Max: 100, Mean: 50.5}},
		{"a single outlier in 100 is the max, not the p99",
			append(make([]time.Duration, 99), time.Second), Latency{P50: 0, P95: 0, P99: 0, Max: 1000, Mean: 10}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Summarise(tc.in); got != tc.want {
				t.Errorf("Summarise = %+v, want %+v", got, tc.want)
			}
		})
	}
}
