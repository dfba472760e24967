package sightings

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
)

// MaxListed is how many workloads an impact report names in each list (CONTRACT.md §3).
const MaxListed = 100

// Impact evaluates a proposed configuration against the workloads seen in the window (seen: the
// stored sightings last seen within it) and compares it with the live configuration: which
// workloads the change would refuse that the live rules grant today, and which it would admit that
// they refuse. Both sides are decided by connection.Decide, the function the exchange decides
// with, on each sighting's latest claims. A workload's recorded outcome is history (the rules may
// have changed since); the live configuration is evaluated afresh.
//
// Lists are newest first, at most MaxListed each; the totals count every sighting. What the claims
// of past tokens cannot tell (a changed key source, TTL, audience, claim mappings, single use,
// claims a sighting does not keep) is said in Caveats instead of being guessed.
func Impact(live, proposed api.ConnectionInput, opts connection.Options, seen []api.Sighting, window time.Duration) api.ImpactReport {
	rl, rp := connection.Resolve(live, opts), connection.Resolve(proposed, opts)
	lj, pj := judge(rl.EffectiveConditions, live.IdentityClaim), judge(rp.EffectiveConditions, proposed.IdentityClaim)
	lr, pr := connection.PrepareRules(lj.conds, lj.identity), connection.PrepareRules(pj.conds, pj.identity)

	rep := api.ImpactReport{Window: FormatWindow(window), Sightings: len(seen),
		NewlyRefused: []api.ImpactWorkload{}, NewlyAdmitted: []api.ImpactWorkload{}}
	buf := make([]api.Check, 0, 1+max(len(lj.conds), len(pj.conds)))
	var refused, admitted []int          // indexes into seen
	failing := make([]string, len(seen)) // the failing check of each changed workload
	for i := range seen {
		var now, then connection.Decision
		buf, now = lr.Decide(buf[:0], lj.claims(&seen[i]))
		buf, then = pr.Decide(buf[:0], pj.claims(&seen[i]))
		switch {
		case now.OK && then.OK:
			rep.StillGranted++
		case !now.OK && !then.OK:
			rep.StillRefused++
		case now.OK:
			refused = append(refused, i)
			failing[i] = then.FailedCheck
		default:
			admitted = append(admitted, i)
			failing[i] = now.FailedCheck
		}
	}
	rep.NewlyRefusedTotal, rep.NewlyAdmittedTotal = len(refused), len(admitted)
	rep.NewlyRefused = listed(seen, refused, failing)
	rep.NewlyAdmitted = listed(seen, admitted, failing)
	rep.Caveats = caveats(live, proposed, rl, rp, lj, pj, len(seen), window)
	return rep
}

// ClaimsRead names the top-level claims that deciding the sightings under each of specs reads:
// the claims of their effective conditions (a JSON pointer's first segment) and their identity
// claims. Impact reads nothing else of a sighting, so the store can decode only these
// (DecodeClaimsKeeping) and the report is the same.
func ClaimsRead(opts connection.Options, specs ...api.ConnectionInput) map[string]bool {
	keep := map[string]bool{}
	add := func(claim string) {
		if !strings.HasPrefix(claim, "/") {
			keep[claim] = true
			return
		}
		root, _, _ := strings.Cut(claim[1:], "/")
		// RFC 6901 escapes: ~1 is "/", ~0 is "~" (in this order).
		keep[strings.ReplaceAll(strings.ReplaceAll(root, "~1", "/"), "~0", "~")] = true
	}
	for _, spec := range specs {
		for _, c := range connection.Resolve(spec, opts).EffectiveConditions {
			add(c.Claim)
		}
		if spec.IdentityClaim == "" {
			add(api.DefaultIdentity)
		} else {
			add(spec.IdentityClaim)
		}
	}
	return keep
}

// listed is the workloads at idx, newest first, at most MaxListed.
func listed(seen []api.Sighting, idx []int, failing []string) []api.ImpactWorkload {
	slices.SortStableFunc(idx, func(a, b int) int { return seen[b].LastSeen.Compare(seen[a].LastSeen) })
	out := make([]api.ImpactWorkload, 0, min(len(idx), MaxListed))
	for _, i := range idx[:min(len(idx), MaxListed)] {
		s := &seen[i]
		out = append(out, api.ImpactWorkload{Identity: s.Identity, FirstSeen: s.FirstSeen, LastSeen: s.LastSeen,
			Exchanges: s.Exchanges, FailingCheck: failing[i]})
	}
	return out
}

// judged is one side's rules as sightings can judge them: the effective conditions on claims a
// sighting keeps, and the identity claim.
type judged struct {
	conds    []api.Condition
	identity string
	// unjudged are the conditions left out: they read a claim that sightings do not keep.
	unjudged []api.Condition
	// identityDropped is set when the identity claim is one that sightings do not keep.
	identityDropped string
}

func judge(effective []api.Condition, identityClaim string) judged {
	if identityClaim == "" {
		identityClaim = api.DefaultIdentity
	}
	j := judged{identity: identityClaim, identityDropped: droppedRoot(identityClaim)}
	for _, c := range effective {
		if droppedRoot(c.Claim) != "" {
			j.unjudged = append(j.unjudged, c)
			continue
		}
		j.conds = append(j.conds, c)
	}
	return j
}

// claims are the claims to decide s on. When the identity claim is one a sighting does not keep,
// it is assumed to hold, like a condition on such a claim: it is given the recorded identity.
func (j judged) claims(s *api.Sighting) map[string]any {
	if j.identityDropped == "" {
		return s.Claims
	}
	c := maps.Clone(s.Claims)
	if c == nil {
		c = map[string]any{}
	}
	c[j.identityDropped] = s.Identity
	return c
}

// droppedRoot is the claim a sighting does not keep that claim reads (by name or as the first
// token of a JSON pointer), or "".
func droppedRoot(claim string) string {
	root := claim
	if strings.HasPrefix(claim, "/") {
		root, _, _ = strings.Cut(claim[1:], "/")
	}
	if slices.Contains(droppedClaims, root) {
		return root
	}
	return ""
}

// caveats says what the claims of past tokens cannot tell about the change from live to proposed.
func caveats(live, proposed api.ConnectionInput, rl, rp connection.Resolved, lj, pj judged, seen int, window time.Duration) []string {
	var out []string
	if seen == 0 {
		out = append(out, fmt.Sprintf("no workload was seen on this connection in the last %s, so the report cannot show anyone the change would affect", FormatWindow(window)))
	}
	var keys []string
	if from, to := keySource(rl), keySource(rp); from != to {
		keys = append(keys, fmt.Sprintf("the key source changes from %s to %s", from, to))
	}
	if rl.Issuer != "" && rp.Issuer != "" && rl.Issuer != rp.Issuer {
		keys = append(keys, fmt.Sprintf("the preset's issuer changes from %s to %s", rl.Issuer, rp.Issuer))
	}
	if len(keys) > 0 {
		out = append(out, strings.Join(keys, ", and ")+": whether the workloads' tokens are signed by the new keys cannot be told from their claims, so they are judged on their claims alone")
	}
	if live.IdentityClaim != proposed.IdentityClaim {
		out = append(out, fmt.Sprintf("identity_claim changes from %s to %s: issued tokens name workloads differently (resource servers that check sub see new values), and tokens whose identity claim was unusable were never recorded, so workloads the new claim would admit may be missing", orDefault(live.IdentityClaim), orDefault(proposed.IdentityClaim)))
	}
	if a, b := ttlSeconds(live.TokenTTL), ttlSeconds(proposed.TokenTTL); a != b {
		out = append(out, fmt.Sprintf("token_ttl changes from %s to %s: issued tokens live %s, and claims do not show who depends on how long they live", FormatWindow(time.Duration(a)*time.Second), FormatWindow(time.Duration(b)*time.Second), longerOrShorter(a, b)))
	}
	if !slices.Equal(live.TokenAudience, proposed.TokenAudience) {
		out = append(out, fmt.Sprintf("token_audience changes from %s to %s: a workload that asks for an audience no longer listed is refused (invalid_target), and sightings do not record which audience workloads ask for", listOrDefault(live.TokenAudience), listOrDefault(proposed.TokenAudience)))
	}
	if !maps.Equal(live.ClaimMappings, proposed.ClaimMappings) {
		out = append(out, "claim_mappings change: issued tokens carry different claims, and resource servers that read them may decide differently; sightings cannot show that")
	}
	if live.SingleUse != proposed.SingleUse {
		if proposed.SingleUse {
			out = append(out, "single_use becomes true: a workload that exchanges the same CI token more than once will be refused (replay); sightings do not record repeated tokens")
		} else {
			out = append(out, "single_use becomes false: a CI token may be exchanged more than once again")
		}
	}
	unjudged := map[string]bool{}
	for _, j := range []judged{lj, pj} {
		for _, c := range j.unjudged {
			unjudged[c.Claim] = true
		}
		if j.identityDropped != "" {
			unjudged[j.identity] = true
		}
	}
	if len(unjudged) > 0 {
		out = append(out, fmt.Sprintf("rules on %s are not judged: sightings do not keep iat, nbf, exp and jti, so those rules are assumed to hold", strings.Join(slices.Sorted(maps.Keys(unjudged)), ", ")))
	}
	return out
}

// keySource names where a configuration's signing keys come from.
func keySource(r connection.Resolved) string {
	switch {
	case r.IssuerURL != "":
		return "issuer_url " + r.IssuerURL
	case r.InlineJWKS != "":
		return "inline jwks (keys " + strings.Join(r.JWKSThumbprints, ", ") + ")"
	}
	return "jwks_url " + r.JWKSURL
}

func ttlSeconds(t *api.TokenTTL) int64 {
	if t == nil {
		d := connection.DefaultTokenTTL()
		t = &d
	}
	return t.Amount * api.TTLUnitSeconds(t.Unit)
}

func longerOrShorter(from, to int64) string {
	if to > from {
		return "longer"
	}
	return "shorter"
}

func orDefault(claim string) string {
	if claim == "" {
		return api.DefaultIdentity
	}
	return claim
}

func listOrDefault(l []string) string {
	if len(l) == 0 {
		return "[the public URL]"
	}
	return "[" + strings.Join(l, ", ") + "]"
}

// FormatWindow writes a duration the way people type it (and time.ParseDuration reads it): whole
// hours as "720h", whole minutes as "10m", anything else as Go writes a duration.
func FormatWindow(d time.Duration) string {
	switch {
	case d > 0 && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d > 0 && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}
