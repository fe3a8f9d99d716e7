#!/bin/sh
# Smoke test for examples/kv_server: redis-cli checks each command's reply,
# a binary value and one of 100 KB (past the stream's 64 KiB read limit)
# come back intact, pipelines (redis-cli --pipe, inline commands over nc)
# are answered in order, and a short redis-benchmark finishes cleanly.
. "$(dirname "$0")/lib.sh"

need redis-cli
start_server "$1" 0

cli() { bounded "$CLIENT_LIMIT" redis-cli --no-raw -p "$PORT" "$@" 2>&1; }
# check EXPECTED ARGS...: redis-cli ARGS prints exactly EXPECTED.
check() {
    _want=$1
    shift
    _got=$(cli "$@")
    [ "$_got" = "$_want" ] || fail "redis-cli $*: expected \"$_want\", got \"$_got\""
}

check 'PONG' PING
check '"hello"' PING hello
check 'OK' SET greeting hello
check '"hello"' GET greeting
check '(nil)' GET missing
check 'OK' SET n 41
check '(integer) 42' INCR n
check '(integer) 1' INCR fresh
check '(error) ERR value is not an integer or out of range' INCR greeting
check '(integer) 3' EXISTS greeting n missing greeting
check '(integer) 2' DEL greeting n missing
check '(integer) 0' EXISTS greeting
check '"hi there"' ECHO 'hi there'
check '(nil)' SET fresh 7 NX
check '(nil)' SET other 7 XX
check 'OK' SET fresh 7 XX
check 'OK' SET brief 1 PX 100
check '(error) ERR syntax error' SET k v FOREVER
check "(error) ERR wrong number of arguments for 'get' command" GET
check "(error) ERR unknown command 'FROB', with args beginning with: 'a' 'b c' " FROB a 'b c'
sleep 0.3
check '(nil)' GET brief

# Binary-safe values: redis-cli -x sends stdin as the last argument, and
# --raw prints a value as it is, then a newline.
printf 'a\r\nb\000c' >"$_tmp.bin"
[ "$(bounded "$CLIENT_LIMIT" redis-cli -p "$PORT" -x SET bin <"$_tmp.bin")" = OK ] || fail "SET of a binary value"
bounded "$CLIENT_LIMIT" redis-cli -p "$PORT" --raw GET bin >"$_tmp.got"
{ cat "$_tmp.bin"; echo; } | cmp -s - "$_tmp.got" || fail "a binary value came back changed"
dd if=/dev/urandom of="$_tmp.big" bs=1024 count=100 2>/dev/null || fail "no random bytes"
[ "$(bounded "$CLIENT_LIMIT" redis-cli -p "$PORT" -x SET big <"$_tmp.big")" = OK ] || fail "SET of 100 KB"
bounded "$CLIENT_LIMIT" redis-cli -p "$PORT" --raw GET big >"$_tmp.got"
{ cat "$_tmp.big"; echo; } | cmp -s - "$_tmp.got" || fail "the 100 KB value came back changed"

# A pipeline of 1000 commands in one stream, multibulk and inline mixed.
awk 'BEGIN { for (i = 1; i <= 500; i++) {
    printf "*3\r\n$3\r\nSET\r\n$%d\r\nk:%d\r\n$%d\r\n%d\r\n", length(i) + 2, i, length(i), i
    printf "INCR k:%d\r\n", i } }' >"$_tmp.pipe"
bounded "$CLIENT_LIMIT" redis-cli -p "$PORT" --pipe <"$_tmp.pipe" >"$_tmp.got" 2>&1 ||
    fail "redis-cli --pipe failed, status $?$(why $?): $(cat "$_tmp.got")"
grep -q '^errors: 0, replies: 1000$' "$_tmp.got" || fail "redis-cli --pipe: $(cat "$_tmp.got")"
check '"501"' GET k:500
check '(integer) 500' EXISTS $(awk 'BEGIN { for (i = 1; i <= 500; i++) printf "k:%d ", i }')

# Inline commands as nc sends them, answered in order; then a protocol
# error, which is answered and ends the connection, as Redis does.
if command -v nc >/dev/null 2>&1 && nc -h 2>&1 | grep -q -e '-N'; then
    printf 'PING\r\nSET x 5\r\nINCR x\r\nGET x\r\n\r\nPING a b\r\n*1\r\n$4\r\nPING\r\n*x\r\nPING\r\n' |
        bounded "$CLIENT_LIMIT" nc -N 127.0.0.1 "$PORT" >"$_tmp.got" 2>&1 || fail "nc failed: status $?$(why $?)"
    printf '+PONG\r\n+OK\r\n:6\r\n$1\r\n6\r\n%s\r\n+PONG\r\n%s\r\n' \
        "-ERR wrong number of arguments for 'ping' command" \
        '-ERR Protocol error: invalid multibulk length' | cmp -s - "$_tmp.got" ||
        fail "inline pipeline over nc: got $(od -c "$_tmp.got")"
else
    echo "($NAME: no nc with -N, inline pipeline not tested)"
fi

if command -v redis-benchmark >/dev/null 2>&1; then
    bounded "$CLIENT_LIMIT" redis-benchmark -p "$PORT" -t ping,set,get -n 20000 -c 10 -q >"$_tmp.bench" 2>&1 ||
        fail "redis-benchmark failed, status $?$(why $?): $(cat "$_tmp.bench")"
    _n=$(tr '\r' '\n' <"$_tmp.bench" | grep -c 'requests per second, p50')
    [ "$_n" -eq 4 ] || fail "redis-benchmark: $_n of 4 tests finished: $(cat "$_tmp.bench")"
    ! grep -qi 'error\|warning' "$_tmp.bench" || fail "redis-benchmark: $(cat "$_tmp.bench")"
else
    echo "($NAME: no redis-benchmark, not run)"
fi

stop_server
[ ! -s "$ERR" ] || fail "the server wrote to stderr"

# --busy-poll takes microseconds up to 1 s (the run above used the default,
# 20); anything else is a usage error (not a server that runs: timeout), and
# 0 runs without it.
for _bad in x -1 1000001 20us ''; do
    timeout --foreground -k 2 10 "$1" 0 --busy-poll "$_bad" >/dev/null 2>"$_tmp.err"
    _st=$?
    [ "$_st" -eq 2 ] && grep -q '^usage:' "$_tmp.err" ||
        fail "--busy-poll '$_bad': status $_st, $(cat "$_tmp.err")"
done
start_server "$1" 0 --busy-poll 0
check 'PONG' PING
check '"1"' ECHO 1
stop_server
[ ! -s "$ERR" ] || fail "the server wrote to stderr (--busy-poll 0)"
pass "every command answered as Redis would"
