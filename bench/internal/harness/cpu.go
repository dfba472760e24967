package harness

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of /proc/PID/stat times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// processCPU is the user+system CPU time a process has used so far, from /proc/PID/stat.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after its closing parenthesis are plain.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return time.Duration(ut+st) * clockTick, nil
}

// selfCPU is the CPU time this process has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter samples a server process's and this process's CPU time at two instants.
type cpuMeter struct {
	pid               int
	server0, self0    time.Duration
	server, self      time.Duration
	startErr, stopErr error
}

func (m *cpuMeter) start() {
	m.self0 = selfCPU()
	if m.pid > 0 {
		m.server0, m.startErr = processCPU(m.pid)
	}
}

func (m *cpuMeter) stop() {
	m.self = selfCPU() - m.self0
	if m.pid > 0 {
		var s time.Duration
		s, m.stopErr = processCPU(m.pid)
		m.server = s - m.server0
	}
}

// perOp returns the server's and this process's CPU microseconds per operation (0 when unknown).
func (m *cpuMeter) perOp(ops int) (server, self float64) {
	if ops == 0 {
		return 0, 0
	}
	self = round1(float64(m.self.Microseconds()) / float64(ops))
	if m.pid > 0 && m.startErr == nil && m.stopErr == nil {
		server = round1(float64(m.server.Microseconds()) / float64(ops))
	}
	return server, self
}

// postgresCPU returns a sampler of the CPU time of the PostgreSQL server behind dsn: its postmaster
// (the parent of a backend) and every child of it (backends, WAL writer, checkpointer, …). The
// server must run on this machine.
func postgresCPU(ctx context.Context, dsn string) (func() (time.Duration, error), error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var backend int
	if err := db.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return nil, err
	}
	postmaster, err := parentPID(backend)
	if err != nil {
		return nil, err
	}
	return func() (time.Duration, error) {
		total, err := processCPU(postmaster)
		if err != nil {
			return 0, err
		}
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return 0, err
		}
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if pp, err := parentPID(pid); err == nil && pp == postmaster {
				if c, err := processCPU(pid); err == nil {
					total += c
				}
			}
		}
		return total, nil
	}, nil
}

// parentPID is field 4 of /proc/PID/stat.
func parentPID(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if i < 0 || len(f) < 2 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return strconv.Atoi(f[1])
}
