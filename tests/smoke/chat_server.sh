#!/bin/sh
# Smoke test for examples/chat_server.
# With nc as the clients, on a server with --max-connections 3: three
# join, two of them talk, and each line reaches the other two but not its
# sender; joins and leaves are announced; a fourth is told "*** server
# full" and closed, unnoticed by the others; once one has left a new one
# is let in. SIGTERM with clients connected gives status 0.
# With Python asyncio stream clients (chat_server_clients.py, run with
# ${PYTHON:-python3}): back-pressure. One client sends 20 MiB of lines
# while five read as fast as they can: none is dropped, each gets every
# line, in order (the server had dropped them all before it held talkers
# back). Then, with --grace 1, a client that never reads is dropped after
# the grace period while a talker floods and two others chat: the talker
# waits for it about that long, then goes on; the chatters lose nothing.
# Bad --grace and --max-connections values are usage errors.
. "$(dirname "$0")/lib.sh"

need nc
BIN=$1
PY=${PYTHON:-python3}
CLIENTS=$(dirname "$0")/chat_server_clients.py
PIDS=
start_server "$BIN" 0 --max-connections 3
trap 'kill "$SERVER_PID" $PIDS 2>/dev/null; rm -f "$_tmp".*' EXIT

# wait_until WHAT CMD...: retry CMD for up to 5 s; fail with WHAT if it
# never succeeds.
wait_until() {
    _what=$1
    shift
    _n=0
    until "$@"; do
        _n=$((_n + 1))
        [ "$_n" -le 100 ] || fail "$_what within 5 s"
        sleep 0.05
    done
}

# wait_line FILE LINE: until FILE has the whole line LINE.
has_line() { grep -qxF -- "$2" "$1" 2>/dev/null; }
wait_line() { wait_until "no line \"$2\" in $(basename "$1")" has_line "$1" "$2"; }

# count FILE REGEX: how many lines of FILE match REGEX.
count() { grep -c -- "$2" "$1" 2>/dev/null; }
has_count() { [ "$(count "$1" "$2")" -eq "$3" ]; }

# join N FD: client N talks through nc, its input the FIFO $_tmp.inN held
# open by this shell as FD, its output in $_tmp.outN; sets CNAME to the
# name the server gave it. nc must not inherit our other FIFO fds, or
# closing one would not end its reader's input. Each nc runs under
# timeout(1), whose pid goes in PIDS (it passes a signal on to nc).
join() {
    mkfifo "$_tmp.in$1" || fail "mkfifo failed"
    timeout --foreground -k 2 "$CLIENT_LIMIT" nc -N -w 20 127.0.0.1 "$PORT" <"$_tmp.in$1" >"$_tmp.out$1" 3>&- 4>&- 5>&- 6>&- &
    PIDS="$PIDS $!"
    eval "exec $2>\"\$_tmp.in$1\""
    wait_until "client $1 was not greeted" has_count "$_tmp.out$1" '^\*\*\* you are ' 1
    CNAME=$(sed -n 's/^\*\*\* you are \(.*\), [0-9]* others* here$/\1/p' "$_tmp.out$1")
    [ -n "$CNAME" ] || fail "client $1: no name in $(cat "$_tmp.out$1")"
}

# refused: one more client (nc -d: it sends nothing and ends at the
# server's end) is told the room is full and closed at once.
refused() {
    _got=$(bounded 5 nc -d 127.0.0.1 "$PORT" 3>&- 4>&- 5>&- 6>&-) ||
        fail "a client over --max-connections: nc exited with status $?$(why $?) (not closed?)"
    [ "$_got" = "*** server full" ] || fail "a client over --max-connections got '$_got'"
}

join 1 3
A=$CNAME
join 2 4
B=$CNAME
join 3 5
C=$CNAME
wait_line "$_tmp.out1" "*** $C joined"
wait_line "$_tmp.out2" "*** $C joined"
refused

echo "hello from A" >&3
wait_line "$_tmp.out2" "[$A] hello from A"
wait_line "$_tmp.out3" "[$A] hello from A"
printf 'hi from B\nB again' >&4 # the last line has no newline yet
wait_line "$_tmp.out1" "[$B] hi from B"
wait_line "$_tmp.out3" "[$B] hi from B"
exec 4>&- # B leaves: its last line is passed on first
wait_line "$_tmp.out1" "*** $B left"
wait_line "$_tmp.out3" "*** $B left"
join 4 6 # room again for a third
D=$CNAME
wait_line "$_tmp.out1" "*** $D joined"
wait_line "$_tmp.out3" "*** $D joined"
refused
echo "hello from C" >&5
wait_line "$_tmp.out4" "[$C] hello from C"
wait_line "$_tmp.out1" "[$C] hello from C"

cat >"$_tmp.want1" <<END
*** you are $A, 0 others here
*** $B joined
*** $C joined
[$B] hi from B
[$B] B again
*** $B left
*** $D joined
[$C] hello from C
END
cat >"$_tmp.want2" <<END
*** you are $B, 1 other here
*** $C joined
[$A] hello from A
END
cat >"$_tmp.want3" <<END
*** you are $C, 2 others here
[$A] hello from A
[$B] hi from B
[$B] B again
*** $B left
*** $D joined
END
cat >"$_tmp.want4" <<END
*** you are $D, 2 others here
[$C] hello from C
END
for i in 1 2 3 4; do
    cmp -s "$_tmp.want$i" "$_tmp.out$i" ||
        fail "client $i got:$(printf '\n'; cat "$_tmp.out$i")
expected:$(printf '\n'; cat "$_tmp.want$i")"
done

stop_server # with clients 1, 3 and 4 still connected
exec 3>&- 5>&- 6>&-
for p in $PIDS; do
    wait "$p"
    _st=$?
    [ "$_st" -lt 124 ] || fail "an nc did not end when the server stopped: status $_st$(why $_st)"
done
PIDS=
[ ! -s "$ERR" ] || fail "the server wrote to stderr"

for v in 0 -1 x 1e x1 nan inf ''; do
    expect_usage_error "$BIN" 0 --grace "$v"
done
for v in 0 -1 x 2x 1000001 ''; do
    expect_usage_error "$BIN" 0 --max-connections "$v"
done

# ---- back-pressure, with Python asyncio clients -----------------------------
if ! "$PY" -c 'import asyncio' 2>/dev/null; then
    echo "SKIP ($NAME): the joins, lines and limits passed; no $PY for the back-pressure tests"
    exit 77
fi

# py WHAT ARGS...: run chat_server_clients.py; its line of figures is shown.
py() {
    bounded "$RUN_LIMIT" "$PY" "$CLIENTS" "$@" >"$_tmp.py" 2>&1
    _st=$?
    [ "$_st" -eq 0 ] || fail "$(cat "$_tmp.py") (status $_st$(why $_st))"
    cat "$_tmp.py"
}

start_server "$BIN" 0 # the default grace
py fanout "$PORT" 5 20
stop_server
[ ! -s "$ERR" ] || fail "fanout: the server wrote to stderr"

start_server "$BIN" 0 --grace 1
py stuck "$PORT" 1
stop_server
[ ! -s "$ERR" ] || fail "stuck: the server wrote to stderr"

pass "lines reached the others only, joins and leaves announced, the 4th client refused;" \
    "20 MiB reached 5 fast readers, none dropped; a reader that never reads dropped after" \
    "the grace period; SIGTERM gave status 0"
