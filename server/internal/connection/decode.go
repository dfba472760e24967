package connection

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// DecodeInput decodes a create body strictly: the body must be one JSON object; every unknown
// field (keys match exactly, case included) and every value of the wrong JSON type is reported
// with its dotted path in one KindValidation error; malformed JSON is a KindValidation error
// whose detail says where it broke. It does not validate values: that is Normalize's job.
func DecodeInput(body []byte) (api.ConnectionInput, error) {
	var in api.ConnectionInput
	raw, err := decodeGeneric(body)
	if err != nil {
		return in, err
	}
	if _, ok := raw.(map[string]any); !ok {
		return in, ValidationDetail(fmt.Sprintf("the request body must be a JSON object; got %s", jsonKind(raw)))
	}
	var fe fieldErrors
	checkShape(raw, reflect.TypeOf(in), "", &fe)
	if len(fe) > 0 {
		sort.SliceStable(fe, func(i, j int) bool { return fe[i].Field < fe[j].Field })
		return in, ValidationDetail("the request body does not match the workload connection schema; see errors", fe...)
	}
	if err := json.Unmarshal(body, &in); err != nil {
		// checkShape accepted it, so this is unexpected; still report it as the user's input.
		return api.ConnectionInput{}, ValidationDetail("the request body could not be decoded: " + err.Error())
	}
	return in, nil
}

// decodeGeneric parses exactly one JSON value with numbers kept as json.Number.
func decodeGeneric(body []byte) (any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, ValidationDetail("the request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, ValidationDetail(syntaxDetail(body, err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ValidationDetail("the request body holds more than one JSON value; send exactly one JSON object")
	}
	return v, nil
}

func syntaxDetail(body []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(body, se.Offset)
		return fmt.Sprintf("the request body is not valid JSON: %s (line %d, column %d)", se.Error(), line, col)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "the request body is not valid JSON: it ends in the middle of a value"
	}
	return "the request body is not valid JSON: " + err.Error()
}

func position(body []byte, offset int64) (line, col int) {
	line, col = 1, 1
	for i := int64(0); i < offset-1 && i < int64(len(body)); i++ {
		if body[i] == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

func jsonKind(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", x)
	}
}

// checkShape compares a generic JSON value with the Go type it will be decoded into and records
// unknown keys and type mismatches. null is accepted everywhere: it means "absent".
func checkShape(v any, t reflect.Type, path string, fe *fieldErrors) {
	if v == nil {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	name := path
	if name == "" {
		name = "body"
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			fe.add(name, "must be an object; got %s", jsonKind(v))
			return
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			sub := k
			if path != "" {
				sub = path + "." + k
			}
			f, ok := fields[k]
			if !ok {
				msg := "is not a known field"
				if alt := closeField(k, fields); alt != "" {
					msg += fmt.Sprintf("; did you mean %q?", alt)
				}
				fe.add(sub, "%s", msg)
				continue
			}
			checkShape(obj[k], f.Type, sub, fe)
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			fe.add(name, "must be an object; got %s", jsonKind(v))
			return
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if obj[k] == nil {
				fe.add(path+"."+k, "must not be null; leave the entry out instead")
				continue
			}
			checkShape(obj[k], t.Elem(), path+"."+k, fe)
		}
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			fe.add(name, "must be an array; got %s", jsonKind(v))
			return
		}
		for i, e := range arr {
			checkShape(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), fe)
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			fe.add(name, "must be a string; got %s", jsonKind(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			fe.add(name, "must be a boolean; got %s", jsonKind(v))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			fe.add(name, "must be an integer; got %s", jsonKind(v))
			return
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			fe.add(name, "must be an integer in range; got %s", truncate(string(n), 40))
		}
	default:
		// The wire types use only the kinds above; anything else is accepted as is.
	}
}

// jsonFields maps the JSON names of a struct's exported fields to the fields.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := make(map[string]reflect.StructField, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}

// closeField suggests a known field for a mistyped key (same letters ignoring case, or the
// plural/singular slip such as "condition" for "conditions").
func closeField(k string, fields map[string]reflect.StructField) string {
	lk := strings.ToLower(k)
	for name := range fields {
		if strings.ToLower(name) == lk || name == lk+"s" || name+"s" == lk {
			return name
		}
	}
	return ""
}

// presetKeys are the merge-patch keys after which provider_type is inferred again.
var presetKeys = []string{api.ProviderGitHub, api.ProviderGitLab, api.ProviderCircleCI, api.ProviderGoogleCloud}

// ApplyMergePatch applies an RFC 7396 JSON merge patch to the current spec and decodes the result
// as strictly as DecodeInput. `null` removes an optional field: a preset block, the jwks_url
// override (derived again), token_ttl (default again), identity_claim ("sub" again). A list such
// as conditions is replaced as a whole. When the patch touches a preset block but not
// provider_type, provider_type is cleared so that Normalize infers it from the blocks. The result
// is not validated: call Normalize.
func ApplyMergePatch(current api.ConnectionInput, patch []byte) (api.ConnectionInput, error) {
	raw, err := decodeGeneric(patch)
	if err != nil {
		return api.ConnectionInput{}, err
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		return api.ConnectionInput{}, ValidationDetail(fmt.Sprintf("a JSON merge patch must be a JSON object; got %s", jsonKind(raw)))
	}
	doc, err := json.Marshal(current)
	if err != nil {
		return api.ConnectionInput{}, fmt.Errorf("connection: encoding current spec: %w", err)
	}
	merged, err := jsonpatch.MergePatch(doc, patch)
	if err != nil {
		return api.ConnectionInput{}, ValidationDetail("the merge patch could not be applied: " + err.Error())
	}
	out, err := DecodeInput(merged)
	if err != nil {
		return api.ConnectionInput{}, err
	}
	if _, setsType := obj["provider_type"]; !setsType {
		for _, k := range presetKeys {
			if _, touches := obj[k]; touches {
				out.ProviderType = ""
				break
			}
		}
	}
	return out, nil
}
