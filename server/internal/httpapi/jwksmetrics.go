package httpapi

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustgate/terraform-provider-trustgate/server/internal/jwtverify"
)

// registerJWKSMetrics publishes the JWKS cache's size (CONTRACT.md §4 bounds it: 1,000 URLs,
// 16 MiB) and activity, read from the cache at scrape time.
func registerJWKSMetrics(reg *prometheus.Registry, cache *jwtverify.JWKSCache) {
	stat := func(f func(jwtverify.JWKSStats) float64) func() float64 {
		return func() float64 { return f(cache.Stats()) }
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "trustgate_jwks_cache_urls",
			Help: "JWKS URLs cached now (at most 1,000)."},
			stat(func(s jwtverify.JWKSStats) float64 { return float64(s.URLs) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "trustgate_jwks_cache_bytes",
			Help: "Estimated bytes of key material cached now (at most 16 MiB)."},
			stat(func(s jwtverify.JWKSStats) float64 { return float64(s.Bytes) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "trustgate_jwks_cache_evictions_total",
			Help: "JWKS URLs forgotten because the cache was full or no connection uses them any more."},
			stat(func(s jwtverify.JWKSStats) float64 { return float64(s.Evictions) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "trustgate_jwks_fetches_total",
			Help: "JWKS fetch attempts."},
			stat(func(s jwtverify.JWKSStats) float64 { return float64(s.Fetches) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "trustgate_jwks_fetch_errors_total",
			Help: "Failed JWKS fetch attempts."},
			stat(func(s jwtverify.JWKSStats) float64 { return float64(s.FetchErrors) })),
	)
}
