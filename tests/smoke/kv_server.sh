#!/bin/sh
# Smoke test for examples/kv_server: redis-cli checks each command's reply
# (as redis-server 7.0 gives them), transactions (MULTI/EXEC/DISCARD), a
# binary value and one of 100 KB (past the stream's 64 KiB read limit)
# come back intact, pipelines (redis-cli --pipe, inline commands over nc)
# are answered in order, and a short redis-benchmark finishes cleanly.
# redis-py (kv_server_redispy.py, when Python has it) checks the commands
# it sends and its pipeline(); Python sockets (kv_server_limits.py) check
# the limits: the memory a command costs, --max-connections, --timeout;
# nc checks the protocol limits (--max-args, --max-bulk, their defaults).
. "$(dirname "$0")/lib.sh"

need redis-cli
PY=${PYTHON:-python3}
HERE=$(dirname "$0")
HAVE_NC=
command -v nc >/dev/null 2>&1 && nc -h 2>&1 | grep -q -e '-N' && HAVE_NC=1
HAVE_PY=
"$PY" -c 'import socket' >/dev/null 2>&1 && HAVE_PY=1
# A build with a sanitizer: its allocator keeps freed memory (no memory check).
SANITIZED=0
grep -q -a -e __asan_init -e __tsan_init -e __msan_init "$1" && SANITIZED=1

# nc_expect INPUT EXPECTED [ARG...]: INPUT (a printf format) sent over nc
# (-N: then half-closed) is answered with EXPECTED (printf's format, ARGs).
nc_expect() {
    _in=$1
    shift
    # shellcheck disable=SC2059 # the formats are the point
    printf -- "$_in" | bounded "$CLIENT_LIMIT" nc -N 127.0.0.1 "$PORT" >"$_tmp.got" 2>&1 ||
        fail "nc failed: status $?$(why $?)"
    # shellcheck disable=SC2059
    printf -- "$@" | cmp -s - "$_tmp.got" || fail "nc: sent $_in, got $(od -c "$_tmp.got" | head -20)"
}

# server_pid: the server's own pid (SERVER_PID is timeout's, its parent).
server_pid() {
    _c=$(cat "/proc/$SERVER_PID/task/$SERVER_PID/children" 2>/dev/null)
    echo "${_c%% *}"
}

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

# What redis-py and redis-cli send by default, answered as Redis does.
check 'OK' SET n 10
check '(integer) 15' INCRBY n 5
check '(integer) 14' DECR n
check '(integer) 4' DECRBY n 10
check '(integer) -1' DECRBY fresh2 1
check '(error) ERR value is not an integer or out of range' INCRBY n x
check 'OK' SET word hello
check '(error) ERR value is not an integer or out of range' DECR word
check 'OK' SET max 9223372036854775807
check '(error) ERR increment or decrement would overflow' INCRBY max 1
check '(error) ERR decrement would overflow' DECRBY n -9223372036854775808
check 'OK' MSET m1 a m2 b
check "$(printf '1) "a"\n2) (nil)\n3) "b"')" MGET m1 missing m2
check "(error) ERR wrong number of arguments for 'mset' command" MSET m1 a m2
check '(integer) -1' TTL m1
check '(integer) -2' TTL missing
check '(integer) 1' EXPIRE m1 100
check '(integer) 100' TTL m1
check '(integer) 0' EXPIRE m1 50 GT
check '(integer) 1' EXPIRE m1 50 LT
check '(integer) 0' EXPIRE missing 10
check '(error) ERR Unsupported option FOO' EXPIRE m1 10 FOO
check '(error) ERR NX and XX, GT or LT options at the same time are not compatible' EXPIRE m1 10 NX GT
check "(error) ERR invalid expire time in 'expire' command" EXPIRE m1 9223372036854775807
check '(integer) 1' PEXPIRE m2 100000
_pttl=$(cli PTTL m2)
case $_pttl in '(integer) 9'[0-9][0-9][0-9][0-9] | '(integer) 100000') ;; *) fail "PTTL m2: $_pttl" ;; esac
check '(integer) 1' PERSIST m2
check '(integer) 0' PERSIST m2
check '(integer) -1' PTTL m2
check '(integer) 1' EXPIRE m2 0
check '(integer) 0' EXISTS m2
check 'OK' SELECT 0
check '(error) ERR DB index is out of range' SELECT 1
check '(error) ERR value is not an integer or out of range' SELECT x
check 'OK' CLIENT SETNAME smoke
check 'OK' CLIENT SETINFO LIB-NAME redis-py
check "(error) ERR unknown subcommand 'FOO'. Try CLIENT HELP." CLIENT FOO
check '(error) NOPROTO unsupported protocol version' HELLO 3
_hello=$(cli HELLO 2 | tr '\n' ' ')
case $_hello in ' 1) "server"'*' 5) "proto"  6) (integer) 2 '*'14) (empty array) ') ;;
    *) fail "HELLO 2: $_hello" ;; esac
_n=$(cli COMMAND COUNT)
case $_n in '(integer) '[1-9][0-9]) ;; *) fail "COMMAND COUNT: $_n" ;; esac
check '(empty array)' COMMAND DOCS
_n=$(cli DBSIZE)
case $_n in '(integer) '[1-9]*) ;; *) fail "DBSIZE: $_n" ;; esac
check 'OK' QUIT

# Transactions, several commands on one connection (redis-cli's stdin).
printf '%s\n' MULTI 'SET t0 1' 'INCR t0' 'INCR' EXEC \
    MULTI 'SET t x' 'INCR t' 'GET t' EXEC DISCARD MULTI MULTI 'GET t' EXEC EXEC |
    bounded "$CLIENT_LIMIT" redis-cli --no-raw -p "$PORT" >"$_tmp.got" 2>&1 || fail "redis-cli with MULTI: status $?"
cat >"$_tmp.want" <<'END'
OK
QUEUED
QUEUED
(error) ERR wrong number of arguments for 'incr' command
(error) EXECABORT Transaction discarded because of previous errors.
OK
QUEUED
QUEUED
QUEUED
1) OK
2) (error) ERR value is not an integer or out of range
3) "x"
(error) ERR DISCARD without MULTI
OK
(error) ERR MULTI calls can not be nested
QUEUED
1) "x"
(error) ERR EXEC without MULTI
END
cmp -s "$_tmp.want" "$_tmp.got" || fail "MULTI/EXEC over redis-cli: $(diff "$_tmp.want" "$_tmp.got")"
check '(nil)' GET t0 # the aborted transaction's SET

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
if [ -n "$HAVE_NC" ]; then
    printf 'PING\r\nSET x 5\r\nINCR x\r\nGET x\r\n\r\nPING a b\r\n*1\r\n$4\r\nPING\r\n*x\r\nPING\r\n' |
        bounded "$CLIENT_LIMIT" nc -N 127.0.0.1 "$PORT" >"$_tmp.got" 2>&1 || fail "nc failed: status $?$(why $?)"
    printf '+PONG\r\n+OK\r\n:6\r\n$1\r\n6\r\n%s\r\n+PONG\r\n%s\r\n' \
        "-ERR wrong number of arguments for 'ping' command" \
        '-ERR Protocol error: invalid multibulk length' | cmp -s - "$_tmp.got" ||
        fail "inline pipeline over nc: got $(od -c "$_tmp.got")"
    # The same as Redis, byte for byte: queued replies, EXEC's array, and
    # EXEC with arguments, which discards the transaction.
    nc_expect 'MULTI\r\nSET q 1\r\nINCR q\r\nEXEC\r\nMULTI\r\nEXEC x\r\nEXEC\r\nQUIT\r\nPING\r\n' \
        '+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n:2\r\n+OK\r\n%s\r\n%s\r\n+OK\r\n' \
        "-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command" \
        '-ERR EXEC without MULTI'
    # The protocol's limits by default: 1048576 arguments, 512 MiB a bulk.
    nc_expect '*1048577\r\n' '-ERR Protocol error: invalid multibulk length\r\n'
    nc_expect '*1048576\r\n$4\r\nPING\r\n$536870913\r\n' '-ERR Protocol error: invalid bulk length\r\n'
else
    echo "($NAME: no nc with -N, inline pipeline and protocol limits not tested)"
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

if [ -n "$HAVE_PY" ]; then
    # One command of a million empty arguments (6 MB): memory bounded.
    _pid=$(server_pid)
    if [ -n "$_pid" ] && [ -r "/proc/$_pid/status" ]; then
        bounded "$CLIENT_LIMIT" "$PY" "$HERE/kv_server_limits.py" memory "$PORT" "$_pid" 1000000 "$SANITIZED" ||
            fail "memory of a command with many arguments"
    else
        echo "($NAME: no /proc/PID/status, memory not measured)"
    fi
else
    echo "($NAME: no $PY, the memory a command costs not measured)"
fi
if "$PY" -c 'import redis' >/dev/null 2>&1; then
    bounded "$CLIENT_LIMIT" "$PY" "$HERE/kv_server_redispy.py" "$PORT" || fail "redis-py"
else
    echo "($NAME: no redis-py for $PY (python3-redis), its checks not run)"
fi

stop_server
[ ! -s "$ERR" ] || fail "the server wrote to stderr"

# Limits set low: 3 connections, 4 arguments, bulks of 1000 bytes.
start_server "$1" 0 --max-connections 3 --max-args 4 --max-bulk 1000
check 'OK' SET a b
head -c 1000 /dev/zero | tr '\0' x >"$_tmp.1000"
[ "$(bounded "$CLIENT_LIMIT" redis-cli -p "$PORT" -x SET k1000 <"$_tmp.1000")" = OK ] || fail "SET of 1000 bytes"
check '(error) ERR Protocol error: invalid multibulk length' DEL a b c d
if [ -n "$HAVE_NC" ]; then
    nc_expect '*4\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n' \
        "-ERR wrong number of arguments for 'mset' command\r\n"
    nc_expect '*5\r\n' '-ERR Protocol error: invalid multibulk length\r\n'
    nc_expect 'PING\r\nDEL a b c d\r\nPING\r\n' '+PONG\r\n-ERR Protocol error: too many arguments\r\n'
    nc_expect '*2\r\n$4\r\nECHO\r\n$1001\r\n' '-ERR Protocol error: invalid bulk length\r\n'
fi
if [ -n "$HAVE_PY" ]; then
    bounded "$CLIENT_LIMIT" "$PY" "$HERE/kv_server_limits.py" connections "$PORT" 3 ||
        fail "--max-connections 3"
fi
stop_server
[ ! -s "$ERR" ] || fail "the server wrote to stderr (limits set low)"

# --timeout 1: idle clients are disconnected after a second.
if [ -n "$HAVE_PY" ]; then
    start_server "$1" 0 --timeout 1
    bounded "$CLIENT_LIMIT" "$PY" "$HERE/kv_server_limits.py" timeout "$PORT" 1 || fail "--timeout 1"
    stop_server
    [ ! -s "$ERR" ] || fail "the server wrote to stderr (--timeout)"
else
    echo "($NAME: no $PY, --max-connections and --timeout not tested)"
fi

# --busy-poll takes microseconds up to 1 s (the run above used the default,
# 20); anything else is a usage error (not a server that runs: timeout), and
# 0 runs without it.
for _bad in x -1 1000001 20us ''; do
    expect_usage_error "$1" 0 --busy-poll "$_bad"
done
# So do the limits' options out of their ranges.
for _bad in '--timeout x' '--timeout -1' '--max-connections 0' '--max-args 0' \
    '--max-args 2147483648' '--max-bulk 536870913' '--max-bulk 0' '--timeout'; do
    # shellcheck disable=SC2086 # the option and its value, split
    expect_usage_error "$1" 0 $_bad
done
start_server "$1" 0 --busy-poll 0
check 'PONG' PING
check '"1"' ECHO 1
stop_server
[ ! -s "$ERR" ] || fail "the server wrote to stderr (--busy-poll 0)"
pass "every command answered as Redis would"
