#!/bin/sh
# Smoke test for examples/hello: "Hello", one second, "World".
. "$(dirname "$0")/lib.sh"

run_example "$1"
expect_lines <<'END'
Hello
World
END
expect_nlines 2
expect_elapsed 0.8 3.5
pass
