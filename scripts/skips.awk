# skips.awk: from a `go test -v` log, print every skipped test with the last line it logged (the reason
# t.Skip gave), one test a line: "TestName: file.go:NN: reason". Used by scripts/test.sh and faults.sh.
/^=== (RUN|CONT|NAME|PAUSE) / { cur = $3; next }
/^ *--- SKIP: / { name = $3; print name ": " (why[name] != "" ? why[name] : "(no reason logged)"); delete why[name]; next }
/^ *--- (PASS|FAIL): / { delete why[$3]; next }
/^    / && cur != "" { line = $0; sub(/^ +/, "", line); why[cur] = line }  # a skip logs its reason last
