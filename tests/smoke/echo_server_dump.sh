#!/bin/sh
# Smoke test for the task dump on a busy server (issue 24): echo_server run
# with ASYNCIO_DUMP_SIGNAL=USR1 and ASYNCIO_DEBUG=1 holds 10,000 open
# connections (fewer where the hard limit of open files is lower, 500
# under ThreadSanitizer), each having echoed a byte
# (tests/smoke/hold_connections.py). SIGUSR1 then
# prints the tree of its tasks to stderr: the header, the main task, the
# accept task and one line for each connection's task, each waiting for its
# socket, with who made it and where; every connection still echoes after
# the dump, and SIGTERM ends the server with status 0.
. "$(dirname "$0")/lib.sh"

PY=${PYTHON:-python3}
need "$PY"
[ -r /proc/self/status ] || { echo "SKIP ($NAME): needs /proc (Linux)"; exit 77; }

N=10000
# Under ThreadSanitizer every task is a fiber its runtime counts as a
# thread, and gcc 12's stops at 8128: fewer there.
grep -q -a __tsan_init "$1" && N=500
_hard=$(ulimit -Hn)
if [ "$_hard" != unlimited ] && [ "$_hard" -lt $((N + 200)) ]; then
    N=$((_hard - 200))
    [ "$N" -ge 1000 ] || { echo "SKIP ($NAME): the hard limit of open files is $_hard"; exit 77; }
fi
ulimit -S -n $((N + 200)) || fail "cannot raise the limit of open files to $((N + 200))"

export ASYNCIO_DUMP_SIGNAL=USR1 ASYNCIO_DEBUG=1
HOLD_PID=
start_server "$1" 0 --max-connections $((N + 100))
trap 'kill "$SERVER_PID" $HOLD_PID 2>/dev/null; rm -f "$_tmp".*' EXIT
SRV=$(server_pid) || exit 1
hold_start "$PORT" "$N"
hold_line "held $N" 40
# (debug mode may report a slow step on a slow machine: nothing else)
! grep -v '^asyncio: Executing ' "$ERR" >/dev/null || fail "the server wrote to stderr: $(cat "$ERR")"

kill -USR1 "$SRV" || fail "could not signal the server"
# The dump is done when its last connection line is there: count them.
_i=0
while [ "$(grep -c 'Task "conn-[0-9]*"' "$ERR")" -lt "$N" ]; do
    _i=$((_i + 1))
    [ "$_i" -le 400 ] || fail "the dump has $(grep -c 'Task "conn-' "$ERR") connection tasks of $N after 20 s"
    sleep 0.05
done
sleep 0.2 # anything after the last line would be a fault
grep -qx "asyncio: the tasks of process $SRV, on signal [0-9]*:" "$ERR" ||
    fail "no header line in the dump: $(head -n 3 "$ERR")"
# Every line of the tree is a task: N connections, the main task, the
# accept task, nothing else.
_msg=$(awk -v n="$N" '
    /^asyncio: the tasks of process / { next }       # the header
    /^asyncio: Executing / { next }                  # a slow step, on a slow machine
    /Task "main" #1: waiting/ { main++; next }
    /Task "server-accept" #[0-9]+: waiting/ { acc++; next }
    /Task "conn-[0-9]+" #[0-9]+: waiting \(fd readable\), made by #[0-9]+ at / { conn++; next }
    { bad++; if (!first) first = $0 }
    END {
        if (main != 1) print "main task lines: " main + 0
        else if (acc < 1) print "no accept task"
        else if (conn != n) print "connection tasks waiting for input: " conn + 0 " of " n
        else if (bad) print bad " other lines, the first: " first
    }' "$ERR")
[ -z "$_msg" ] || fail "the dump: $_msg"

# The server goes on: every connection echoes again.
echo echo >&3
hold_line "echoed $N" 30
hold_end
_lines=$(grep -vc '^asyncio: Executing ' "$ERR")
stop_server
[ "$(grep -vc '^asyncio: Executing ' "$ERR")" -eq "$_lines" ] ||
    fail "the server wrote to stderr after the dump: $(tail -n 3 "$ERR")"

pass "$N connections held; SIGUSR1 printed a tree of $N connection tasks, the main and accept" \
    "tasks, each with its origin; all $N echoed again after it; SIGTERM gave status 0"
