#!/bin/sh
# Smoke test for examples/producer_consumer: 30 items through a queue of 5,
# every one consumed once, totals right.
. "$(dirname "$0")/lib.sh"

run_example "$1"
expect_lines <<'END'
produced 30 items, consumed 30 items
sum of items: 6165 (expected 6165)
END
n=$(grep -c '^consumer [0-9]: got [0-9]*$' "$OUT")
[ "$n" -eq 30 ] || fail "expected 30 'got' lines, saw $n"
for p in 1 2 3; do
    for i in 1 2 3 4 5 6 7 8 9 10; do
        item=$((p * 100 + i))
        c=$(grep -c "^consumer [0-9]: got $item\$" "$OUT")
        [ "$c" -eq 1 ] || fail "item $item consumed $c times"
    done
done
# The queue never holds more than its 5 items.
awk '/queue size/ { gsub(/[()]/, ""); if ($NF > 5) bad = 1 } END { exit bad }' "$OUT" ||
    fail "queue size above 5"
expect_elapsed 0.2 5.0
pass
