#!/bin/sh
# Smoke test for examples/numbers_letters: 0 a 1 b ... 9 j, interleaved,
# with both tasks sleeping at once (about 10 s, not 20).
. "$(dirname "$0")/lib.sh"

run_example "$1"
expect_lines <<'END'
0
a
1
b
2
c
3
d
4
e
5
f
6
g
7
h
8
i
9
j
END
expect_nlines 20
expect_elapsed 9.0 15.0
pass
