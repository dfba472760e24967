package console

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
)

// condRow is one effective condition as a connection page shows it.
type condRow struct {
	Claim    string
	Operator string
	// Values is the expected value, one_of's values, or nothing for exists.
	Values []string
	// Origin says where the condition comes from: "preset" (the provider type's pinned issuer,
	// audience and scope), "issuer_url" (implied by OIDC discovery) or "user".
	Origin string
}

// conditionRows labels the effective conditions with their origin: Resolve puts the preset's
// (or issuer_url's) conditions first, then the user's, so the last len(spec.Conditions) are the
// user's.
func conditionRows(spec api.ConnectionInput, effective []api.Condition) []condRow {
	implied := len(effective) - len(spec.Conditions)
	rows := make([]condRow, 0, len(effective))
	for i, c := range effective {
		origin := "user"
		if i < implied {
			origin = "preset"
			if spec.IssuerURL != "" && i == 0 {
				origin = "issuer_url"
			}
		}
		rows = append(rows, condRow{Claim: c.Claim, Operator: c.Operator, Values: conditionValues(c), Origin: origin})
	}
	return rows
}

func conditionValues(c api.Condition) []string {
	switch {
	case c.Operator == api.OpOneOf:
		return slices.Clone(c.Values)
	case c.Value != nil:
		return []string{*c.Value}
	}
	return nil
}

// conditionLine is a condition as one line of text, for the proposal's diff.
func conditionLine(r condRow) string {
	var b strings.Builder
	b.WriteString(r.Claim)
	b.WriteString(" ")
	b.WriteString(r.Operator)
	switch {
	case r.Operator == api.OpOneOf:
		b.WriteString(" [" + strings.Join(quoteAll(r.Values), ", ") + "]")
	case len(r.Values) > 0:
		b.WriteString(" " + fmt.Sprintf("%q", r.Values[0]))
	}
	b.WriteString("  (" + r.Origin + ")")
	return b.String()
}

func quoteAll(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}

// field is one labelled value of a configuration.
type field struct {
	Name  string
	Value string
}

// settingFields are the settings of a connection besides its conditions, as a page lists them.
func settingFields(c api.Connection, r connection.Resolved) []field {
	out := []field{{"Provider type", c.ProviderType}}
	switch {
	case r.IssuerURL != "":
		out = append(out, field{"Keys from", "OIDC discovery of " + r.IssuerURL})
	case r.InlineJWKS != "":
		out = append(out, field{"Keys from", "inline JWKS, key thumbprints " + strings.Join(r.JWKSThumbprints, ", ")})
	default:
		src := r.JWKSURL
		if c.JWKSURLOverridden {
			src += " (overrides the preset's)"
		}
		out = append(out, field{"Keys from", src})
	}
	out = append(out,
		field{"Token lifetime", ttlText(c.TokenTTL)},
		field{"Identity claim", c.IdentityClaim})
	if len(c.TokenAudience) > 0 {
		out = append(out, field{"Token audience", strings.Join(c.TokenAudience, ", ")})
	} else {
		out = append(out, field{"Token audience", "the server's public URL (default)"})
	}
	if len(c.ClaimMappings) > 0 {
		keys := make([]string, 0, len(c.ClaimMappings))
		for k := range c.ClaimMappings {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + " ← " + c.ClaimMappings[k]
		}
		out = append(out, field{"Claim mappings", strings.Join(parts, "; ")})
	}
	single := "no"
	if c.SingleUse {
		single = "yes: each CI token is exchanged at most once"
	}
	out = append(out, field{"Single use", single})
	return out
}

// ttlText is a token lifetime in words ("1 hour", "30 minutes").
func ttlText(t api.TokenTTL) string {
	unit := t.Unit
	if t.Amount == 1 {
		unit = strings.TrimSuffix(unit, "s")
	}
	return fmt.Sprintf("%d %s", t.Amount, unit)
}

// activationBlock is the security workspace's resource that activates (or, with a pending
// proposal, approves) exactly this configuration: its fingerprint filled in.
func activationBlock(name, fingerprint string, proposal bool) string {
	label := strings.ReplaceAll(name, "-", "_")
	if label != "" && label[0] >= '0' && label[0] <= '9' {
		label = "connection_" + label // a Terraform label starts with a letter
	}
	var b strings.Builder
	if proposal {
		b.WriteString("# approved_fingerprint is the pending proposal's: applying this approves it (a security\n")
		b.WriteString("# admin who did not write it) and keeps the connection active.\n")
	}
	fmt.Fprintf(&b, "resource \"trustgate_workload_connection_activation\" %q {\n", label)
	fmt.Fprintf(&b, "  connection_name      = %q\n", name)
	fmt.Fprintf(&b, "  approved_fingerprint = %q\n", fingerprint)
	b.WriteString("}\n")
	return b.String()
}

// diffRow is one line of the side-by-side comparison of the live and the proposed configuration.
type diffRow struct {
	Field    string
	Live     string
	Proposed string
	// Change is "", "changed", "added" (only in the proposal) or "removed" (only live).
	Change string
}

// configDiff compares the live and the proposed configuration field by field (the settings,
// then the effective conditions, aligned by a longest common subsequence so that one inserted
// condition shows as one added line).
func configDiff(live, proposed api.ConnectionInput, opts connection.Options) (settings, conditions []diffRow) {
	lr, pr := connection.Resolve(live, opts), connection.Resolve(proposed, opts)
	lf, pf := flattenSpec(live, lr), flattenSpec(proposed, pr)
	settings = alignFields(lf, pf)
	var lc, pc []string
	for _, r := range conditionRows(live, lr.EffectiveConditions) {
		lc = append(lc, conditionLine(r))
	}
	for _, r := range conditionRows(proposed, pr.EffectiveConditions) {
		pc = append(pc, conditionLine(r))
	}
	return settings, lcsDiff(lc, pc)
}

// flattenSpec lists a configuration's fields in the order of api.ConnectionInput, with dotted
// names (github.owner, token_ttl, claim_mappings.repo); fields that are not set are left out.
// Conditions are compared as effective conditions instead, and an inline JWKS by its keys'
// thumbprints; the key source actually used is added at the end.
func flattenSpec(spec api.ConnectionInput, r connection.Resolved) []field {
	var out []field
	flattenValue("", reflect.ValueOf(spec), &out)
	if len(r.JWKSThumbprints) > 0 {
		out = append(out, field{"jwks (key thumbprints)", strings.Join(r.JWKSThumbprints, ", ")})
	}
	if r.JWKSURL != "" {
		out = append(out, field{"keys from (effective)", r.JWKSURL})
	}
	return out
}

func flattenValue(prefix string, v reflect.Value, out *[]field) {
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" || name == "conditions" || name == "jwks" {
			continue
		}
		path, fv := prefix+name, v.Field(i)
		switch fv.Kind() {
		case reflect.Pointer:
			if fv.IsNil() {
				continue
			}
			if ttl, ok := fv.Interface().(*api.TokenTTL); ok {
				*out = append(*out, field{path, fmt.Sprintf("%d %s", ttl.Amount, ttl.Unit)})
			} else if fv.Elem().Kind() == reflect.Struct {
				flattenValue(path+".", fv.Elem(), out)
			} else {
				*out = append(*out, field{path, fmt.Sprint(fv.Elem().Interface())})
			}
		case reflect.Map:
			keys := fv.MapKeys()
			slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
			for _, k := range keys {
				*out = append(*out, field{path + "." + k.String(), fmt.Sprint(fv.MapIndex(k).Interface())})
			}
		case reflect.Slice:
			if fv.Len() == 0 {
				continue
			}
			parts := make([]string, fv.Len())
			for j := range fv.Len() {
				parts[j] = fmt.Sprint(fv.Index(j).Interface())
			}
			*out = append(*out, field{path, strings.Join(parts, ", ")})
		default:
			if !fv.IsZero() {
				*out = append(*out, field{path, fmt.Sprint(fv.Interface())})
			}
		}
	}
}

// alignFields pairs the fields of two configurations by name, in the order they appear (a field
// only the proposal has comes after the proposal's preceding field).
func alignFields(live, proposed []field) []diffRow {
	rows := make([]diffRow, 0, len(live)+len(proposed))
	at := map[string]int{}
	for _, f := range live {
		at[f.Name] = len(rows)
		rows = append(rows, diffRow{Field: f.Name, Live: f.Value, Change: "removed"})
	}
	insert := 0
	for _, f := range proposed {
		if i, ok := at[f.Name]; ok {
			rows[i].Proposed = f.Value
			rows[i].Change = ""
			if rows[i].Live != f.Value {
				rows[i].Change = "changed"
			}
			insert = i + 1
			continue
		}
		rows = slices.Insert(rows, insert, diffRow{Field: f.Name, Proposed: f.Value, Change: "added"})
		for k, v := range at {
			if v >= insert {
				at[k] = v + 1
			}
		}
		insert++
	}
	return rows
}

// lcsDiff aligns two lists of lines: lines in both (in order) side by side, the others as
// removed or added.
func lcsDiff(a, b []string) []diffRow {
	n, m := len(a), len(b)
	l := make([][]int, n+1)
	for i := range l {
		l[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				l[i][j] = l[i+1][j+1] + 1
			} else {
				l[i][j] = max(l[i+1][j], l[i][j+1])
			}
		}
	}
	var rows, removed, added []diffRow
	// flush pairs the removed and added lines of one run side by side, as changed lines.
	flush := func() {
		for k := range max(len(removed), len(added)) {
			r := diffRow{Field: "condition", Change: "changed"}
			switch {
			case k >= len(added):
				r.Live, r.Change = removed[k].Live, "removed"
			case k >= len(removed):
				r.Proposed, r.Change = added[k].Proposed, "added"
			default:
				r.Live, r.Proposed = removed[k].Live, added[k].Proposed
			}
			rows = append(rows, r)
		}
		removed, added = removed[:0], added[:0]
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			flush()
			rows = append(rows, diffRow{Field: "condition", Live: a[i], Proposed: b[j]})
			i, j = i+1, j+1
		case i < n && (j == m || l[i+1][j] >= l[i][j+1]):
			removed = append(removed, diffRow{Live: a[i]})
			i++
		default:
			added = append(added, diffRow{Proposed: b[j]})
			j++
		}
	}
	flush()
	return rows
}
