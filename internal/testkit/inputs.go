package testkit

import "github.com/trustgate/terraform-provider-trustgate/api"

// GenericInput is a generic connection that trusts tokens of issuerURL for audience, with keys
// from jwksURL (a ciissuer.Issuer's URL and JWKSURL, or made-up ones when nothing is exchanged).
func GenericInput(name, issuerURL, jwksURL, audience string) api.ConnectionInput {
	return api.ConnectionInput{
		Name: name, ProviderType: api.ProviderGeneric, JWKSURL: jwksURL,
		Conditions: []api.Condition{
			{Claim: "iss", Operator: api.OpEquals, Value: &issuerURL},
			{Claim: "aud", Operator: api.OpEquals, Value: &audience},
		},
	}
}

// GitHubInput is a github connection that accepts the dev issuer's github-shaped tokens
// (repository octo-org/octo-repo, owner id 65, ref refs/heads/main) with keys from jwksURL. The
// preset's audience is the server's default audience.
func GitHubInput(name, jwksURL string) api.ConnectionInput {
	return api.ConnectionInput{
		Name: name, ProviderType: api.ProviderGitHub, JWKSURL: jwksURL,
		GitHub: &api.GitHubSettings{Owner: "octo-org", OwnerID: "65", Repository: "octo-org/octo-repo", Ref: "refs/heads/main"},
	}
}
