// Package e2e holds Trustgate's end-to-end tests of the token exchange (CONTRACT.md §4): a real server
// (router, services and store, on SQLite or on PostgreSQL when TRUSTGATE_TEST_POSTGRES_URL is set)
// on a real socket, real CI-shaped tokens signed by a dev issuer whose keys are fetched from a real
// JWKS endpoint, and access tokens checked against the server's published JWKS.
//
// The package has no non-test code: run it with `go test ./server/internal/e2e/`. Its
// fixtures (server, issuer, token exchanges, access-token checks) come from internal/testkit.
package e2e
