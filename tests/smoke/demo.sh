#!/bin/sh
# Smoke test for examples/demo: the one-screen tour, about 2 s. Every line
# is "[S.SSs] TASK  MESSAGE"; we check the "TASK MESSAGE" parts in order.
. "$(dirname "$0")/lib.sh"

run_example "$1"

# Drop the time stamps, squeeze the column padding.
sed 's/^\[[0-9]*\.[0-9][0-9]s\] *//; s/  */ /g' "$OUT" >"$_tmp.text"
grep -q '^main libasyncio [0-9]*\.[0-9]*\.[0-9]*, [a-z]* backend$' "$_tmp.text" ||
    fail 'no "main libasyncio X.Y.Z, NAME backend" line'
expect_lines "$_tmp.text" <<'END'
ping round 1
pong round 1
ping round 2
pong round 2
ping round 3
pong round 3
fetch-3 got cherry after 0.25 s
fetch-2 got banana after 0.50 s
fetch-1 got apple after 1.00 s
main gather -> [apple, banana, cherry]
slow cancelled, cleaning up
main wait_for(slow, 0.5) -> -ETIMEDOUT
ticker tick 1
main cancel(ticker) -> 1
ticker cancelled, cleaning up
main await(ticker) -> -ECANCELED
main done, 1 task left (this one)
END
expect_count 'slow cancelled, cleaning up' 1 "$_tmp.text"
expect_count 'ticker cancelled, cleaning up' 1 "$_tmp.text"

# The time stamps the demo prints: gather ends at ~1 s, wait_for at ~1.5 s,
# the whole tour at ~2 s.
stamp() { sed -n "s/^\[\([0-9.]*\)s\] *$1\$/\1/p" "$OUT"; }
in_range 'the gather line' "$(stamp 'main *gather -> .*')" 0.9 2.0
in_range 'the wait_for line' "$(stamp 'main *wait_for.*')" 1.4 2.6
in_range 'the final line' "$(stamp 'main *done, .*')" 1.8 3.5
expect_elapsed 1.5 4.5
pass
