#!/bin/sh
# Smoke test for examples/http_server: on port 0 with a temporary DIR, curl
# checks the hello answer, HEAD, a 200 KB file (byte for byte), 404, 405,
# that ".." never escapes DIR, and keep-alive; nc checks pipelining (answers
# in order, HEAD without a body, a POST body skipped, nothing answered after
# "Connection: close"), HTTP/1.0 closing, 400 and 501, and RFC 9112's
# rules: HTTP/1.1 without Host (or with two), a control byte in a header
# value, bare LF line endings: 400 at once. Static files with curl: types
# from the extension, Last-Modified and ETag, If-Modified-Since and
# If-None-Match (304), Range (206, 416, several ranges: 200), If-Range, a
# directory's index.html and the 301 that adds its slash, a symbolic link
# out of DIR refused and one inside DIR followed (or, without openat2,
# refused too). SIGTERM must stop it with status 0 and nothing on stderr.
# With short timeouts, Python asyncio streams (http_server_limits.py;
# skipped without python3) check that slow request heads get 408 and are
# closed at --header-timeout however they dribble, while curl is served
# meanwhile; that silent and idle keep-alive connections are closed at
# --header-timeout and --keepalive-timeout, a slow body at --header-timeout
# after its answer, a client still sending after "Connection: close" 2 s
# after it (the linger); that a client that does not read is dropped at
# --io-timeout; and that --max-connections N refuses connection N+1 with
# 503 and serves the N.
# With --workers 2 and 4: 50 transfers of / and 4 of the 200 KB file, each
# on a connection of its own, all answered right and spread over more than
# one worker (the counts it prints at exit); SIGTERM (2) and SIGINT (4) end
# it with status 0; so does SIGTERM while 64 workers start; every start
# failure for want of fds (the main thread's or a worker's) ends it with
# status 1 and a message, and so does a port another server holds; bad
# --workers and timeout values are usage errors.
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
# 32 MiB, sparse: more than the socket buffers hold, for --io-timeout.
dd if=/dev/zero of="$WWW/huge.bin" bs=1048576 count=0 seek=32 2>/dev/null ||
    fail "cannot write $WWW/huge.bin"
mkdir -p "$WWW/site" "$WWW/sub dir" || fail "cannot create directories in $WWW"
printf '<p>index</p>\n' >"$WWW/site/index.html"
printf 'body {}\n' >"$WWW/site/style.css"
printf '{}\n' >"$WWW/site/a.json"
printf '<p>spaced</p>\n' >"$WWW/sub dir/index.html"
printf 'x' >"$WWW/site/logo.PNG"
printf 'x' >"$WWW/site/app.wasm"
printf 'x' >"$WWW/site/noext"
ln -s /etc/passwd "$WWW/passwd" && ln -s ../secret.txt "$WWW/secret.txt" &&
    ln -s "$BASE/secret.txt" "$WWW/abs-secret.txt" && ln -s /etc "$WWW/etc" &&
    ln -s small.txt "$WWW/link.txt" && ln -s ../small.txt "$WWW/site/up.txt" ||
    fail "cannot make symbolic links in $WWW"

start_server "$1" 0 "$WWW"
trap cleanup EXIT # start_server set its own
URL=http://127.0.0.1:$PORT

get() { bounded "$CLIENT_LIMIT" curl -sS --max-time 5 "$@"; }
# raw REQUEST [NC-OPTION]: send REQUEST (printf %b escapes: \r\n) in one
# write on a new connection; the answer is in $_tmp.bytes, and in $_tmp.raw
# with CRs removed and Date, Last-Modified and ETag lines (they change)
# dropped.
raw() {
    printf '%b' "$1" | bounded "$CLIENT_LIMIT" nc ${2:+"$2"} -w 5 127.0.0.1 "$PORT" >"$_tmp.bytes" ||
        fail "nc could not talk to the server: status $?$(why $?)"
    tr -d '\r' <"$_tmp.bytes" | awk '!/^(Date|Last-Modified|ETag): /' >"$_tmp.raw"
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
long=/$(awk 'BEGIN { for (i = 0; i < 1100; i++) printf "p" }') # over HTTP_PATH_MAX
for path in /missing.txt /sub/ /sub/missing/x /small.txt/ /sub/big.bin/x "$long"; do
    code=$(get -o /dev/null -w '%{http_code}' "$URL$path")
    [ "$code" = 404 ] || fail "GET ${path%"${path#??????????}"}...: got $code, expected 404"
done

# Content types from the extension (any case); the rest is octet-stream.
for pair in site/index.html:text/html site/style.css:text/css site/a.json:application/json \
    small.txt:text/plain site/logo.PNG:image/png site/app.wasm:application/wasm \
    site/noext:application/octet-stream sub/big.bin:application/octet-stream; do
    type=$(get -o /dev/null -w '%{content_type}' "$URL/${pair%%:*}")
    [ "$type" = "${pair#*:}" ] || fail "GET /${pair%%:*}: type '$type', expected '${pair#*:}'"
done

# Directories: index.html; without the slash a 301 that adds it (and
# percent-encodes what needs it); without an index, 404.
code=$(get -o "$_tmp.body" -w '%{http_code}' "$URL/site/")
[ "$code" = 200 ] && grep -qx '<p>index</p>' "$_tmp.body" || fail "GET /site/: got $code, '$(cat "$_tmp.body")'"
code=$(get -o /dev/null -w '%{http_code} %{redirect_url}' "$URL/site")
[ "$code" = "301 $URL/site/" ] || fail "GET /site: got '$code', expected '301 $URL/site/'"
code=$(get -o /dev/null -w '%{http_code} %{redirect_url}' "$URL/sub%20dir?x=1")
[ "$code" = "301 $URL/sub%20dir/" ] || fail "GET /sub%20dir: got '$code', expected '301 $URL/sub%20dir/'"
code=$(get -L -o "$_tmp.body" -w '%{http_code} %{num_redirects}' "$URL/sub")
[ "$code" = "404 1" ] || fail "GET -L /sub (no index): got '$code', expected '404 1'"
code=$(get -L -o "$_tmp.body" -w '%{http_code}' "$URL/sub%20dir")
[ "$code" = 200 ] && grep -qx '<p>spaced</p>' "$_tmp.body" || fail "GET -L /sub%20dir: got $code"

# Symbolic links: out of DIR (absolute, relative, a directory), refused;
# inside DIR followed with openat2 (Linux), else refused as well.
for path in /passwd /secret.txt /abs-secret.txt /etc/passwd /etc/; do
    code=$(get -o "$_tmp.body" -w '%{http_code}' "$URL$path")
    case $code in 403 | 404) ;; *) fail "GET $path (a link out of DIR): got $code, expected 404" ;; esac
    grep -q -e secret -e 'root:' "$_tmp.body" && fail "GET $path: served a file outside DIR"
done
links=
for path in /link.txt /site/up.txt; do
    code=$(get -o "$_tmp.body" -w '%{http_code}' "$URL$path")
    case $code in
        200) grep -qx 'a small file' "$_tmp.body" || fail "GET $path: wrong body '$(cat "$_tmp.body")'" ;;
        404) [ "$(uname -s)" != Linux ] || fail "GET $path (a link inside DIR): 404 on Linux" ;;
        *) fail "GET $path (a link inside DIR): got $code" ;;
    esac
    links="$links $code"
done

# Validators and conditions: Last-Modified and ETag; 304 (no body) for
# If-Modified-Since at or after it and for a matching If-None-Match, which
# wins over If-Modified-Since; 200 otherwise.
get -D "$_tmp.hdrs" -o /dev/null "$URL/small.txt" || fail "GET /small.txt failed"
tr -d '\r' <"$_tmp.hdrs" >"$_tmp.h"
lm=$(sed -n 's/^Last-Modified: //p' "$_tmp.h")
etag=$(sed -n 's/^ETag: //p' "$_tmp.h")
case $lm in ???,\ ??\ ???\ ????\ ??:??:??\ GMT) ;; *) fail "GET /small.txt: Last-Modified '$lm'" ;; esac
case $etag in \"*\") ;; *) fail "GET /small.txt: ETag '$etag'" ;; esac
grep -qx 'Accept-Ranges: bytes' "$_tmp.h" || fail "GET /small.txt: no 'Accept-Ranges: bytes'"
cond() { # cond EXPECTED-CODE CURL-ARGS...: a GET of /small.txt
    _want=$1
    shift
    _got=$(get -o "$_tmp.body" -w '%{http_code} %{size_download}' "$@" "$URL/small.txt")
    [ "$_got" = "$_want" ] || fail "GET /small.txt with $*: got '$_got', expected '$_want'"
}
cond '304 0' -H "If-Modified-Since: $lm"
cond '304 0' -z "$lm"
cond '200 13' -H 'If-Modified-Since: Thu, 01 Jan 1998 00:00:00 GMT'
cond '304 0' -H 'If-Modified-Since: Sun Nov  6 08:49:37 2099'
cond '200 13' -H 'If-Modified-Since: yesterday'
cond '304 0' -H "If-None-Match: $etag"
cond '304 0' -H "If-None-Match: \"x\", W/$etag"
cond '304 0' -H 'If-None-Match: *'
cond '200 13' -H 'If-None-Match: "other"' -H "If-Modified-Since: $lm"

# Range: a-b, a-, -n, past the end (416 with the size), several (the whole
# file), under an If-Range that matches (206) or not (200).
range() { # range CURL-RANGE EXPECTED-CODE EXPECTED-BODY [CONTENT-RANGE] [CURL-ARGS...]
    _r=$1 _want=$2 _body=$3 _cr=$4
    shift 4
    _got=$(get -D "$_tmp.hdrs" -o "$_tmp.body" -w '%{http_code}' -r "$_r" "$@" "$URL/small.txt")
    [ "$_got" = "$_want" ] || fail "GET /small.txt, range $_r $*: got $_got, expected $_want"
    [ "$(cat "$_tmp.body")" = "$_body" ] || fail "GET /small.txt, range $_r: body '$(cat "$_tmp.body")'"
    [ -z "$_cr" ] || tr -d '\r' <"$_tmp.hdrs" | grep -Fqx "Content-Range: $_cr" ||
        fail "GET /small.txt, range $_r: no 'Content-Range: $_cr'"
}
range 2-6 206 'small' 'bytes 2-6/13'
range 8- 206 'file' 'bytes 8-12/13'
range -5 206 'file' 'bytes 8-12/13'
range 8-100 206 'file' 'bytes 8-12/13'
range -100 206 'a small file' 'bytes 0-12/13'
range 13- 416 '416 Range Not Satisfiable' 'bytes */13'
range 0-1,4-6 200 'a small file' ''
range 2-6 206 'small' 'bytes 2-6/13' -H "If-Range: $etag"
range 2-6 206 'small' 'bytes 2-6/13' -H "If-Range: $lm"
range 2-6 200 'a small file' '' -H 'If-Range: "other"'
code=$(get -o "$_tmp.big" -w '%{http_code} %{size_download}' -r 1000-104799 "$URL/sub/big.bin")
[ "$code" = "206 103800" ] || fail "GET /sub/big.bin, range 1000-104799: got '$code'"
dd if="$WWW/sub/big.bin" bs=200 skip=5 count=519 2>/dev/null | cmp -s - "$_tmp.big" ||
    fail "GET /sub/big.bin, range 1000-104799: the bytes differ from the file's"

# RFC 9112: HTTP/1.1 needs one Host; no control byte but HTAB in a value;
# bare LF endings get a 400 at once (nc would wait 5 s for a silent one).
for req in 'GET / HTTP/1.1\r\n\r\n' 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n' \
    'GET / HTTP/1.1\r\nHost: a b\r\n\r\n' 'GET / HTTP/1.1\r\nHost: t\r\nX: a\0000b\r\n\r\n' \
    'GET / HTTP/1.1\r\nHost: t\r\nX: a\0001b\r\n\r\n' 'GET / HTTP/1.1\r\nHost: t\r\nX: a\0033b\r\n\r\n' \
    'GET / HTTP/1.1\r\nHost: t\r\nX: a\0177b\r\n\r\n' 'GET / HTTP/1.1\r\nHost: t\r\nX: a\rb\r\n\r\n' \
    'GET / HTTP/1.1\nHost: t\n\n' 'GET / HTTP/1.1\r\nHost: t\n\r\n' '\nGET / HTTP/1.1\r\nHost: t\r\n\r\n'; do
    _start=$(now)
    raw "$req"
    _took=$(awk -v a="$_start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
    head -n 1 "$_tmp.raw" | grep -qx 'HTTP/1.1 400 Bad Request' ||
        fail "'$req': no 400 after $_took s: '$(head -n 1 "$_tmp.raw")'"
done
raw 'GET / HTTP/1.0\r\n\r\n'
head -n 1 "$_tmp.raw" | grep -qx 'HTTP/1.1 200 OK' || fail "HTTP/1.0 without Host: no 200"
raw 'GET / HTTP/1.1\r\nHost: t\r\nX: a\tb\0200\0377\r\nConnection: close\r\n\r\n'
head -n 1 "$_tmp.raw" | grep -qx 'HTTP/1.1 200 OK' || fail "HTAB and obs-text in a value: no 200"

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
Accept-Ranges: bytes

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
Accept-Ranges: bytes
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
for req in 'BAD\r\n\r\n' 'GET /\r\n\r\n' 'GET / HTTP/2.0\r\n\r\n' 'GET / HTTP/1.1\r\nHost: t\r\nNo colon\r\n\r\n' \
    'GET / HTTP/1.1\r\nHost: t\r\n folded: x\r\n\r\n' 'GET / HTTP/1.1\r\nHost: t\r\nContent-Length: x1\r\n\r\n' \
    'GET /%zz HTTP/1.1\r\nHost: t\r\n\r\n'; do
    raw "$req"'GET / HTTP/1.1\r\nHost: t\r\n\r\n'
    head -n 1 "$_tmp.raw" | grep -qx 'HTTP/1.1 400 Bad Request' || fail "'$req': no 400: $(head -n 1 "$_tmp.raw")"
    [ "$(grep -c '^HTTP/' "$_tmp.raw")" = 1 ] || fail "'$req': the connection went on after a 400"
done
raw "GET / HTTP/1.1\\r\\nHost: t\\r\\nX-Big: $(awk 'BEGIN { for (i = 0; i < 70000; i++) printf "a" }')\\r\\n\\r\\n" -N
head -n 1 "$_tmp.raw" | grep -qx 'HTTP/1.1 400 Bad Request' || fail "a 70 KB header section: no 400"
raw 'POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'
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
for opt in --header-timeout --keepalive-timeout --io-timeout --max-connections; do
    for v in 0 -1 x 1x ''; do
        expect_usage_error "$BIN" 0 "$opt" "$v"
    done
    expect_usage_error "$BIN" 0 "$opt"
done
expect_usage_error "$BIN" 0 --header-timeout nan
expect_usage_error "$BIN" 0 --max-connections 1.5

# ---- time limits and --max-connections, with Python asyncio streams ----------
PY=${PYTHON:-python3}
LIMITS=$(dirname "$0")/http_server_limits.py
if "$PY" -c 'import asyncio, sys; sys.exit(sys.version_info < (3, 7))' 2>/dev/null; then
    start_server "$BIN" 0 "$WWW" --header-timeout 1 --keepalive-timeout 1.5 --io-timeout 1
    trap cleanup EXIT
    # Slow heads, silent and idle connections, a client that does not read;
    # curl is served meanwhile.
    bounded "$CLIENT_LIMIT" "$PY" "$LIMITS" timeouts "$PORT" /huge.bin 33554432 >"$_tmp.py" 2>&1 &
    py=$!
    sleep 0.3
    code=$(get -o /dev/null -w '%{http_code} %{time_total}' "http://127.0.0.1:$PORT/small.txt")
    wait "$py" || fail "the time limits: $(cat "$_tmp.py")"
    case $code in
        "200 0."*) ;;
        *) fail "curl beside the slow clients: got '$code', expected 200 within a second" ;;
    esac
    sed 's/^/    /' "$_tmp.py"
    stop_server
    [ ! -s "$ERR" ] || fail "the time limits: unexpected output on stderr"

    start_server "$BIN" 0 "$WWW" --max-connections 3
    trap cleanup EXIT
    bounded "$CLIENT_LIMIT" "$PY" "$LIMITS" maxconn "$PORT" 3 >"$_tmp.py" 2>&1 ||
        fail "--max-connections: $(cat "$_tmp.py")"
    code=$(get -H 'Connection: close' -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/")
    [ "$code" = 200 ] || fail "--max-connections 3: curl after the Python clients: got $code"
    sed 's/^/    /' "$_tmp.py"
    stop_server
    [ ! -s "$ERR" ] || fail "--max-connections: unexpected output on stderr"
    LIMITS_DONE="time limits and --max-connections;"
else
    echo "note: no $PY (3.7 or later): the time limits and --max-connections were not checked"
    LIMITS_DONE="(no python3: time limits and --max-connections not checked);"
fi

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
    "RFC 9112's Host, control bytes and bare LF; types, 304, 206, 416, index, 301;" \
    "links out of DIR refused, inside:$links; $LIMITS_DONE" \
    "--workers 2 and 4 spread 54 connections, stopped by SIGTERM and SIGINT;" \
    "SIGTERM as 64 workers start${EARLY:+ (before the ready line: $EARLY)}, start failures, usage errors"
