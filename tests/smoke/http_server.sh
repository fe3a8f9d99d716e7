#!/bin/sh
# Smoke test for examples/http_server: on port 0 with a temporary DIR, curl
# checks the hello answer, HEAD, a 200 KB file (byte for byte), 404, 405,
# that ".." never escapes DIR, and keep-alive; nc checks pipelining (answers
# in order, HEAD without a body, a POST body skipped, nothing answered after
# "Connection: close"), HTTP/1.0 closing, 400 and 501. SIGTERM must stop it
# with status 0 and nothing on stderr.
# With --workers 2 and 4: 50 transfers of / and 4 of the 200 KB file, each
# on a connection of its own, all answered right and spread over more than
# one worker (the counts it prints at exit); SIGTERM (2) and SIGINT (4) end
# it with status 0; so does SIGTERM while 64 workers start; every start
# failure for want of fds (the main thread's or a worker's) ends it with
# status 1 and a message, and so does a port another server holds; bad
# --workers values are usage errors.
. "$(dirname "$0")/lib.sh"

need curl nc

BASE=$_tmp.d # BASE/www is DIR; BASE/secret.txt is outside it
WWW=$BASE/www
cleanup() { kill "$SERVER_PID" 2>/dev/null; rm -rf "$BASE"; rm -f "$_tmp".*; }
mkdir -p "$WWW/sub" || fail "cannot create $WWW"
trap cleanup EXIT
echo 'secret: outside DIR' >"$BASE/secret.txt"
printf 'a small file\n' >"$WWW/small.txt"
# Larger than the write buffer's high water mark, so drain has work to do.
dd if=/dev/urandom of="$WWW/sub/big.bin" bs=1024 count=200 2>/dev/null ||
    fail "cannot write $WWW/sub/big.bin"

start_server "$1" 0 "$WWW"
trap cleanup EXIT # start_server set its own
URL=http://127.0.0.1:$PORT

get() { bounded "$CLIENT_LIMIT" curl -sS --max-time 5 "$@"; }
# raw REQUEST [NC-OPTION]: send REQUEST (printf %b escapes: \r\n) in one
# write on a new connection; the answer is in $_tmp.bytes, and in $_tmp.raw
# with CRs removed and Date lines (they change) dropped.
raw() {
    printf '%b' "$1" | bounded "$CLIENT_LIMIT" nc ${2:+"$2"} -w 5 127.0.0.1 "$PORT" >"$_tmp.bytes" ||
        fail "nc could not talk to the server: status $?$(why $?)"
    tr -d '\r' <"$_tmp.bytes" | awk '!/^Date: /' >"$_tmp.raw"
}
expect_raw() {
    cat >"$_tmp.want"
    cmp -s "$_tmp.want" "$_tmp.raw" || {
        diff "$_tmp.want" "$_tmp.raw" >&2
        fail "$1: unexpected answer (diff of expected and got above)"
    }
}

# GET / and HEAD /
code=$(get -o "$_tmp.body" -w '%{http_code} %{content_type}' "$URL/") || fail "GET / failed"
[ "$code" = "200 text/plain" ] || fail "GET /: got '$code', expected '200 text/plain'"
printf 'Hello, World!' >"$_tmp.hello"
cmp -s "$_tmp.hello" "$_tmp.body" || fail "GET /: body is '$(cat "$_tmp.body")'"
get -I "$URL/" | tr -d '\r' >"$_tmp.head" || fail "HEAD / failed"
grep -qx 'Content-Length: 13' "$_tmp.head" || fail "HEAD /: no Content-Length: 13 in: $(cat "$_tmp.head")"
raw 'HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' -N
[ "$(tail -c 4 "$_tmp.bytes" | od -An -tx1 | tr -d ' \n')" = 0d0a0d0a ] ||
    fail "HEAD /: something came after the header section"

# Files, and what is not one
code=$(get -o "$_tmp.big" -w '%{http_code} %{size_download}' "$URL/sub/big.bin") || fail "GET /sub/big.bin failed"
[ "$code" = "200 204800" ] || fail "GET /sub/big.bin: got '$code', expected '200 204800'"
cmp -s "$WWW/sub/big.bin" "$_tmp.big" || fail "GET /sub/big.bin: the bytes differ from the file"
code=$(get -o /dev/null -w '%{http_code}' "$URL/small.txt?q=1")
[ "$code" = 200 ] || fail "GET /small.txt?q=1: got $code, expected 200"
for path in /missing.txt /sub /sub/ /sub/missing/x; do
    code=$(get -o /dev/null -w '%{http_code}' "$URL$path")
    [ "$code" = 404 ] || fail "GET $path: got $code, expected 404"
done

# Other methods
for method in POST DELETE; do
    code=$(get -X "$method" -d data -D "$_tmp.hdrs" -o /dev/null -w '%{http_code}' "$URL/")
    [ "$code" = 405 ] || fail "$method /: got $code, expected 405"
    tr -d '\r' <"$_tmp.hdrs" | grep -qx 'Allow: GET, HEAD' || fail "$method /: no 'Allow: GET, HEAD' header"
done

# ".." must never leave DIR, however it is written
for path in /../secret.txt /../../etc/passwd /sub/../../secret.txt /%2e%2e/secret.txt \
    /sub/%2E%2E/%2e%2e/secret.txt /..%2fsecret.txt //etc/passwd /%2fetc/passwd; do
    code=$(get --path-as-is -o "$_tmp.body" -w '%{http_code}' "$URL$path")
    case $code in 400 | 404) ;; *) fail "GET $path: got $code, expected 400 or 404" ;; esac
    grep -q -e secret -e 'root:' "$_tmp.body" && fail "GET $path: served a file outside DIR"
done

# Keep-alive: the second transfer reuses the first one's connection
conns=$(get -o /dev/null -o /dev/null -w '%{num_connects} ' "$URL/" "$URL/small.txt")
[ "$conns" = "1 0 " ] || fail "keep-alive: new connections per transfer were '$conns', expected '1 0 '"

# Pipelining: six requests in one write; five answers in order, the last
# request (after "Connection: close") unanswered.
req='GET / HTTP/1.1\r\nHost: t\r\n\r\nHEAD /small.txt HTTP/1.1\r\nHost: t\r\n\r\n'
req=$req'GET /nope HTTP/1.1\r\nHost: t\r\n\r\n'
req=$req'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello'
req=$req'GET /small.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n'
raw "$req"'GET / HTTP/1.1\r\nHost: t\r\n\r\n' -N
expect_raw pipelining <<'END'
HTTP/1.1 200 OK
Server: libasyncio
Content-Type: text/plain
Content-Length: 13

Hello, World!HTTP/1.1 200 OK
Server: libasyncio
Content-Type: text/plain
Content-Length: 13

HTTP/1.1 404 Not Found
Server: libasyncio
Content-Type: text/plain
Content-Length: 14

404 Not Found
HTTP/1.1 405 Method Not Allowed
Server: libasyncio
Content-Type: text/plain
Content-Length: 23
Allow: GET, HEAD

405 Method Not Allowed
HTTP/1.1 200 OK
Server: libasyncio
Content-Type: text/plain
Content-Length: 13
Connection: close

a small file
END

# HTTP/1.0: keep-alive only when asked for; the server closes by itself
# (nc does not end its side here).
raw 'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n'
expect_raw "HTTP/1.0" <<'END'
HTTP/1.1 200 OK
Server: libasyncio
Content-Type: text/plain
Content-Length: 13
Connection: keep-alive

Hello, World!HTTP/1.1 200 OK
Server: libasyncio
Content-Type: text/plain
Content-Length: 13
Connection: close

Hello, World!
END

# Malformed requests: 400 and the connection closes; chunked bodies: 501.
for req in 'BAD\r\n\r\n' 'GET /\r\n\r\n' 'GET / HTTP/2.0\r\n\r\n' 'GET / HTTP/1.1\r\nNo colon\r\n\r\n' \
    'GET / HTTP/1.1\r\n folded: x\r\n\r\n' 'GET / HTTP/1.1\r\nContent-Length: x1\r\n\r\n' \
    'GET /%zz HTTP/1.1\r\n\r\n'; do
    raw "$req"'GET / HTTP/1.1\r\n\r\n'
    head -n 1 "$_tmp.raw" | grep -qx 'HTTP/1.1 400 Bad Request' || fail "'$req': no 400: $(head -n 1 "$_tmp.raw")"
    [ "$(grep -c '^HTTP/' "$_tmp.raw")" = 1 ] || fail "'$req': the connection went on after a 400"
done
raw "GET / HTTP/1.1\\r\\nX-Big: $(awk 'BEGIN { for (i = 0; i < 70000; i++) printf "a" }')\\r\\n\\r\\n" -N
head -n 1 "$_tmp.raw" | grep -qx 'HTTP/1.1 400 Bad Request' || fail "a 70 KB header section: no 400"
raw 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'
head -n 1 "$_tmp.raw" | grep -qx 'HTTP/1.1 501 Not Implemented' || fail "chunked body: no 501"

# Another server on its port, with workers: it cannot listen (this one
# did not set SO_REUSEPORT), says so and exits with status 1.
bounded "$CLIENT_LIMIT" "$1" "$PORT" "$WWW" --workers 2 >"$_tmp.o2" 2>"$_tmp.e2"
_st=$?
[ "$_st" -eq 1 ] || fail "a second server on port $PORT: status $_st$(why "$_st"), expected 1"
grep -q "cannot listen on 127.0.0.1:$PORT: " "$_tmp.e2" ||
    fail "a second server on port $PORT: no 'cannot listen' message: $(cat "$_tmp.e2")"

stop_server
[ -s "$ERR" ] && fail "unexpected output on stderr"
! grep -q '^worker ' "$OUT" || fail "one worker: a report of workers at exit"

# ---- --workers N: a loop per thread, all on one port -----------------------
BIN=$1
for v in 0 65 -1 x 2x ''; do
    expect_usage_error "$BIN" 0 --workers "$v"
done
expect_usage_error "$BIN" 0 --workers

# workers_run N SIGNAL: with N workers, 54 transfers, each on a new
# connection, answered right; SIGNAL ends the server with status 0, and
# its report shows the connections spread over several workers.
workers_run() {
    start_server "$BIN" 0 "$WWW" --workers "$1"
    trap cleanup EXIT
    URL=http://127.0.0.1:$PORT
    _t=$(server_threads)
    [ -z "$_t" ] || [ "$_t" -ge "$1" ] || fail "--workers $1: $_t thread(s)"
    # "Connection: close": each transfer on a connection of its own. Each
    # body (no newline) is followed by the -w line: "Hello, World! 200 1".
    urls=
    i=0
    while [ "$i" -lt 50 ]; do
        urls="$urls $URL/"
        i=$((i + 1))
    done
    get -H 'Connection: close' -w ' %{http_code} %{num_connects}\n' $urls >"$_tmp.many" ||
        fail "--workers $1: curl of 50 URLs failed"
    expect_count 'Hello, World! 200 1' 50 "$_tmp.many"
    get -H 'Connection: close' -o "$_tmp.big1" "$URL/sub/big.bin" -o "$_tmp.big2" "$URL/sub/big.bin" \
        -o "$_tmp.big3" "$URL/sub/big.bin" -o "$_tmp.big4" "$URL/sub/big.bin" ||
        fail "--workers $1: GET /sub/big.bin failed"
    for k in 1 2 3 4; do
        cmp -s "$WWW/sub/big.bin" "$_tmp.big$k" || fail "--workers $1: GET /sub/big.bin: the bytes differ"
    done
    stop_server "$2"
    [ ! -s "$ERR" ] || fail "--workers $1: unexpected output on stderr"
    expect_workers "$1" 54
}
workers_run 2 TERM
workers_run 4 INT

expect_stop_while_starting TERM "$BIN" 0 "$WWW" --workers 64
[ ! -s "$ERR" ] || fail "--workers 64, stopped while starting: unexpected output on stderr"

expect_clean_start_failures "$BIN" 0 "$WWW" --workers 4

pass "hello, HEAD, files, 404, 405, no escape from DIR, keep-alive, pipelining, 400, 501;" \
    "--workers 2 and 4 spread 54 connections, stopped by SIGTERM and SIGINT;" \
    "SIGTERM as 64 workers start${EARLY:+ (before the ready line: $EARLY)}, start failures, usage errors"
