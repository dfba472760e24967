package harness

import "testing"

func TestUsesIndexes(t *testing.T) {
	indexed := "Limit (actual time=0.5..0.5 rows=0 loops=1)\n  ->  Append\n        ->  Index Scan Backward using x_idx on p1 (actual rows=0 loops=1)\n              Index Cond: (action = 'a'::text)\n              Buffers: shared hit=3\n        ->  Seq Scan on p2 (actual time=0.007..0.007 rows=0 loops=1)\nPlanning:\n  Buffers: shared hit=14"
	if !usesIndexes(indexed) {
		t.Error("a sequential scan of an empty partition counted against the plan")
	}
	scanned := "Limit\n  ->  Seq Scan on p1 (actual rows=5 loops=1)\n        Filter: (x = 1)\n        Buffers: shared hit=900\n  ->  Index Scan using i on p2\n        Buffers: shared hit=3"
	if usesIndexes(scanned) {
		t.Error("a sequential scan that read pages passed as an indexed plan")
	}
}
