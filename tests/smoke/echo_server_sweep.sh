#!/bin/sh
# Smoke test for echo_server --stack-sweep (issue 25): 2,000 connections
# held open, each having echoed a byte (tests/smoke/hold_connections.py);
# within a few periods the server's resident memory plus page tables
# (VmRSS + VmPTE) falls by at least 2 KiB a connection, as the handlers'
# stacks are given back; every connection then echoes again (its handler's
# stack put back), and SIGTERM ends the server with status 0. A bad
# --stack-sweep value is a usage error.
. "$(dirname "$0")/lib.sh"

PY=${PYTHON:-python3}
need "$PY"
[ -r /proc/self/status ] || { echo "SKIP ($NAME): needs /proc (Linux)"; exit 77; }

for v in 0 -1 x 1x 3601 ''; do
    expect_usage_error "$1" 0 --stack-sweep "$v"
done
expect_usage_error "$1" 0 --stack-sweep

# Where the sweep is not available (Valgrind, TSan), the server says so.
timeout --foreground -k 2 "$CLIENT_LIMIT" "$1" 0 --stack-sweep 1 >"$_tmp.na" 2>&1 </dev/null &
_p=$!
sleep 0.3
if grep -q 'not available' "$_tmp.na"; then
    wait "$_p"
    echo "SKIP ($NAME): the stack sweep is not available in this build"
    exit 77
fi
kill "$_p" 2>/dev/null
wait "$_p" 2>/dev/null

N=2000
ulimit -S -n $((N + 200)) 2>/dev/null || N=800
PERIOD=2

HOLD_PID=
start_server "$1" 0 --stack-sweep "$PERIOD"
trap 'kill "$SERVER_PID" $HOLD_PID 2>/dev/null; rm -f "$_tmp".*' EXIT
SRV=$(server_pid) || exit 1

# mem: the server's VmRSS + VmPTE in KiB.
mem() {
    awk '/^VmRSS:|^VmPTE:/ { k += $2 } END { print k + 0 }' "/proc/$SRV/status"
}

hold_start "$PORT" "$N"
hold_line "held $N" 20
# Before the second pass (the first only marks what it finds waiting).
before=$(mem)
want=$((N * 2))
_i=0
while [ $((before - $(mem))) -lt "$want" ]; do
    _i=$((_i + 1))
    [ "$_i" -le 400 ] || fail "the server's memory fell by $((before - $(mem))) KiB in 20 s, expected $want KiB or more for $N idle connections (from $before KiB)"
    sleep 0.05
done
after=$(mem)

echo echo >&3
hold_line "echoed $N" 20
hold_end
stop_server
[ ! -s "$ERR" ] || fail "the server wrote to stderr: $(head -n 3 "$ERR")"

pass "$N idle connections: the server's memory fell from $before to $after KiB" \
    "($(( (before - after) * 1024 / N )) bytes a connection) as their stacks were swept;" \
    "all echoed again after; SIGTERM gave status 0; bad values refused"
