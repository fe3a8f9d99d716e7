#!/bin/sh
# Smoke test for examples/gather: task 2 (1 s) completes before task 1
# (2 s), the results come back in argument order, in about 2 s in all.
. "$(dirname "$0")/lib.sh"

run_example "$1"
expect_lines <<'END'
Task 1 started
Task 2 started
Task 2 completed
Task 1 completed
Results: ['Result 1', 'Result 2']
END
expect_count 'Task 1 completed' 1
expect_count 'Task 2 completed' 1
grep -q '^Gathered in [0-9.]* seconds$' "$OUT" || fail 'no "Gathered in N seconds" line'
expect_elapsed 1.5 4.5
pass
