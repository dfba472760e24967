// Package signing holds the server's ES256 access-token signing keys (CONTRACT.md §2 key
// lifecycle, §4): generated here, stored sealed under the key-encryption key (KEK) and shared by
// every replica through the store, used to mint and verify access tokens, published as a JWKS.
//
// Where each rule lives:
//   - lifecycle.go: when a key is published, signs, retires, loses its private part, and when the
//     next key is due — pure functions of the stored keys and an instant (evaluate);
//   - plan.go: what the server does on its own (maintain) and what the commands do (a planned or
//     compromise rotation, re-sealing under a new KEK), each a plan over the stored keys;
//   - keyring.go: KeyRing, which mints with the key that signs at the token's issue time and
//     verifies with any published key; Open and Refresh keep it in step with the store;
//   - rotate.go: Rotate and RotateKEK, the entry points of `trustgate keys rotate-signing` and
//     `trustgate kek rotate`;
//   - kek.go: sealing (AES-256-GCM, the kid as associated data), KEK ids and KEKs (current and
//     previous).
//
// # Replicas
//
// Every replica evaluates the same rules on the same rows with its own clock, so all sign with the
// same key and publish the same JWKS without talking to each other. Changes are decided in the
// database: a plan runs in KeyStore.UpdateSigningKeys, which serialises plans across processes
// (a PostgreSQL advisory lock, SQLite's write lock), so replicas racing to create the next key
// create exactly one. A replica learns of another's change by polling the store's signing-key
// version (Refresh, every catalog poll: at most a second), and of the schedule's own moments by
// evaluating it at every poll; between two polls, Mint already picks the next key once the
// token's issue time reaches its activation.
//
// # Choices the contract leaves open
//
//   - The first key of a deployment signs at once (nothing can have cached a JWKS yet); so does
//     the key that replaces withdrawn ones.
//   - `rotate-signing` when a next key is already published lets that key sign as soon as it has
//     been published for an hour, rather than creating another.
//   - `rotate-signing --compromised` withdraws every published key, not only the current one: the
//     servers hold them all in the same database and memory, so what exposed one exposed all, and
//     a retired key still published would let its holder forge tokens that verify for up to a day.
//   - A key's private part is erased from the database once it can never sign again (a minute
//     after its last signing time, or at withdrawal); its public part stays, for the record.
//   - Every sealed key records the id of its KEK (KEKID), so a server given the wrong KEK refuses
//     to start naming the KEK it needs; a server that opened keys with TRUSTGATE_KEK_PREVIOUS
//     re-seals them under its current KEK, so that the previous one can be dropped after the
//     rolling restart.
//
// # Hot path
//
// Mint and Verify read one atomically loaded, immutable ringState: no lock and no database
// access. BenchmarkMint and BenchmarkVerifyES256 measure them.
package signing
