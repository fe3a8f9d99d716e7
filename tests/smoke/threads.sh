#!/bin/sh
# Smoke test for examples/threads: four blocking calls at once while a
# ticker task runs (the loop is not blocked), a call given up on whose late
# result is released, callbacks from a thread, and a thread that asks a
# task of the loop for an answer.
. "$(dirname "$0")/lib.sh"

run_example "$1"
expect_lines <<'END'
counting primes below 200000 in 4 blocking calls at once
tick: the loop is free while the threads work
primes below 200000: 17984
slow lookup: gave up waiting (Connection timed out)
slow lookup: finished anyway, its result (42) released
from the thread: callback 1 ran in the loop
from the thread: callback 2 ran in the loop
from the thread: callback 3 ran in the loop
the thread asked a task of the loop and got 42
END
expect_elapsed 0.7 5.0
pass
