package connection

import (
	"errors"
	"strings"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// Kind classifies a domain refusal. The HTTP layer maps it to a status code (noted on each
// constant); the domain itself knows nothing of HTTP.
type Kind int

const (
	// KindValidation: the input is invalid (422). Error.Fields names each invalid field.
	KindValidation Kind = iota + 1
	// KindForbidden: the role or ownership forbids the action (403).
	KindForbidden
	// KindConflict: the connection's state forbids the action (409).
	KindConflict
	// KindPrecondition: an If-Match style precondition failed (412).
	KindPrecondition
	// KindNotFound: no such connection (404).
	KindNotFound
)

// String names the kind, for logs and test output.
func (k Kind) String() string {
	switch k {
	case KindValidation:
		return "validation"
	case KindForbidden:
		return "forbidden"
	case KindConflict:
		return "conflict"
	case KindPrecondition:
		return "precondition"
	case KindNotFound:
		return "not_found"
	}
	return "unknown"
}

// Error is a domain refusal. Detail is a sentence a person can act on; Fields, for
// KindValidation, names every invalid field with a dotted path.
type Error struct {
	Kind   Kind
	Detail string
	Fields []api.FieldError
	// Type, when set, is the problem type (api.Problem*) of a refusal clients tell apart.
	Type string
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Detail)
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Field)
		b.WriteString(": ")
		b.WriteString(f.Detail)
	}
	return b.String()
}

// DefaultValidationDetail is the Detail of a validation error built without one.
const DefaultValidationDetail = "the workload connection is invalid; see errors for each field"

// Validation is a KindValidation error listing the invalid fields.
func Validation(fields ...api.FieldError) *Error {
	return &Error{Kind: KindValidation, Detail: DefaultValidationDetail, Fields: fields}
}

// ValidationDetail is a KindValidation error with its own detail sentence.
func ValidationDetail(detail string, fields ...api.FieldError) *Error {
	return &Error{Kind: KindValidation, Detail: detail, Fields: fields}
}

// Forbidden is a KindForbidden error.
func Forbidden(detail string) *Error { return &Error{Kind: KindForbidden, Detail: detail} }

// Conflict is a KindConflict error.
func Conflict(detail string) *Error { return &Error{Kind: KindConflict, Detail: detail} }

// Precondition is a KindPrecondition error.
func Precondition(detail string) *Error { return &Error{Kind: KindPrecondition, Detail: detail} }

// NotFound is a KindNotFound error.
func NotFound(detail string) *Error { return &Error{Kind: KindNotFound, Detail: detail} }

// KindOf returns the Kind of a domain error anywhere in err's chain, or 0 when err is not one.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}
