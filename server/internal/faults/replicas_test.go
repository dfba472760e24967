package faults_test

import (
	"bytes"
	"context"
	"database/sql"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to look at the shared database directly

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
)

// pgCount runs a count query on a PostgreSQL database.
func pgCount(t *testing.T, dsn, query string) int64 {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int64
	if err := db.QueryRowContext(ctx, query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestReplicas runs two `trustgate serve` processes on one PostgreSQL database, started at the
// same moment on an empty database, sharing the public URL of their load balancer; the test talks
// to each on its own listen address.
func TestReplicas(t *testing.T) {
	d := newDeployment(t, testdb.RequirePostgres(t))
	iss := startIssuer(t)
	a := launch(t, "replica-a", d)
	b := launch(t, "replica-b", d)
	a.WaitListening(t)
	b.WaitListening(t)

	t.Run("signing key is created once when both start together on an empty database", func(t *testing.T) {
		ja, jb := a.JWKS(t), b.JWKS(t)
		ka, kb := testkit.KIDs(t, ja), testkit.KIDs(t, jb)
		if len(ka) != 1 || len(kb) != 1 {
			t.Fatalf("JWKS of A has %d keys, of B %d keys; want exactly one each", len(ka), len(kb))
		}
		if !bytes.Equal(ja, jb) {
			t.Fatalf("the replicas publish different JWKS:\nA %s\nB %s", ja, jb)
		}
		if n := pgCount(t, d.DSN, "SELECT count(*) FROM signing_keys"); n != 1 {
			t.Fatalf("signing_keys holds %d rows, want 1", n)
		}
	})

	t.Run("tokens issued by either replica verify with the JWKS of the other", func(t *testing.T) {
		a.admins(t).CreateActive(t, connectionInput(iss, "replica-verify"))
		waitGranted(t, b, "replica-verify", ciToken(t, iss), 2*time.Second)
		jwksA, jwksB := a.JWKS(t), b.JWKS(t)
		for _, p := range []struct {
			name         string
			issuer, peer *server
			peerJWKS     []byte
		}{{"A→B", a, b, jwksB}, {"B→A", b, a, jwksA}} {
			r := p.issuer.Exchange("replica-verify", ciToken(t, iss))
			if r.Status != http.StatusOK {
				t.Fatalf("%s: exchange on the issuing replica: %s", p.name, r)
			}
			claims := testkit.VerifyAccessToken(t, p.peerJWKS, r.OK.AccessToken, publicURL)
			in, err := p.peer.admins(t).Auditor.Introspect(t.Context(), r.OK.AccessToken)
			if err != nil {
				t.Fatalf("%s: introspect on the other replica: %v", p.name, err)
			}
			if !in.Active || in.Jti != claims.ID || in.Connection != "replica-verify" {
				t.Fatalf("%s: the other replica introspects the token as %+v, want active with jti %v", p.name, in, claims.ID)
			}
			who, err := p.peer.Client(t, r.OK.AccessToken).Whoami(t.Context())
			if err != nil || who.Kind != "workload" || who.Connection != "replica-verify" {
				t.Fatalf("%s: whoami on the other replica with the access token: %+v %v", p.name, who, err)
			}
		}
	})

	t.Run("concurrent If-Match PATCHes through both replicas lose nothing", func(t *testing.T) {
		in := connectionInput(iss, "replica-patch")
		in.Description = "0"
		created, err := a.admins(t).DevOps.CreateConnection(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		const workersPerReplica, attempts = 4, 6
		var (
			mu                 sync.Mutex
			successes, losers  int
			successRevisions   []int64
			unexpected         []string
			wg                 sync.WaitGroup
			clients            = []*apiclient.Client{a.admins(t).DevOps, b.admins(t).DevOps}
			replicaNames       = []string{"A", "B"}
			successesByReplica = map[string]int{}
		)
		for ri, c := range clients {
			for w := 0; w < workersPerReplica; w++ {
				wg.Add(1)
				go func(c *apiclient.Client, replica string) {
					defer wg.Done()
					for i := 0; i < attempts; i++ {
						cur, err := c.GetConnection(context.Background(), "replica-patch")
						if err != nil {
							mu.Lock()
							unexpected = append(unexpected, "GET: "+err.Error())
							mu.Unlock()
							return
						}
						n, _ := strconv.Atoi(cur.Description)
						next, err := c.PatchConnection(context.Background(), "replica-patch",
							map[string]any{"description": strconv.Itoa(n + 1)}, cur.Revision)
						mu.Lock()
						switch {
						case err == nil:
							successes++
							successesByReplica[replica]++
							successRevisions = append(successRevisions, next.Revision)
							if next.Revision != cur.Revision+1 || next.Description != strconv.Itoa(n+1) {
								unexpected = append(unexpected, "a success moved revision "+strconv.FormatInt(cur.Revision, 10)+
									" to "+strconv.FormatInt(next.Revision, 10)+" with description "+next.Description)
							}
						case apiclient.StatusCode(err) == http.StatusPreconditionFailed:
							losers++
						default:
							unexpected = append(unexpected, "PATCH: "+err.Error())
						}
						mu.Unlock()
					}
				}(c, replicaNames[ri])
			}
		}
		wg.Wait()
		for _, u := range unexpected {
			t.Error(u)
		}
		final, err := b.admins(t).Auditor.GetConnection(t.Context(), "replica-patch")
		if err != nil {
			t.Fatal(err)
		}
		total := 2 * workersPerReplica * attempts
		if successes+losers != total {
			t.Fatalf("%d successes + %d 412s != %d attempts", successes, losers, total)
		}
		if successes == 0 || losers == 0 {
			t.Fatalf("%d successes and %d 412s: the workers did not race (the test proves nothing)", successes, losers)
		}
		if final.Revision != created.Revision+int64(successes) {
			t.Errorf("final revision %d, want %d + %d successes", final.Revision, created.Revision, successes)
		}
		if final.Description != strconv.Itoa(successes) {
			t.Errorf("final description (a counter each success incremented) is %q, want %d: an update was lost", final.Description, successes)
		}
		sort.Slice(successRevisions, func(i, j int) bool { return successRevisions[i] < successRevisions[j] })
		for i, r := range successRevisions {
			if r != created.Revision+int64(i)+1 {
				t.Fatalf("successful PATCHes returned revisions %v: want each of %d..%d exactly once",
					successRevisions, created.Revision+1, created.Revision+int64(successes))
			}
		}
		evs := testkit.AuditEvents(t, a.admins(t).Security, apiclient.AuditOptions{Connection: "replica-patch", Action: api.ActionConnectionUpdate})
		audited := 0
		for _, ev := range evs {
			if ev.Outcome == api.OutcomeSuccess {
				audited++
			}
		}
		if audited != successes {
			t.Errorf("%d connection.update success events, want one per success (%d)", audited, successes)
		}
		summary(t, "replicas If-Match: %d concurrent PATCHes through 2 replicas, %d succeeded (A %d, B %d), %d got 412, final revision %d, counter %s, %d update events",
			total, successes, successesByReplica["A"], successesByReplica["B"], losers, final.Revision, final.Description, audited)
	})

	t.Run("a deactivation through A stops exchanges on B within 1 second", func(t *testing.T) {
		conn := a.admins(t).CreateActive(t, connectionInput(iss, "replica-deact"))
		tok := ciToken(t, iss)
		activation := waitGranted(t, b, "replica-deact", tok, 2*time.Second)
		const rounds = 5
		var delays, activations []time.Duration
		activations = append(activations, activation)
		lateGrants := 0
		for round := 0; round < rounds; round++ {
			conn = a.admins(t).SetStatus(t, conn, api.StatusInactive)
			t0 := time.Now()
			for {
				r := b.Exchange("replica-deact", tok)
				if r.Status == http.StatusOK {
					lateGrants++
				} else if r.Status == http.StatusBadRequest && r.Refusal.Error == api.ErrInvalidTarget {
					break
				} else {
					t.Fatalf("exchange on B after the deactivation: %s", r)
				}
				if time.Since(t0) > 5*time.Second {
					t.Fatalf("B still grants exchanges 5 s after the deactivation through A")
				}
			}
			delays = append(delays, time.Since(t0))
			conn = a.admins(t).SetStatus(t, conn, api.StatusActive)
			activations = append(activations, waitGranted(t, b, "replica-deact", tok, 2*time.Second))
		}
		maxDelay, median := stats(delays)
		maxAct, _ := stats(activations)
		for _, dl := range delays {
			if dl > time.Second {
				t.Errorf("deactivation delay %s exceeds the 1 s promise of CONTRACT.md §4", dl)
			}
		}
		summary(t, "deactivation delay %s (max of %d rounds; median %s; %d exchanges B still granted inside the window); activation reaches B within %s",
			maxDelay.Round(time.Millisecond), rounds, median.Round(time.Millisecond), lateGrants, maxAct.Round(time.Millisecond))
	})

	t.Run("an approval through A changes the rules on B within 1 second", func(t *testing.T) {
		adm := a.admins(t)
		conn := adm.CreateActive(t, connectionInput(iss, "replica-approve"))
		tok := ciToken(t, iss)
		waitGranted(t, b, "replica-approve", tok, 2*time.Second)
		loose := conn.Conditions
		tight := append(slices.Clone(loose), api.Condition{Claim: "deploy_approved", Operator: api.OpExists})
		// switchTo has the platform team propose conds, checks that B still follows the live rules,
		// has the security team approve, and measures how long B takes to follow the approved ones.
		switchTo := func(conds []api.Condition, granted bool) time.Duration {
			t.Helper()
			p, err := adm.DevOps.PatchConnection(t.Context(), conn.Name, map[string]any{"conditions": conds}, 0)
			if err != nil || p.Proposal == nil {
				t.Fatalf("proposing: %v (proposal %v)", err, p)
			}
			if r := b.Exchange(conn.Name, tok); (r.Status == http.StatusOK) == granted {
				t.Fatalf("B follows a proposal nobody approved: %s", r)
			}
			if conn, err = adm.Security.ApproveProposal(t.Context(), conn.Name, p.Proposal.Fingerprint, p.Revision); err != nil {
				t.Fatalf("approving: %v", err)
			}
			t0 := time.Now()
			for {
				r := b.Exchange(conn.Name, tok)
				if (r.Status == http.StatusOK) == granted {
					return time.Since(t0)
				}
				if r.Status != http.StatusOK && r.Refusal.Error != api.ErrInvalidGrant {
					t.Fatalf("exchange on B after the approval: %s", r)
				}
				if time.Since(t0) > 5*time.Second {
					t.Fatalf("B does not follow the approved rules 5 s after the approval through A")
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		const rounds = 3
		var delays []time.Duration
		for range rounds {
			delays = append(delays, switchTo(tight, false), switchTo(loose, true))
		}
		maxDelay, median := stats(delays)
		for _, dl := range delays {
			if dl > time.Second {
				t.Errorf("an approved proposal reached B after %s, beyond the 1 s of CONTRACT.md §1", dl)
			}
		}
		summary(t, "approval: B follows an approved proposal (tightened, then loosened, %d rounds) within %s (median %s)",
			rounds, maxDelay.Round(time.Millisecond), median.Round(time.Millisecond))
	})
}

// TestReplicasStartingTogetherCreateOneSigningKey starts three replicas at the same moment on an
// empty database, several times: each time exactly one signing key exists and all publish it.
func TestReplicasStartingTogetherCreateOneSigningKey(t *testing.T) {
	if testdb.PostgresURL() == "" {
		testdb.RequirePostgres(t) // skips (or fails under TRUSTGATE_REQUIRE_POSTGRES) with the reason
	}
	const rounds, replicas = 3, 3
	for round := 0; round < rounds; round++ {
		d := newDeployment(t, testdb.RequirePostgres(t))
		var servers []*server
		for i := 0; i < replicas; i++ {
			servers = append(servers, launch(t, "together-"+strconv.Itoa(round)+"-"+strconv.Itoa(i), d))
		}
		var first []byte
		for _, s := range servers {
			s.WaitListening(t)
			j := s.JWKS(t)
			if k := testkit.KIDs(t, j); len(k) != 1 {
				t.Fatalf("round %d: %s publishes %d keys, want 1", round, s.Name, len(k))
			}
			if first == nil {
				first = j
			} else if !bytes.Equal(first, j) {
				t.Fatalf("round %d: replicas publish different JWKS", round)
			}
		}
		if n := pgCount(t, d.DSN, "SELECT count(*) FROM signing_keys"); n != 1 {
			t.Fatalf("round %d: signing_keys holds %d rows, want 1", round, n)
		}
		for _, s := range servers {
			s.Stop()
		}
	}
	summary(t, "signing keys: %d rounds of %d replicas starting together on an empty database, one key each time", rounds, replicas)
}

// waitGranted polls exchanges on s until one is granted and returns how long that took.
func waitGranted(t *testing.T, s *server, connection, tok string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		r := s.Exchange(connection, tok)
		if r.Status == http.StatusOK {
			return time.Since(start)
		}
		if r.Status != http.StatusBadRequest || r.Refusal.Error != api.ErrInvalidTarget {
			t.Fatalf("exchange on %s while waiting for the activation: %s", s.Name, r)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s does not grant exchanges on %s %s after the activation", s.Name, connection, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stats returns the maximum and the median.
func stats(ds []time.Duration) (max, median time.Duration) {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0, 0
	}
	return s[len(s)-1], s[len(s)/2]
}
