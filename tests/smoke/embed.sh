#!/bin/sh
# Smoke test for examples/embed, on each backend (epoll where there is one,
# and poll, whose loop has no fd to watch): the demo, with two lines on
# stdin, must hand the program's lines and its three ticks through the echo
# server in order, log twice from a task, stop the loop, close it and exit
# 0 within its time, its own loop sleeping in poll() rather than spinning;
# then `--serve 0` must echo what examples/echo_client sends and stop with
# status 0 on SIGINT (epoll) or SIGTERM (poll).
. "$(dirname "$0")/lib.sh"

CLIENT=$(dirname "$1")/echo_client
[ -x "$CLIENT" ] || fail "no echo_client next to $1"

printf 'one\ntwo\n' >"$_tmp.in"

# The demo's lines, in three sequences whose lines may interleave.
check_demo() {
    expect_lines <<'END'
client: 'one' came back
client: 'two' came back
client: 'message 1' came back
client: 'message 2' came back
client: 'message 3' came back
END
    expect_lines <<'END'
host: tick 1, hands 'message 1' to the asyncio side
client: 'message 1' came back
host: tick 2, hands 'message 2' to the asyncio side
client: 'message 2' came back
host: tick 3, hands 'message 3' to the asyncio side
client: 'message 3' came back
asyncio: done (ok), stopping the loop
host: the loop is closed
END
    expect_lines <<'END'
asyncio: slept 0.2 s (1 of 2)
asyncio: slept 0.2 s (2 of 2)
asyncio: done (ok), stopping the loop
END
    expect_count 'host: end of stdin after 2 line(s)' 1
    for m in one two 'message 1' 'message 2' 'message 3'; do
        expect_count "client: '$m' came back" 1
    done
    expect_count 'host: tick 4, hands '"'message 4'"' to the asyncio side' 0
    [ ! -s "$ERR" ] || fail "the demo wrote to stderr"
    expect_elapsed 0.35 5.0
}

# stats_field WORD: the number before WORD in the line of the host's counts
stats_field() {
    sed -n 's/^host: the loop stopped after \([0-9]*\) polls, \([0-9]*\) iterations of it (\([0-9]*\) woken by its fd), \([0-9]*\) ticks of its own timer$/\1 \2 \3 \4/p' "$OUT" |
        awk -v w="$1" '{ print w == "polls" ? $1 : w == "runs" ? $2 : w == "fd" ? $3 : $4 }'
}

for b in $BACKENDS; do
    export ASYNCIO_BACKEND="$b"
    # -- the demo --------------------------------------------------------------
    run_example "$1" <"$_tmp.in"
    expect_count "asyncio: the loop's backend is $b" 1
    check_demo
    polls=$(stats_field polls)
    [ -n "$polls" ] || fail "no line with the host's counts"
    [ "$(stats_field ticks)" -eq 3 ] || fail "expected 3 ticks of the host's timer"
    if [ "$b" = poll ]; then
        expect_count "host: the loop's backend has no fd to watch: running it every 5 ms at least" 1
        [ "$(stats_field fd)" -eq 0 ] || fail "woken by an fd it does not watch"
        # about 0.4 s in 5 ms steps, and the ticks and the echoes
        [ "$polls" -le 400 ] || fail "$polls polls in the demo: the host's loop spins"
    else
        expect_count "host: polling the loop's fd beside its own timer" 1
        [ "$(stats_field fd)" -gt 0 ] || fail "never woken by the loop's fd"
        [ "$polls" -le 80 ] || fail "$polls polls in the demo: the host's loop spins"
    fi
    DEMO_ELAPSED=$ELAPSED

    # -- --serve, then a signal ------------------------------------------------
    sig=TERM signum=15
    [ "$b" = epoll ] && sig=INT signum=2
    start_server "$1" --serve 0
    bounded "$CLIENT_LIMIT" "$CLIENT" 127.0.0.1 "$PORT" <"$_tmp.in" >"$_tmp.ec" 2>"$_tmp.ecerr" ||
        fail "echo_client exited with status $?$(why $?): $(cat "$_tmp.ecerr")"
    cmp -s "$_tmp.in" "$_tmp.ec" || fail "what came back through echo_client differs from what was sent"
    stop_server "$sig"
    expect_lines <<END
asyncio: the loop's backend is $b
asyncio: signal $signum, closing the server
asyncio: done (ok), stopping the loop
host: the loop is closed
END
    [ ! -s "$ERR" ] || fail "the server wrote to stderr"
    echo "$b: demo in $DEMO_ELAPSED s ($polls polls), --serve echoed and stopped on SIG$sig"
done
unset ASYNCIO_BACKEND
ELAPSED=-
pass "the demo and --serve on $BACKENDS"
