#!/bin/sh
# Smoke test for examples/rate_limit: 10 requests, never more than 3 in
# flight.
. "$(dirname "$0")/lib.sh"

run_example "$1"
expect_lines <<'END'
request 1: started (in flight: 1)
request 2: started (in flight: 2)
request 3: started (in flight: 3)
all 10 requests done, at most 3 in flight (limit 3)
END
n=$(grep -c '^request [0-9]*: started' "$OUT")
[ "$n" -eq 10 ] || fail "expected 10 started lines, saw $n"
n=$(grep -c '^request [0-9]*: done$' "$OUT")
[ "$n" -eq 10 ] || fail "expected 10 done lines, saw $n"
grep -q 'in flight: [4-9]' "$OUT" && fail "more than 3 in flight"
expect_elapsed 0.2 5.0
pass
