#!/bin/sh
# Smoke test for examples/echo_server: nc (one connection, then five at
# once) and examples/echo_client send lines, one of them 100 KB long, and
# get back exactly what they sent; SIGTERM with a client still connected
# ends the server with status 0.
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
pass "nc, five nc at once and echo_client got their bytes back; SIGTERM gave status 0"
