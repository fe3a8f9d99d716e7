#!/bin/sh
# Smoke test for examples/cancel: the worker prints at 1, 2 and 3 s; main
# cancels it at 3.5 s (so there is no 4th message), and sees it cancelled.
. "$(dirname "$0")/lib.sh"

run_example "$1"
expect_lines <<'END'
Starting worker...
Message from worker
Message from worker
Message from worker
Cancelling the worker...
Worker: cancelled, cleaning up
The task has been canceled
END
expect_count 'Message from worker' 3
expect_nlines 7
expect_elapsed 3.0 6.5
pass
