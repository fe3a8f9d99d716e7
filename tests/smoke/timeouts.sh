#!/bin/sh
# Smoke test for examples/timeouts: the scope times the slow operation out
# at 0.5 s; in the group, B fails at about 0.8 s and A and C are cancelled.
. "$(dirname "$0")/lib.sh"

run_example "$1"
strip() { sed 's/^\[[0-9.]*s\] //' "$OUT"; }
strip > "$OUT.plain"
mv "$OUT.plain" "$OUT"
expect_lines <<'END'
slow operation: stopped (Operation canceled)
timeout: the operation took too long (Connection timed out)
worker A: started
worker B: started
worker C: started
worker B: failing with Input/output error
worker A: cancelled
worker C: cancelled
task group: Input/output error, 1 failure
END
expect_count 'slow operation: finished' 0
expect_count 'worker A: done' 0
expect_elapsed 0.7 3.0
pass
