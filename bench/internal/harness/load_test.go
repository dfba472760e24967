package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tokenServer answers like /v1/token: a JSON body with an access token, after delay(n) for the
// n-th request (0-based).
func tokenServer(t *testing.T, delay func(n int64) time.Duration) (*Target, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if d := delay(n.Add(1) - 1); d > 0 {
			time.Sleep(d)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"x","token_type":"Bearer"}`)
	}))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	return &Target{Addr: addr, Requests: [][]byte{TokenRequest(addr, "c", "a.b.c"), TokenRequest(addr, "c", "d.e.f")}}, &n
}

func TestOpenLoopMeasuresFromIntendedStartSoAStallIsNotHidden(t *testing.T) {
	// One connection, 200 requests/s for 1 s; the server stalls 300 ms on its first measured
	// request. Every request due during the stall waits for it, and that wait is latency: a
	// generator that timed from the moment it sent would report one slow request and a fast p99.
	tgt, _ := tokenServer(t, func(n int64) time.Duration {
		if n == 0 {
			return 300 * time.Millisecond
		}
		return 0
	})
	res := OpenLoop(context.Background(), tgt, 200, 0, time.Second, 1)
	if res.Errors != 0 || res.Requests != 200 {
		t.Fatalf("requests %d, errors %d (%v); want 200 and 0", res.Requests, res.Errors, res.ErrorSamples)
	}
	// About 60 of the 200 requests fall due during the stall: p95 must show it.
	if res.P95 < 100 {
		t.Errorf("p95 = %.1f ms; a 300 ms stall at 200 req/s must push p95 over 100 ms", res.P95)
	}
	if res.P50 > 50 {
		t.Errorf("p50 = %.1f ms; the requests after the backlog drains are fast", res.P50)
	}
}

func TestOpenLoopKeepsTheOfferedRate(t *testing.T) {
	tgt, n := tokenServer(t, func(int64) time.Duration { return 0 })
	res := OpenLoop(context.Background(), tgt, 100, 200*time.Millisecond, time.Second, 4)
	if got := n.Load(); got != 120 {
		t.Errorf("the server saw %d requests; want 100/s × 1.2 s = 120 (warm-up included)", got)
	}
	if res.Requests != 100 || res.Errors != 0 {
		t.Errorf("measured %d requests with %d errors; want 100 and 0", res.Requests, res.Errors)
	}
	if res.AchievedPerSec < 90 || res.AchievedPerSec > 110 {
		t.Errorf("achieved %.1f/s; want about 100/s", res.AchievedPerSec)
	}
}

func TestClosedLoopCountsOnlyTheMeasuredWindow(t *testing.T) {
	tgt, n := tokenServer(t, func(int64) time.Duration { return time.Millisecond })
	res := ClosedLoop(context.Background(), tgt, 4, 200*time.Millisecond, 500*time.Millisecond)
	if res.Errors != 0 || res.Requests == 0 {
		t.Fatalf("requests %d, errors %d (%v)", res.Requests, res.Errors, res.ErrorSamples)
	}
	if int64(res.Requests) >= n.Load() {
		t.Errorf("measured %d of %d requests; the warm-up must not be counted", res.Requests, n.Load())
	}
	if got := tgt.OK.Load(); got != n.Load() {
		t.Errorf("OK counts %d, the server answered %d: every 200 must be counted for the audit check", got, n.Load())
	}
	if want := float64(res.Requests) / 0.5; res.PerSec != round1(want) {
		t.Errorf("PerSec = %.1f, want requests ÷ window = %.1f", res.PerSec, want)
	}
	if res.P50 < 1 {
		t.Errorf("p50 = %.3f ms; the server takes at least 1 ms", res.P50)
	}
}

func TestClientRefusesA200WithoutAnAccessToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"error":"nope"}`)
	}))
	defer srv.Close()
	c := &client{addr: strings.TrimPrefix(srv.URL, "http://")}
	defer c.close()
	if _, err := c.do(TokenRequest(c.addr, "c", "t")); err == nil {
		t.Fatal("a 200 without access_token was accepted as a granted exchange")
	}
}

func TestProcessCPUReadsThisProcess(t *testing.T) {
	// Burn some CPU so that the counter has moved past zero ticks.
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	d, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d <= 0 {
		t.Errorf("processCPU(self) = %v after 50 ms of work; want > 0", d)
	}
}

// OnceLoop sends every request exactly once, whatever the number of workers, and counts replay
// refusals apart.
func TestOnceLoopSendsEveryRequestOnce(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		tok := r.PostForm.Get("subject_token")
		mu.Lock()
		seen[tok]++
		n := seen[tok]
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if tok == "replayed" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"invalid_grant","error_description":"replay check failed"}`)
			return
		}
		if n > 1 {
			t.Errorf("token %s sent %d times", tok, n)
		}
		_, _ = io.WriteString(w, `{"access_token":"x","token_type":"Bearer"}`)
	}))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	tgt := &Target{Addr: addr}
	for i := range 500 {
		tgt.Requests = append(tgt.Requests, TokenRequest(addr, "c", fmt.Sprintf("t%d", i)))
	}
	tgt.Requests = append(tgt.Requests, TokenRequest(addr, "c", "replayed"))
	res := OnceLoop(context.Background(), tgt, 16)
	if res.Requests != 500 || res.Errors != 1 || res.replays != 1 || len(seen) != 501 || tgt.OK.Load() != 500 {
		t.Fatalf("requests %d, errors %d, replays %d, distinct tokens %d, OK %d", res.Requests, res.Errors, res.replays, len(seen), tgt.OK.Load())
	}
}
