#!/bin/sh
# Smoke test for examples/echo_server: nc (one connection, then five at
# once) and examples/echo_client send lines, one of them 100 KB long, and
# get back exactly what they sent; SIGTERM with a client still connected
# ends the server with status 0.
# With --workers 2 and 4: 50 connections one after another all echoed,
# spread over more than one worker (the counts it prints at exit); SIGTERM
# (2) and SIGINT (4) with four clients still connected close them and end
# it with status 0; so does SIGINT while 64 workers start; every start
# failure for want of fds (the main thread's or a worker's) ends it with
# status 1 and a message; bad --workers values are usage errors.
# With --max-connections 3 (one worker, then two sharing the count): a
# fourth connection is closed at once, the three go on echoing, and once
# one has left a new one is served.
. "$(dirname "$0")/lib.sh"

need nc
CLIENT=$(dirname "$1")/echo_client
[ -x "$CLIENT" ] || fail "no echo_client next to $1"

IN=$_tmp.in
awk 'BEGIN {
    print "hello"
    print ""
    print "tabs\tand  spaces "
    for (i = 0; i < 10000; i++) printf "%010d", i   # a 100 KB line
    print ""
    for (i = 0; i < 1000; i++) print "line " i
    printf "no newline at the end"
}' >"$IN"

NC_PIDS=
start_server "$1" 0
trap 'kill "$SERVER_PID" $NC_PIDS 2>/dev/null; rm -f "$_tmp".*' EXIT

# echo_nc OUTFILE: send $IN with nc (-N: half-close at the end of the
# input, then read until the server closes) and keep what comes back.
echo_nc() {
    bounded "$CLIENT_LIMIT" nc -N -w 10 127.0.0.1 "$PORT" <"$IN" >"$1"
}

echo_nc "$_tmp.nc" || fail "nc exited with status $?$(why $?)"
cmp -s "$IN" "$_tmp.nc" || fail "what came back through nc differs from what was sent"

# In the background, timeout itself (not a function's subshell), so that
# the pid killed on the way out is timeout's, which passes the signal on.
for i in 1 2 3 4 5; do
    timeout --foreground -k 2 "$CLIENT_LIMIT" nc -N -w 10 127.0.0.1 "$PORT" <"$IN" >"$_tmp.nc$i" &
    NC_PIDS="$NC_PIDS $!"
done
for p in $NC_PIDS; do
    wait "$p" || fail "one of five concurrent nc exited with status $?$(why $?)"
done
NC_PIDS=
for i in 1 2 3 4 5; do
    cmp -s "$IN" "$_tmp.nc$i" || fail "connection $i of five: the echo differs from what was sent"
done

bounded "$CLIENT_LIMIT" "$CLIENT" 127.0.0.1 "$PORT" <"$IN" >"$_tmp.ec" 2>"$_tmp.ecerr" ||
    fail "echo_client exited with status $?$(why $?): $(cat "$_tmp.ecerr")"
cmp -s "$IN" "$_tmp.ec" || fail "what came back through echo_client differs from what was sent"

# A client that stays connected (its input is a FIFO we hold open) when
# the server is told to stop.
mkfifo "$_tmp.fifo" || fail "mkfifo failed"
timeout --foreground -k 2 "$CLIENT_LIMIT" nc -N -w 10 127.0.0.1 "$PORT" <"$_tmp.fifo" >"$_tmp.idle" &
NC_PIDS=$!
exec 3>"$_tmp.fifo"
echo ping >&3
i=0
until grep -qx ping "$_tmp.idle"; do
    i=$((i + 1))
    [ "$i" -le 100 ] || fail "no echo of ping after 5 s"
    sleep 0.05
done
stop_server
exec 3>&- # the end of its input: nc exits, the server having closed
wait "$NC_PIDS"
_st=$?
[ "$_st" -lt 124 ] || fail "the idle nc did not end when the server stopped: status $_st$(why $_st)"
NC_PIDS=
[ ! -s "$ERR" ] || fail "the server wrote to stderr"
! grep -q '^worker ' "$OUT" || fail "one worker: a report of workers at exit"

# ---- --workers N: a loop per thread, all on one port -----------------------
BIN=$1
for v in 0 65 -1 x 2x ''; do
    expect_usage_error "$BIN" 0 --workers "$v"
done
expect_usage_error "$BIN" 0 --workers

# workers_run N SIGNAL: 50 connections one after another, each echoing a
# line of its own, then four echo_client held open (their input is a FIFO
# we keep open) that the server must close when SIGNAL stops it.
workers_run() {
    start_server "$BIN" 0 --workers "$1"
    trap 'kill "$SERVER_PID" $NC_PIDS 2>/dev/null; rm -f "$_tmp".*' EXIT
    _t=$(server_threads)
    [ -z "$_t" ] || [ "$_t" -ge "$1" ] || fail "--workers $1: $_t thread(s)"
    i=0
    while [ "$i" -lt 50 ]; do
        printf 'hello %d\n' "$i" | bounded "$CLIENT_LIMIT" nc -N -w 5 127.0.0.1 "$PORT" >"$_tmp.w" ||
            fail "--workers $1: nc exited with status $?$(why $?)"
        [ "$(cat "$_tmp.w")" = "hello $i" ] || fail "--workers $1: connection $i got '$(cat "$_tmp.w")'"
        i=$((i + 1))
    done
    NC_PIDS=
    for k in 3 4 5 6; do
        mkfifo "$_tmp.fifo$k" || fail "mkfifo failed"
        timeout --foreground -k 2 "$CLIENT_LIMIT" "$CLIENT" 127.0.0.1 "$PORT" \
            <"$_tmp.fifo$k" >"$_tmp.idle$k" 2>&1 &
        NC_PIDS="$NC_PIDS $!"
    done
    exec 3>"$_tmp.fifo3" 4>"$_tmp.fifo4" 5>"$_tmp.fifo5" 6>"$_tmp.fifo6"
    for k in 3 4 5 6; do
        echo "ping $k" >&"$k"
    done
    i=0
    for k in 3 4 5 6; do
        until grep -qx "ping $k" "$_tmp.idle$k"; do
            i=$((i + 1))
            [ "$i" -le 200 ] || fail "--workers $1: no echo of ping $k after 10 s"
            sleep 0.05
        done
    done
    stop_server "$2"
    # Their input still open: they end only because the server closed them.
    for p in $NC_PIDS; do
        wait "$p" || fail "--workers $1: a connected echo_client exited with status $?$(why $?) at the stop"
    done
    exec 3>&- 4>&- 5>&- 6>&-
    NC_PIDS=
    rm -f "$_tmp".fifo*
    [ ! -s "$ERR" ] || fail "--workers $1: the server wrote to stderr"
    expect_workers "$1" 54
}
workers_run 2 TERM
workers_run 4 INT

expect_stop_while_starting INT "$BIN" 0 --workers 64
[ ! -s "$ERR" ] || fail "--workers 64, stopped while starting: the server wrote to stderr"

expect_clean_start_failures "$BIN" 0 --workers 4

# ---- --max-connections N ----------------------------------------------------
for v in 0 -1 x 2x 1000001 ''; do
    expect_usage_error "$BIN" 0 --max-connections "$v"
done

# limit_run WORKERS: with --max-connections 3 (over all the workers), three
# nc held open (their input a FIFO we keep open) echo; a fourth (nc -d: it
# sends nothing and ends at the server's end) is closed at once with
# nothing sent, and the three still echo; once one has left, a new one is
# served; SIGTERM with two still connected gives status 0.
limit_run() {
    _w="--max-connections 3 --workers $1"
    start_server "$BIN" 0 --max-connections 3 --workers "$1"
    trap 'kill "$SERVER_PID" $NC_PIDS 2>/dev/null; rm -f "$_tmp".*' EXIT
    NC_PIDS=
    for k in 3 4 5; do
        mkfifo "$_tmp.fifo$k" || fail "mkfifo failed"
        timeout --foreground -k 2 "$CLIENT_LIMIT" nc -N -w 10 127.0.0.1 "$PORT" \
            <"$_tmp.fifo$k" >"$_tmp.lim$k" 3>&- 4>&- 5>&- &
        NC_PIDS="$NC_PIDS $!"
        eval "P$k=\$!; exec $k>\"\$_tmp.fifo$k\""
    done
    expect_echoes "$_w" ping
    _got=$(bounded 5 nc -d 127.0.0.1 "$PORT" 3>&- 4>&- 5>&-) ||
        fail "$_w: a 4th connection was not closed: nc exited with status $?$(why $?)"
    [ -z "$_got" ] || fail "$_w: a 4th connection got '$_got'"
    expect_echoes "$_w" pong
    exec 3>&- # the first leaves: nc -N half-closes, the server closes
    wait "$P3" || fail "$_w: nc exited with status $?$(why $?) as it left"
    _got=$(echo again | bounded "$CLIENT_LIMIT" nc -N -w 5 127.0.0.1 "$PORT" 4>&- 5>&-)
    [ "$_got" = again ] || fail "$_w: a connection after one left got '$_got'"
    stop_server
    exec 4>&- 5>&-
    for p in "$P4" "$P5"; do
        wait "$p" || fail "$_w: a connected nc exited with status $?$(why $?) at the stop"
    done
    NC_PIDS=
    rm -f "$_tmp".fifo*
    [ ! -s "$ERR" ] || fail "$_w: the server wrote to stderr"
    # The refused connection was not counted as served.
    _n=$(awk '/^worker / { n += $3 } END { print n + 0 }' "$OUT")
    [ "$1" -eq 1 ] || [ "$_n" -eq 4 ] || fail "$_w: the workers served $_n connections, expected 4"
}
# expect_echoes WHAT WORD: each of the three nc on fds 3 to 5 gets "WORD K"
# back.
expect_echoes() {
    for k in 3 4 5; do
        echo "$2 $k" >&"$k"
    done
    i=0
    for k in 3 4 5; do
        until grep -qx "$2 $k" "$_tmp.lim$k"; do
            i=$((i + 1))
            [ "$i" -le 200 ] || fail "$1: no echo of '$2 $k' after 10 s"
            sleep 0.05
        done
    done
}
limit_run 1
limit_run 2

pass "nc, five nc at once and echo_client got their bytes back; SIGTERM gave status 0;" \
    "--workers 2 and 4 spread 54 connections, stopped by SIGTERM and SIGINT;" \
    "SIGINT as 64 workers start${EARLY:+ (before the ready line: $EARLY)}, start failures, usage errors;" \
    "--max-connections 3 (1 and 2 workers): a 4th closed at once, the 3 undisturbed," \
    "a new one served after one left"
