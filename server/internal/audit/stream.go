package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// Streaming (CONTRACT.md §3): every durable event is appended to a file (or stdout) as one line of
// JSON, in commit order, for log shippers to forward to a SIEM. A line is the event's canonical
// JSON with its hash (AppendCanonical), i.e. the API's fields plus chain, seq, prev_hash and hash.
//
// # Exactly once across crashes
//
// The writer hands each committed batch to the stream, which writes it after the commit, so a
// crash can leave committed events unwritten. The stream's position — the chain and seq of the
// last event it wrote — is what a restarted server resumes from, and it is read back from the
// stream file itself: its last complete line. Only that line can say what the file holds (a
// position kept elsewhere and updated after the write can lag behind it, one updated before can
// run ahead: either way an event would be written twice or never). A crash in the middle of a
// write leaves at most a partial last line, which is cut off and written again.
//
// The file cannot say everything, though: after log rotation it is empty, and the next chain (a
// new process's) has no line in it yet. So a small position file beside it, PATH.position,
// records the chain being streamed and where its events start in the database (floor, the audit
// log's insertion number before the chain's first event). At start the server
//  1. takes an exclusive lock on PATH.position (one process per stream);
//  2. reads the position: the file's last complete line if it belongs to the chain that
//     PATH.position names, else PATH.position (rotation happened, or that chain has no line yet);
//  3. writes every event of that chain after that seq from the database (catch-up);
//  4. records its own chain, seq 0 and the current floor in PATH.position before it writes any
//     event of its own, so that the next start finds this chain even if this process dies before
//     its first line.
//
// Chains are streamed one after the other, each to its end, so (chain, seq) totally orders the
// stream, and every event of the database from the first chain streamed on appears exactly once.
// PATH.position is also brought up to date after every batch and before every reopen (rotation
// by renaming the file and SIGHUP). With "-" (stdout) nothing can be read back: a restart starts
// with its own chain, and events committed but not written before a crash stay in the database
// alone (`trustgate audit verify` still sees them).

// StreamSource reads the events a stream catches up on (store.Store implements it).
type StreamSource interface {
	AuditChainAfter(ctx context.Context, chain string, after, floor int64) ([]api.AuditEvent, error)
	AuditHighWater(ctx context.Context) (int64, error)
}

// position is where a stream stands: the last event written of chain, and floor, an insertion
// number of the audit log below every event of chain.
type position struct {
	Chain string `json:"chain"`
	Seq   int64  `json:"seq"`
	Floor int64  `json:"floor"`
}

// positionSize is the fixed size of PATH.position (rewritten in place).
const positionSize = 256

// Stream appends durable events to a file or stdout. Enqueue never blocks; a background goroutine
// writes.
type Stream struct {
	path string
	src  StreamSource
	log  *slog.Logger

	mu      sync.Mutex // guards out, posFile, pos, dirty against the goroutine and Reopen/Close
	out     *os.File
	posFile *os.File // nil for stdout
	pos     position
	dirty   bool // written since the last fsync

	queue   chan []api.AuditEvent
	dropped chan struct{} // a batch did not fit in the queue: catch up from the database
	reopen  chan chan error
	stop    chan struct{}
	done    chan struct{}
	buf     []byte
	posBuf  [positionSize]byte
}

// OpenStream opens the stream at path ("-": stdout), catches up on the events a previous process
// committed but did not write, and makes chain (this process's) the one it streams next. It returns
// once the catch-up is written.
func OpenStream(ctx context.Context, path, chain string, src StreamSource, logger *slog.Logger) (*Stream, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Stream{path: path, src: src, log: logger, queue: make(chan []api.AuditEvent, 1024),
		dropped: make(chan struct{}, 1), reopen: make(chan chan error), stop: make(chan struct{}), done: make(chan struct{})}
	if path == "-" {
		s.out = os.Stdout
	} else if err := s.openFiles(ctx); err != nil {
		return nil, err
	}
	floor, err := src.AuditHighWater(ctx)
	if err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("audit log stream: %w", err)
	}
	s.pos = position{Chain: chain, Floor: floor}
	if err := s.savePosition(true); err != nil {
		s.closeFiles()
		return nil, err
	}
	go s.run()
	return s, nil
}

// openFiles locks PATH.position, opens the stream file, repairs a partial last line, finds the
// position and writes the catch-up.
func (s *Stream) openFiles(ctx context.Context) error {
	pf, err := os.OpenFile(s.path+".position", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit log stream: %w", err)
	}
	if err := syscall.Flock(int(pf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = pf.Close()
		return fmt.Errorf("audit log stream %s: another trustgate process streams to it (%v); give each server its own --audit-log file", s.path, err)
	}
	s.posFile = pf
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		_ = pf.Close()
		return fmt.Errorf("audit log stream: %w", err)
	}
	s.out = f
	saved, hasSaved, err := readPosition(pf)
	if err != nil {
		s.closeFiles()
		return err
	}
	tail, hasTail, err := repairTail(f)
	if err != nil {
		s.closeFiles()
		return fmt.Errorf("audit log stream %s: %w", s.path, err)
	}
	var from position
	switch {
	case hasTail && hasSaved && tail.Chain == saved.Chain:
		from = position{Chain: tail.Chain, Seq: tail.Seq, Floor: saved.Floor}
	case hasTail && !hasSaved: // the position file was lost: search the whole log
		from = position{Chain: tail.Chain, Seq: tail.Seq}
	case hasSaved:
		from = saved
	default:
		return nil // a new stream: it starts with this process's chain
	}
	evs, err := s.src.AuditChainAfter(ctx, from.Chain, from.Seq, from.Floor)
	if err != nil {
		s.closeFiles()
		return fmt.Errorf("audit log stream: catching up on chain %s after seq %d: %w", from.Chain, from.Seq, err)
	}
	s.pos = from
	if err := s.write(evs); err != nil {
		s.closeFiles()
		return err
	}
	if len(evs) > 0 {
		s.log.Info("audit log stream caught up on events committed before a crash", "chain", from.Chain, "events", len(evs), "path", s.path)
	}
	return nil
}

// Enqueue hands a committed batch to the stream without blocking. If the queue is full the batch
// is dropped here and read back from the database instead.
func (s *Stream) Enqueue(evs []api.AuditEvent) {
	select {
	case s.queue <- evs:
	default:
		select {
		case s.dropped <- struct{}{}:
		default:
		}
	}
}

// Reopen closes and reopens the stream file (log rotation: rename the file, then SIGHUP).
func (s *Stream) Reopen() error {
	if s.path == "-" {
		return nil
	}
	errc := make(chan error, 1)
	select {
	case s.reopen <- errc:
		return <-errc
	case <-s.done:
		return errors.New("audit log stream closed")
	}
}

// Close writes what is queued, catches up on anything dropped, saves the position and closes.
// Call it after the writer's Close, so that the last checkpoint is in the stream too.
func (s *Stream) Close() error {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.sync()
	s.closeFiles()
	return err
}

func (s *Stream) run() {
	defer close(s.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case evs := <-s.queue:
			s.handle(evs)
		case <-s.dropped:
			s.catchUp()
		case errc := <-s.reopen:
			errc <- s.doReopen()
		case <-tick.C:
			s.mu.Lock()
			if err := s.sync(); err != nil {
				s.log.Error("audit log stream: sync failed", "path", s.path, "error", err)
			}
			s.mu.Unlock()
		case <-s.stop:
			for {
				select {
				case evs := <-s.queue:
					s.handle(evs)
					continue
				default:
				}
				break
			}
			s.catchUp()
			return
		}
	}
}

// handle writes a batch, first catching up from the database if earlier events were dropped.
func (s *Stream) handle(evs []api.AuditEvent) {
	if len(evs) > 0 && evs[0].Chain == s.pos.Chain && evs[0].Seq > s.pos.Seq+1 {
		s.catchUp()
	}
	if err := s.write(evs); err != nil {
		s.log.Error("audit log stream: write failed; the events are in the database and are written after the next restart", "path", s.path, "error", err)
	}
}

// catchUp writes the events of the stream's chain after its position from the database.
func (s *Stream) catchUp() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	evs, err := s.src.AuditChainAfter(ctx, s.pos.Chain, s.pos.Seq, s.pos.Floor)
	if err == nil {
		err = s.write(evs)
	}
	if err != nil {
		s.log.Error("audit log stream: catching up from the database failed", "path", s.path, "error", err)
	}
}

// write appends the events that follow the position (others are already written) and moves the
// position past them.
func (s *Stream) write(evs []api.AuditEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buf[:0]
	next := s.pos
	for i := range evs {
		ev := &evs[i]
		if ev.Chain != next.Chain || ev.Seq <= next.Seq {
			continue
		}
		var err error
		if b, err = AppendCanonical(b, ev, true); err != nil {
			return err
		}
		b = append(b, '\n')
		next.Seq = ev.Seq
	}
	s.buf = b
	if len(b) == 0 {
		return nil
	}
	if _, err := s.out.Write(b); err != nil {
		if s.posFile != nil {
			_, _, _ = repairTail(s.out) // no partial line for the next write to follow
		}
		return fmt.Errorf("audit log stream %s: %w", s.path, err)
	}
	s.pos = next
	s.dirty = true
	return s.savePosition(false)
}

// savePosition rewrites PATH.position in place; with durable, it syncs both files first.
func (s *Stream) savePosition(durable bool) error {
	if s.posFile == nil {
		return nil
	}
	// {"chain":…,"seq":…,"floor":…} padded with spaces, written in place without allocating.
	rec := s.posBuf[:]
	b := append(rec[:0], `{"chain":`...)
	b = appendString(b, s.pos.Chain)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, s.pos.Seq, 10)
	b = append(b, `,"floor":`...)
	b = strconv.AppendInt(b, s.pos.Floor, 10)
	b = append(b, '}')
	if len(b) > positionSize-1 || &b[0] != &rec[0] {
		return errors.New("audit log stream: position too long")
	}
	for i := len(b); i < positionSize-1; i++ {
		rec[i] = ' '
	}
	rec[positionSize-1] = '\n'
	if durable {
		if err := s.out.Sync(); err != nil {
			return fmt.Errorf("audit log stream %s: %w", s.path, err)
		}
	}
	if _, err := s.posFile.WriteAt(rec, 0); err != nil {
		return fmt.Errorf("audit log stream %s.position: %w", s.path, err)
	}
	if durable {
		return s.posFile.Sync()
	}
	return nil
}

// sync makes what was written durable (called every second and before closing).
func (s *Stream) sync() error {
	if !s.dirty || s.posFile == nil {
		return nil
	}
	s.dirty = false
	return s.savePosition(true)
}

func (s *Stream) doReopen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.sync(); err != nil {
		return err
	}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("audit log stream: reopening %s: %w", s.path, err)
	}
	_ = s.out.Close()
	s.out = f
	return nil
}

func (s *Stream) closeFiles() {
	if s.out != nil && s.out != os.Stdout {
		_ = s.out.Close()
	}
	if s.posFile != nil {
		_ = s.posFile.Close() // releases the lock
	}
}

// readPosition reads PATH.position; ok is false when it is empty (a new stream).
func readPosition(f *os.File) (position, bool, error) {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, positionSize))
	if err != nil {
		return position{}, false, err
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return position{}, false, nil
	}
	var p position
	if err := json.Unmarshal(b, &p); err != nil || p.Chain == "" {
		return position{}, false, fmt.Errorf("audit log stream: %s is not a position file (%v): move it away only if the stream file beside it is new too", f.Name(), err)
	}
	return p, true, nil
}

// repairTail cuts a partial last line off the stream file (a crash in the middle of a write) and
// returns the chain and seq of its last complete line.
func repairTail(f *os.File) (position, bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return position{}, false, err
	}
	size := fi.Size()
	end, err := lastNewline(f, size)
	if err != nil {
		return position{}, false, err
	}
	if end+1 != size { // bytes after the last newline: a partial line
		if err := f.Truncate(end + 1); err != nil {
			return position{}, false, fmt.Errorf("cutting off a partial last line: %w", err)
		}
	}
	if end < 0 {
		return position{}, false, nil
	}
	start, err := lastNewline(f, end)
	if err != nil {
		return position{}, false, err
	}
	line := make([]byte, end-start-1)
	if _, err := f.ReadAt(line, start+1); err != nil {
		return position{}, false, err
	}
	var p struct {
		Chain string `json:"chain"`
		Seq   int64  `json:"seq"`
	}
	if err := json.Unmarshal(line, &p); err != nil || p.Chain == "" {
		return position{}, false, fmt.Errorf("its last line is not an audit event of a chain (%v): rotate the file away and restart", err)
	}
	return position{Chain: p.Chain, Seq: p.Seq}, true, nil
}

// lastNewline returns the offset of the last '\n' before offset end (-1 if none).
func lastNewline(f *os.File, end int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for end > 0 {
		n := min(int64(len(buf)), end)
		start := end - n
		if _, err := f.ReadAt(buf[:n], start); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return start + int64(i), nil
		}
		end = start
	}
	return -1, nil
}
