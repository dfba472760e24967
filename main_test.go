package main

import (
	"runtime/debug"
	"testing"
)

// The provider collects garbage less often than Go's default unless GOGC says otherwise.
func TestRelaxGCUnlessAsked(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))

	t.Setenv("GOGC", "")
	relaxGCUnlessAsked()
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("GC target without GOGC = %d, want %d", got, gcPercent)
	}

	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150) // what the runtime does with GOGC=150 at start
	relaxGCUnlessAsked()
	if got := debug.SetGCPercent(100); got != 150 {
		t.Errorf("GC target with GOGC=150 = %d, want 150 (GOGC must win)", got)
	}
}
