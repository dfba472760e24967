//go:build !unix

package store_test

import "time"

// processCPU is not measured on this platform (the benchmark then reports 0 CPU).
func processCPU() time.Duration { return 0 }
