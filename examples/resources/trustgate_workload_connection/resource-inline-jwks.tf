# A GitHub Enterprise Server behind a firewall: Trustgate cannot fetch its
# keys, so they are given inline (public keys only; a private member is
# refused). Paste the server's https://<host>/_services/token/.well-known/jwks,
# or read it with file("${path.module}/ghes-jwks.json"); rotate by applying
# the new document. Reordering keys or reformatting changes nothing: the
# fingerprint covers the keys' thumbprints.
resource "trustgate_workload_connection" "ghes" {
  name = "ghes-deploy"

  github {
    owner_id = "42" # the organisation's id on the Enterprise Server
    host     = "github.acme.internal"
  }

  jwks = jsonencode({
    keys = [{
      kty = "EC"
      crv = "P-256"
      kid = "ghes-2026-11"
      alg = "ES256"
      use = "sig"
      x   = "s9tbBmRQrRieetCtieDTBmL70-S2jJjBQ_6nuM03WDQ"
      y   = "rC4quqX7rRYoF9lii76LABERaKsPCVWaoMxBypcDFq4"
    }]
  })
}
