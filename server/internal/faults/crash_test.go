package faults_test

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/glebarez/go-sqlite" // database/sql driver "sqlite", for PRAGMA integrity_check

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"
)

// TestCrashDuringExchangeLoad kills a server with SIGKILL while clients exchange tokens, restarts it
// on the same database and checks CONTRACT.md §3's promise: a granted exchange's audit event is durable
// before the token is returned, so every token a client holds has its token.exchange granted event
// (matched by jti). The database opens and migrates again, and the server signs with the same key.
func TestCrashDuringExchangeLoad(t *testing.T) {
	for _, db := range []struct {
		name string
		dsn  func(*testing.T) string
	}{{"sqlite", func(t *testing.T) string { return testdb.SQLite(t) }}, {"postgres", func(t *testing.T) string { return testdb.RequirePostgres(t) }}} {
		t.Run(db.name, func(t *testing.T) { crashUnderLoad(t, db.name, db.dsn(t)) })
	}
}

func crashUnderLoad(t *testing.T, dbName, dsn string) {
	d := newDeployment(t, dsn)
	iss := startIssuer(t)
	s := startServer(t, "crash-"+dbName, d)
	s.admins(t).CreateActive(t, connectionInput(iss, "crash"))
	tok := ciToken(t, iss)
	kidBefore := testkit.KIDs(t, s.JWKS(t))

	const workers = 8
	load := s.Endpoint
	load.HTTP = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var (
		mu         sync.Mutex
		received   []string
		sent       atomic.Int64
		cutOff     atomic.Int64 // requests that got no answer: in flight at the kill or sent after it
		unexpected []string
		wg         sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				sent.Add(1)
				r := load.Exchange("crash", tok)
				switch {
				case r.TransportErr != nil && s.Killed():
					cutOff.Add(1)
					return
				case r.Status == http.StatusOK && r.OK.AccessToken != "":
					mu.Lock()
					received = append(received, r.OK.AccessToken)
					mu.Unlock()
				default:
					mu.Lock()
					unexpected = append(unexpected, r.String())
					mu.Unlock()
					return
				}
			}
		}()
	}
	// Let the load run, then pull the plug mid-flight.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(received)
		mu.Unlock()
		if n >= 1000 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.Kill9(t)
	wg.Wait()
	for _, u := range unexpected {
		t.Errorf("exchange under load before the kill: %s", u)
	}
	if len(received) == 0 {
		t.Fatal("no exchange succeeded before the kill: the load did not run")
	}

	// Restart on the same database: it opens, migrates and serves again.
	s2 := startServer(t, "crash-"+dbName+"-restarted", d)
	if r := s2.Do(t, testkit.Request{Method: http.MethodGet, Path: "/readyz"}); r.Status != http.StatusOK {
		t.Fatalf("/readyz after the restart: %d %s", r.Status, r.Body)
	}
	jwksAfter := s2.JWKS(t)
	if kidAfter := testkit.KIDs(t, jwksAfter); strings.Join(kidAfter, ",") != strings.Join(kidBefore, ",") {
		t.Fatalf("the restarted server publishes keys %v, before the crash %v", kidAfter, kidBefore)
	}

	events := testkit.AuditEvents(t, s2.admins(t).Security, apiclient.AuditOptions{Connection: "crash", Action: api.ActionTokenExchange})
	granted := map[string]int{}
	for _, ev := range events {
		if ev.Outcome != api.OutcomeGranted {
			continue
		}
		jti, _ := ev.Detail["jti"].(string)
		if jti == "" {
			t.Errorf("granted audit event %s has no jti in its detail", ev.ID)
			continue
		}
		granted[jti]++
	}
	missing := 0
	for _, token := range received {
		jti := testkit.VerifyAccessToken(t, jwksAfter, token, publicURL).ID
		switch granted[jti] {
		case 1:
		case 0:
			missing++
		default:
			t.Errorf("jti %s has %d granted audit events, want exactly 1", jti, granted[jti])
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d tokens the clients received have no token.exchange granted audit event", missing, len(received))
	}
	if len(granted) < len(received) {
		t.Errorf("%d granted events for %d tokens received", len(granted), len(received))
	}

	if dbName == "sqlite" {
		checkSQLiteIntegrity(t, strings.TrimPrefix(dsn, "sqlite://"))
	}

	// Issuing continues, with the same key.
	r := s2.Exchange("crash", tok)
	if r.Status != http.StatusOK {
		t.Fatalf("exchange after the restart: %s", r)
	}
	if header, _, _ := testkit.Segments(t, r.OK.AccessToken); header["kid"] != kidBefore[0] {
		t.Fatalf("the restarted server signs with kid %v, before the crash %s", header["kid"], kidBefore[0])
	}
	testkit.VerifyAccessToken(t, jwksAfter, r.OK.AccessToken, publicURL)

	summary(t, "crash %s: kill -9 under %d-worker load after %d requests; %d tokens received, %d requests cut off; %d/%d tokens have their granted audit event (%d granted events in all); same kid after restart",
		dbName, workers, sent.Load(), len(received), cutOff.Load(), len(received)-missing, len(received), len(granted))
}

// checkSQLiteIntegrity runs PRAGMA integrity_check on the database file.
func checkSQLiteIntegrity(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		t.Fatalf("integrity_check: %v", err)
	}
	if res != "ok" {
		t.Fatalf("SQLite integrity_check after kill -9: %s", res)
	}
}
