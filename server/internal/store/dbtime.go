package store

import (
	"database/sql/driver"
	"fmt"
	"time"
)

// timeLayout is how times are written: UTC, fixed width, microseconds. SQLite keeps it as TEXT, so
// string order is time order; PostgreSQL parses it into a timestamptz (microsecond precision too).
// Either way a value read back equals the value written after Truncate(time.Microsecond).
const timeLayout = "2006-01-02T15:04:05.000000Z"

// dbTime is a timestamp column. It writes timeLayout and reads either a time.Time (PostgreSQL) or
// the string form (SQLite), and always returns UTC.
type dbTime struct{ time.Time }

func newDBTime(t time.Time) dbTime { return dbTime{t.UTC().Truncate(time.Microsecond)} }

// Value implements driver.Valuer.
func (t dbTime) Value() (driver.Value, error) {
	return t.UTC().Truncate(time.Microsecond).Format(timeLayout), nil
}

// Scan implements sql.Scanner.
func (t *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		t.Time = v.UTC()
		return nil
	case string:
		return t.parse(v)
	case []byte:
		return t.parse(string(v))
	default:
		return fmt.Errorf("scan time: unsupported type %T", src)
	}
}

func (t *dbTime) parse(s string) error {
	p, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("scan time %q: %w", s, err)
	}
	t.Time = p.UTC()
	return nil
}

// nullTime is a nullable timestamp column.
type nullTime struct {
	T     dbTime
	Valid bool
}

func newNullTime(t *time.Time) nullTime {
	if t == nil {
		return nullTime{}
	}
	return nullTime{T: newDBTime(*t), Valid: true}
}

// Ptr returns the time or nil.
func (n nullTime) Ptr() *time.Time {
	if !n.Valid {
		return nil
	}
	t := n.T.Time
	return &t
}

// Value implements driver.Valuer.
func (n nullTime) Value() (driver.Value, error) {
	if !n.Valid {
		return nil, nil
	}
	return n.T.Value()
}

// Scan implements sql.Scanner.
func (n *nullTime) Scan(src any) error {
	if src == nil {
		*n = nullTime{}
		return nil
	}
	n.Valid = true
	return n.T.Scan(src)
}
