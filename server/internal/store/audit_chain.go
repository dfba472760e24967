package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"gorm.io/gorm"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// Reads of the audit log in insertion order, for the hash chains (CONTRACT.md §3): the stream's
// catch-up after a crash and `trustgate audit verify`. Within one chain insertion order is chain
// order: a server commits its batches one after the other and numbers them before each commit.

// AuditEventStored reports whether the event with this id, chain and chain seq is in the audit
// log (the writer asks after a commit whose outcome it could not learn). The id finds it through
// its index; chain and seq make sure it is that event.
func (s *Store) AuditEventStored(ctx context.Context, id, chain string, seq int64) (bool, error) {
	var n int64
	if err := s.db.WithContext(ctx).Model(&auditRow{}).Where("id = ? AND chain = ? AND chain_seq = ?", id, chain, seq).Limit(1).Count(&n).Error; err != nil {
		return false, fmt.Errorf("look up audit event %s: %w", id, err)
	}
	return n > 0, nil
}

// AuditHighWater is the largest insertion number in the audit log (0 when empty). Every event
// inserted after the call has a larger one, on PostgreSQL too: its number is drawn from the
// sequence later.
func (s *Store) AuditHighWater(ctx context.Context) (int64, error) {
	var hw *int64
	if err := s.db.WithContext(ctx).Model(&auditRow{}).Select("max(seq)").Scan(&hw).Error; err != nil {
		return 0, fmt.Errorf("audit high-water mark: %w", err)
	}
	if hw == nil {
		return 0, nil
	}
	return *hw, nil
}

// chainWindow is how many insertion numbers one catch-up query covers.
const chainWindow = 20000

// AuditChainAfter returns the events of chain whose chain seq is greater than after, in chain
// order. It searches backwards from the newest event in windows of insertion numbers and stops at
// the chain's event number after (everything newer in the chain was inserted after it) or at
// floor, an insertion number known to precede the events sought (0: the whole log).
func (s *Store) AuditChainAfter(ctx context.Context, chain string, after, floor int64) ([]api.AuditEvent, error) {
	hi, err := s.AuditHighWater(ctx)
	if err != nil {
		return nil, err
	}
	var out []api.AuditEvent
	for hi > floor {
		lo := max(hi-chainWindow, floor)
		var rows []auditRow
		if err := s.rdb.WithContext(ctx).Where("seq > ? AND seq <= ? AND chain = ?", lo, hi, chain).
			Order("seq DESC").Find(&rows).Error; err != nil {
			return nil, fmt.Errorf("read audit chain %s: %w", chain, err)
		}
		reached := false
		for _, r := range rows {
			if r.ChainSeq <= after {
				reached = true
				break
			}
			ev, err := r.toEvent()
			if err != nil {
				return nil, err
			}
			out = append(out, ev)
		}
		if reached {
			break
		}
		hi = lo
	}
	slices.Reverse(out)
	return out, nil
}

// WalkAudit calls fn with every audit event, oldest first (insertion order), pageSize at a time.
// On PostgreSQL it reads in one read-only REPEATABLE READ transaction: replicas commit while it
// reads, and a snapshot holds every chain as a whole prefix (a chain's next batch is inserted only
// after its previous one committed), where separate queries could see a later event of a chain
// without an earlier one still in flight. SQLite has one writer, which commits in insertion order.
func (s *Store) WalkAudit(ctx context.Context, pageSize int, fn func([]api.AuditEvent) error) error {
	walk := func(db *gorm.DB) error {
		var after int64
		for {
			var rows []auditRow
			if err := db.Where("seq > ?", after).Order("seq").Limit(pageSize).Find(&rows).Error; err != nil {
				return fmt.Errorf("read audit events: %w", err)
			}
			if len(rows) == 0 {
				return nil
			}
			page := make([]api.AuditEvent, 0, len(rows))
			for _, r := range rows {
				ev, err := r.toEvent()
				if err != nil {
					return err
				}
				page = append(page, ev)
			}
			after = rows[len(rows)-1].Seq
			if err := fn(page); err != nil {
				return err
			}
		}
	}
	if s.dialect != DialectPostgres {
		return walk(s.rdb.WithContext(ctx))
	}
	return s.db.WithContext(ctx).Transaction(walk, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
}
