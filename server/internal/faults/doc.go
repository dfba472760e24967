// Package faults holds Trustgate's fault and scale-out tests: they build the real `trustgate`
// binary, run `trustgate serve` processes on SQLite and PostgreSQL, and break things around them —
// two replicas on one database, kill -9 under load, the database or a JWKS endpoint going away,
// rate limits, hostile admin input — asserting that every promise of CONTRACT.md §2–§4 still holds.
//
// The package has no non-test code. Run it with `make test-faults` (scripts/faults.sh), which
// starts a throwaway PostgreSQL and prints the measured figures (lines starting with FAULTS:).
// Its wall-clock bounds depend on the machine's scheduling, so `make test` leaves it out: without
// TRUSTGATE_FAULTS=1 every test skips, saying so. Its fixtures come from internal/testkit.
package faults
