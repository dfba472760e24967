package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Target is an HTTP/1.1 endpoint and the requests to send it, used round-robin.
//
// The generator writes pre-encoded requests on kept-alive connections and parses only the status
// line and headers of each answer: on a machine whose cores it shares with the server, every
// microsecond the generator spends is one the server does not get, so it is kept small.
type Target struct {
	Addr     string   // host:port
	Requests [][]byte // complete HTTP/1.1 requests

	next atomic.Uint64
	// ServerPID, when set, is the server process whose CPU time a closed-loop run measures.
	ServerPID int
	// DatabaseCPU, when set, is the CPU time the database server's processes have used so far
	// (PostgreSQL: the postmaster and its children).
	DatabaseCPU func() (time.Duration, error)
	// OK counts every 200 answer over the target's life (warm-up included), so that the audit trail
	// can be checked against it.
	OK atomic.Int64
}

// TokenRequest is an RFC 8693 exchange of subjectToken through connection, as raw HTTP/1.1.
func TokenRequest(host, connection, subjectToken string) []byte {
	body := url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"},
		"subject_token":      {subjectToken},
		"connection":         {connection},
	}.Encode()
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST /v1/token HTTP/1.1\r\nHost: %s\r\nUser-Agent: trustgate-bench\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s", host, len(body), body)
	return b.Bytes()
}

func (t *Target) request() []byte {
	i := t.next.Add(1)
	return t.Requests[i%uint64(len(t.Requests))]
}

// client is one kept-alive connection.
type client struct {
	addr string
	nc   net.Conn
	br   *bufio.Reader
	body []byte
}

func (c *client) close() {
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}

// do sends req and returns the answer's status code. The body is read and dropped; a 200 must carry
// an access token. One reconnect is tried when a kept-alive connection turns out to be closed.
func (c *client) do(req []byte) (int, error) {
	for attempt := 0; ; attempt++ {
		status, err := c.once(req)
		if err == nil || attempt == 1 {
			return status, err
		}
		c.close()
	}
}

func (c *client) once(req []byte) (int, error) {
	if c.nc == nil {
		nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
		if err != nil {
			return 0, err
		}
		c.nc = nc
		c.br = bufio.NewReaderSize(nc, 8<<10)
	}
	if _, err := c.nc.Write(req); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, err
	}
	c.body = c.body[:0]
	buf := bytes.NewBuffer(c.body)
	_, err = io.Copy(buf, resp.Body)
	resp.Body.Close()
	c.body = buf.Bytes()
	if err != nil {
		return 0, err
	}
	if resp.Close {
		c.close()
	}
	if resp.StatusCode == http.StatusOK && !bytes.Contains(c.body, []byte(`"access_token"`)) {
		return 0, fmt.Errorf("a 200 answer without an access_token")
	}
	return resp.StatusCode, nil
}

// errorLog keeps a count and the first few distinct failures of a run.
type errorLog struct {
	mu      sync.Mutex
	n       int
	samples []string
}

func (e *errorLog) add(status int, err error) {
	msg := "HTTP " + strconv.Itoa(status)
	if err != nil {
		msg = err.Error()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	if len(e.samples) < 5 {
		for _, s := range e.samples {
			if s == msg {
				return
			}
		}
		e.samples = append(e.samples, msg)
	}
}

// count is the number of failures so far.
func (e *errorLog) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n
}

// ClosedResult is a closed-loop (saturation) run.
type ClosedResult struct {
	Workers      int      `json:"workers"`
	DurationSec  float64  `json:"duration_s"`
	Requests     int      `json:"requests"`
	Errors       int      `json:"errors"`
	ErrorSamples []string `json:"error_samples,omitempty"`
	PerSec       float64  `json:"exchanges_per_s"`
	Latency
	// ServerCPUus and GeneratorCPUus are the CPU microseconds per exchange that the server process
	// and this load generator spent in the measured window: figures that other load on the machine
	// disturbs much less than throughput.
	ServerCPUus    float64 `json:"server_cpu_us_per_exchange"`
	GeneratorCPUus float64 `json:"generator_cpu_us_per_exchange"`
	// DatabaseCPUus is the PostgreSQL processes' CPU microseconds per exchange (0 on SQLite, whose
	// work is in the server process).
	DatabaseCPUus float64 `json:"database_cpu_us_per_exchange,omitempty"`
}

// ClosedLoop runs workers connections that each send the next request as soon as the previous
// answer arrives, for warmup (not measured) and then dur. Throughput counts the successful answers
// of requests sent and answered inside the measured window.
func ClosedLoop(ctx context.Context, t *Target, workers int, warmup, dur time.Duration) ClosedResult {
	start := time.Now()
	from, until := start.Add(warmup), start.Add(warmup+dur)
	lats := make([][]time.Duration, workers)
	var errs errorLog
	var wg sync.WaitGroup
	meter := &cpuMeter{pid: t.ServerPID}
	metered := make(chan struct{})
	var db0, db1 time.Duration
	var dbErr error
	go func() {
		defer close(metered)
		time.Sleep(time.Until(from))
		meter.start()
		if t.DatabaseCPU != nil {
			db0, dbErr = t.DatabaseCPU()
		}
		time.Sleep(time.Until(until))
		meter.stop()
		if t.DatabaseCPU != nil && dbErr == nil {
			db1, dbErr = t.DatabaseCPU()
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &client{addr: t.Addr}
			defer c.close()
			own := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				sent := time.Now()
				if !sent.Before(until) {
					break
				}
				status, err := c.do(t.request())
				done := time.Now()
				if status == http.StatusOK {
					t.OK.Add(1)
				}
				if sent.Before(from) || done.After(until) {
					continue
				}
				if err != nil || status != http.StatusOK {
					errs.add(status, err)
					continue
				}
				own = append(own, done.Sub(sent))
			}
			lats[w] = own
		}()
	}
	wg.Wait()
	<-metered
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	r := ClosedResult{
		Workers: workers, DurationSec: dur.Seconds(), Requests: len(all), Errors: errs.n, ErrorSamples: errs.samples,
		PerSec: round1(float64(len(all)) / dur.Seconds()), Latency: Summarise(all),
	}
	r.ServerCPUus, r.GeneratorCPUus = meter.perOp(len(all))
	if t.DatabaseCPU != nil && dbErr == nil && len(all) > 0 {
		r.DatabaseCPUus = round1(float64((db1 - db0).Microseconds()) / float64(len(all)))
	}
	return r
}

// OpenResult is an open-loop run at a fixed offered load.
type OpenResult struct {
	OfferedPerSec  float64  `json:"offered_per_s"`
	AchievedPerSec float64  `json:"achieved_per_s"`
	DurationSec    float64  `json:"duration_s"`
	Requests       int      `json:"requests"`
	Errors         int      `json:"errors"`
	ErrorSamples   []string `json:"error_samples,omitempty"`
	Latency
	// P99BySecond is the p99 (ms) of the requests due in each second of the measured part: where
	// in a window its slow requests fall.
	P99BySecond []float64 `json:"p99_ms_by_second,omitempty"`
	// measured is every successful request's latency, for pooling windows (auditscale.go).
	measured []time.Duration
}

// OpenLoop offers rate requests per second for warmup (not measured) and then dur. Request i is due
// at start + i/rate whatever happened to earlier requests, and its latency is measured from that
// intended time, not from when a connection was free to send it: a server that stalls cannot hide
// the stall by slowing the generator down (coordinated omission). conns bounds the requests in
// flight; when they are all busy, due requests wait and the wait counts as latency.
func OpenLoop(ctx context.Context, t *Target, rate float64, warmup, dur time.Duration, conns int) OpenResult {
	skip := int(rate * warmup.Seconds())
	total := skip + int(rate*dur.Seconds())
	interval := float64(time.Second) / rate
	start := time.Now().Add(20 * time.Millisecond)
	var next atomic.Int64
	lats := make([]time.Duration, total)
	ok := make([]bool, total)
	var errs errorLog
	var last atomic.Int64 // completion time of the last request, ns after start
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &client{addr: t.Addr}
			defer c.close()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				due := start.Add(time.Duration(float64(i) * interval))
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				status, err := c.do(t.request())
				done := time.Now()
				if status == http.StatusOK {
					t.OK.Add(1)
				}
				for {
					l := last.Load()
					if int64(done.Sub(start)) <= l || last.CompareAndSwap(l, int64(done.Sub(start))) {
						break
					}
				}
				if i < skip {
					continue
				}
				if err != nil || status != http.StatusOK {
					errs.add(status, err)
					continue
				}
				lats[i], ok[i] = done.Sub(due), true
			}
		}()
	}
	wg.Wait()
	var measured []time.Duration
	seconds := make([][]time.Duration, int(dur.Seconds()+0.5))
	for i := skip; i < total; i++ {
		if ok[i] {
			measured = append(measured, lats[i])
			if sec := int(float64(i-skip) * interval / float64(time.Second)); sec < len(seconds) {
				seconds[sec] = append(seconds[sec], lats[i])
			}
		}
	}
	bySecond := make([]float64, len(seconds))
	for i, l := range seconds {
		bySecond[i] = Summarise(l).P99
	}
	// Achieved rate over the measured part: requests due in it over the time from its first due
	// instant to the last completion.
	window := time.Duration(last.Load()) - time.Duration(float64(skip)*interval)
	achieved := 0.0
	if window > 0 {
		achieved = round1(float64(len(measured)) / window.Seconds())
	}
	return OpenResult{
		OfferedPerSec: rate, AchievedPerSec: achieved, DurationSec: dur.Seconds(), Requests: len(measured),
		Errors: errs.n, ErrorSamples: errs.samples, Latency: Summarise(measured), P99BySecond: bySecond,
		measured: measured,
	}
}
