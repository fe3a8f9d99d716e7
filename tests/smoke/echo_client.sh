#!/bin/sh
# Smoke test for examples/echo_client, against examples/echo_server: lines
# piped in come back exactly, also from a file and many at once; a line is
# printed as soon as it is echoed, before the input ends; the client exits
# 0 after the server closes, 1 when it cannot connect, 2 on a bad command
# line, 143 on SIGTERM.
. "$(dirname "$0")/lib.sh"

CLIENT=$1
[ -x "$CLIENT" ] || fail "not an executable: $CLIENT"
SERVER=$(dirname "$CLIENT")/echo_server
[ -x "$SERVER" ] || fail "no echo_server next to $CLIENT"

CLIENT_PID=
start_server "$SERVER" 0
trap 'kill "$SERVER_PID" $CLIENT_PID 2>/dev/null; rm -f "$_tmp".*' EXIT

# run_client pipe|file INPUT OUTPUT: the client reads INPUT through a pipe
# or as a file; it must exit 0 with nothing on stderr.
run_client() {
    if [ "$1" = pipe ]; then
        cat "$2" | bounded "$CLIENT_LIMIT" "$CLIENT" 127.0.0.1 "$PORT" >"$3" 2>"$_tmp.cerr"
    else
        bounded "$CLIENT_LIMIT" "$CLIENT" 127.0.0.1 "$PORT" <"$2" >"$3" 2>"$_tmp.cerr"
    fi || fail "echo_client exited with status $?$(why $?): $(cat "$_tmp.cerr")"
    [ ! -s "$_tmp.cerr" ] || fail "echo_client wrote to stderr: $(cat "$_tmp.cerr")"
}

printf 'one\ntwo\n\nthree  four\n' >"$_tmp.in1"
run_client pipe "$_tmp.in1" "$_tmp.out1"
cmp -s "$_tmp.in1" "$_tmp.out1" || fail "piped lines: got $(cat "$_tmp.out1")"

awk 'BEGIN { for (i = 0; i < 20000; i++) print "line " i; printf "last, no newline" }' >"$_tmp.in2"
run_client file "$_tmp.in2" "$_tmp.out2"
cmp -s "$_tmp.in2" "$_tmp.out2" || fail "20,000 lines from a file did not come back as sent"
run_client pipe "$_tmp.in2" "$_tmp.out3"
cmp -s "$_tmp.in2" "$_tmp.out3" || fail "20,000 lines from a pipe did not come back as sent"
run_client file /dev/null "$_tmp.out4"
[ ! -s "$_tmp.out4" ] || fail "no input, yet output"

# Interactive use: each line is echoed while the input is still open. In
# the background, timeout itself: $! is then timeout's pid, and timeout
# passes the signals it gets on to the client.
mkfifo "$_tmp.fifo" || fail "mkfifo failed"
timeout --foreground -k 2 "$CLIENT_LIMIT" "$CLIENT" 127.0.0.1 "$PORT" <"$_tmp.fifo" >"$_tmp.out5" 2>"$_tmp.cerr" &
CLIENT_PID=$!
exec 3>"$_tmp.fifo"
for line in first second; do
    echo "$line" >&3
    i=0
    until grep -qx "$line" "$_tmp.out5"; do
        i=$((i + 1))
        [ "$i" -le 100 ] || fail "\"$line\" was not echoed within 5 s"
        sleep 0.05
    done
done
exec 3>&-
wait "$CLIENT_PID" || fail "echo_client exited with status $?$(why $?) at the end of its input"
CLIENT_PID=
printf 'first\nsecond\n' | cmp -s - "$_tmp.out5" || fail "interactive: got $(cat "$_tmp.out5")"

# SIGTERM while connected: status 128 + 15 (timeout passes the signal on,
# and ends as the client did).
timeout --foreground -k 2 "$CLIENT_LIMIT" "$CLIENT" 127.0.0.1 "$PORT" <"$_tmp.fifo" >"$_tmp.out6" 2>"$_tmp.cerr" &
CLIENT_PID=$!
exec 3>"$_tmp.fifo"
echo ping >&3
i=0
until grep -qx ping "$_tmp.out6"; do
    i=$((i + 1))
    [ "$i" -le 100 ] || fail "ping was not echoed within 5 s"
    sleep 0.05
done
kill -TERM "$CLIENT_PID"
wait "$CLIENT_PID"
status=$?
CLIENT_PID=
exec 3>&-
[ "$status" -eq 143 ] || fail "SIGTERM should give status 143, got $status$(why $status)"

bounded "$CLIENT_LIMIT" "$CLIENT" 127.0.0.1 2>/dev/null
status=$?
[ $status -eq 2 ] || fail "a missing port should give status 2, got $status$(why $status)"
bounded "$CLIENT_LIMIT" "$CLIENT" 127.0.0.1 http 2>/dev/null
status=$?
[ $status -eq 2 ] || fail "a port that is not a number should give status 2, got $status$(why $status)"

stop_server
[ ! -s "$ERR" ] || fail "echo_server wrote to stderr"
bounded "$CLIENT_LIMIT" "$CLIENT" 127.0.0.1 "$PORT" </dev/null >/dev/null 2>"$_tmp.cerr"
status=$?
[ $status -eq 1 ] || fail "connecting to a closed port should give status 1, got $status$(why $status)"
grep -q 'cannot connect' "$_tmp.cerr" || fail "connecting to a closed port: no clear message"
pass "echoed lines as sent, from pipes, a file and a FIFO; exit statuses 0, 1, 2, 143"
