#!/bin/sh
# Smoke test for examples/chat_server, with nc as the clients: three join,
# two of them talk, and each line reaches the other two but not its
# sender; joins and leaves are announced. Then one client floods the room
# while another reads nothing: the one that reads nothing is dropped, the
# others get every line. SIGTERM with clients connected gives status 0.
. "$(dirname "$0")/lib.sh"

need nc
PIDS=
start_server "$1" 0
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
    timeout --foreground -k 2 "$CLIENT_LIMIT" nc -N -w 20 127.0.0.1 "$PORT" <"$_tmp.in$1" >"$_tmp.out$1" 3>&- 4>&- 5>&- 6<&- &
    PIDS="$PIDS $!"
    eval "exec $2>\"\$_tmp.in$1\""
    wait_until "client $1 was not greeted" has_count "$_tmp.out$1" '^\*\*\* you are ' 1
    CNAME=$(sed -n 's/^\*\*\* you are \(.*\), [0-9]* others* here$/\1/p' "$_tmp.out$1")
    [ -n "$CNAME" ] || fail "client $1: no name in $(cat "$_tmp.out$1")"
}

join 1 3
A=$CNAME
join 2 4
B=$CNAME
join 3 5
C=$CNAME
wait_line "$_tmp.out1" "*** $C joined"
wait_line "$_tmp.out2" "*** $C joined"

echo "hello from A" >&3
wait_line "$_tmp.out2" "[$A] hello from A"
wait_line "$_tmp.out3" "[$A] hello from A"
printf 'hi from B\nB again' >&4 # the last line has no newline yet
wait_line "$_tmp.out1" "[$B] hi from B"
wait_line "$_tmp.out3" "[$B] hi from B"
exec 4>&- # B leaves: its last line is passed on first
wait_line "$_tmp.out1" "*** $B left"
wait_line "$_tmp.out3" "*** $B left"

cat >"$_tmp.want1" <<END
*** you are $A, 0 others here
*** $B joined
*** $C joined
[$B] hi from B
[$B] B again
*** $B left
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
END
for i in 1 2 3; do
    cmp -s "$_tmp.want$i" "$_tmp.out$i" ||
        fail "client $i got:$(printf '\n'; cat "$_tmp.out$i")
expected:$(printf '\n'; cat "$_tmp.want$i")"
done

# A slow client: a 4 KiB receive buffer, and its output a FIFO nobody
# reads. Then a fourth client sends more than the kernel can hold for the
# slow one (its send buffer grows to tcp_wmem's maximum) plus the 1 MiB
# the server queues, at about 10 MB/s: fast enough to be done in a second,
# slow enough for nc writing to a file to keep up even on a busy machine
# (one that falls 1 MiB behind a flood is dropped too, as it should be).
mkfifo "$_tmp.slow" "$_tmp.in4" || fail "mkfifo failed"
timeout --foreground -k 2 "$CLIENT_LIMIT" nc -N -w 20 -I 4096 127.0.0.1 "$PORT" <"$_tmp.in4" >"$_tmp.slow" 3>&- 5>&- &
PIDS="$PIDS $!"
exec 4>"$_tmp.in4" 6<"$_tmp.slow"
wait_until "the slow client did not join" has_count "$_tmp.out1" '^\*\*\* .* joined$' 3
D=$(sed -n 's/^\*\*\* \(.*\) joined$/\1/p' "$_tmp.out1" | tail -n 1)
WMAX=$(awk '{ print $3 }' /proc/sys/net/ipv4/tcp_wmem 2>/dev/null)
CHUNKS=$(((${WMAX:-4194304} + 4194304) / 100000))
LINES=$((CHUNKS * 100))
awk 'BEGIN { for (i = 0; i < 100; i++) printf "flood %03d %0990d\n", i, 0 }' >"$_tmp.chunk"
i=0
while [ "$i" -lt "$CHUNKS" ]; do
    cat "$_tmp.chunk"
    sleep 0.01
    i=$((i + 1))
done | bounded "$CLIENT_LIMIT" nc -N -w 20 127.0.0.1 "$PORT" >"$_tmp.out5" 3>&- 4>&- 5>&- 6<&- ||
    fail "the flooding nc exited with status $?$(why $?)"
wait_line "$_tmp.out5" "*** $D dropped: too slow"
wait_line "$_tmp.out1" "*** $D dropped: too slow"
for i in 1 3; do
    wait_until "client $i did not get the $LINES lines of the flood" \
        has_count "$_tmp.out$i" '^\[.*\] flood [0-9]* 0*$' "$LINES"
done
exec 4>&- 6<&-

stop_server # with clients 1 and 3 still connected
exec 3>&- 5>&-
for p in $PIDS; do
    wait "$p"
    _st=$?
    [ "$_st" -lt 124 ] || fail "an nc did not end when the server stopped: status $_st$(why $_st)"
done
PIDS=
[ ! -s "$ERR" ] || fail "the server wrote to stderr"
pass "lines reached the others only, joins and leaves announced, a slow client dropped, SIGTERM gave status 0"
