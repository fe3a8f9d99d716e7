#!/bin/sh
# Smoke test for examples/greetings: Bob (1 s), Alice (2 s), Charlie (3 s),
# gathered in about 3 s, not 6.
. "$(dirname "$0")/lib.sh"

run_example "$1"
expect_lines <<'END'
Hello, Bob after 1 seconds!
Hello, Alice after 2 seconds!
Hello, Charlie after 3 seconds!
END
expect_count 'Hello, Bob after 1 seconds!' 1
expect_count 'Hello, Alice after 2 seconds!' 1
expect_count 'Hello, Charlie after 3 seconds!' 1
grep -q '^All greeted in [0-9.]* seconds$' "$OUT" || fail 'no "All greeted in N seconds" line'
expect_elapsed 2.5 5.5
pass
