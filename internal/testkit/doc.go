// Package testkit is the one kit of test fixtures that the server's tests, the end-to-end and
// fault suites, the binary's tests and the provider's acceptance tests share:
//
//   - Start, StartOn: a real Trustgate server (router, services and store) in the test's process on
//     a real socket, with three principals and their clients (Admins);
//   - Serve, Launch: the real trustgate binary, built once per test binary (RunWithTrustgate),
//     listening on 127.0.0.1:0 and read back from its "trustgate listening on" line;
//   - Endpoint: what a client does with either — token exchanges (TokenResult, MustGrant,
//     MustRefuse), raw requests (Do), access-token verification against /.well-known/jwks.json;
//   - GenericInput, GitHubInput: connection bodies; AuditEvents: every page of the audit trail.
//
// Two sub-packages have no dependency on the server, so the server's own packages use them too:
// testdb (a fresh SQLite or PostgreSQL database per test) and ciissuer (a fake CI issuer with real
// keys, JWKS counters and outage switches, and a settable clock).
package testkit
