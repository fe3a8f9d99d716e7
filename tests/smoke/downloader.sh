#!/bin/sh
# Smoke test for examples/downloader: http_server (built next to it) serves
# files of known sizes; downloads of good URLs only exit 0 with the right
# byte counts; a 404, a closed port and URLs that cannot be fetched (each
# on its line, with why) are reported while the others are downloaded, and
# exit 1; a bad command line exits 2. (https: downloader_tls.sh.) Where OpenBSD's nc and /proc/net/tcp are there, one-shot nc
# servers check chunked bodies (after a 100 Continue), bodies that run to
# the end of the stream, and a body cut short.
. "$(dirname "$0")/lib.sh"

DL=$1
[ -x "$DL" ] || fail "not an executable: $DL"
SERVER=$(dirname "$DL")/http_server
[ -x "$SERVER" ] || fail "no http_server next to $DL"

WWW=$_tmp.www
FAKES=
cleanup() {
    # shellcheck disable=SC2086 # FAKES is a list of pids
    kill "$SERVER_PID" $FAKES 2>/dev/null
    rm -rf "$WWW"
    rm -f "$_tmp".*
}
mkdir -p "$WWW/d" || fail "cannot create $WWW"
trap cleanup EXIT
awk 'BEGIN { for (i = 0; i < 100; i++) printf "x" }' >"$WWW/a.txt"
: >"$WWW/empty"
dd if=/dev/urandom of="$WWW/d/big.bin" bs=1000 count=150 2>/dev/null || fail "cannot write big.bin"
printf 'z' >"$WWW/d/one"

# free_ports TAG...: one port per TAG that nothing listens on (as many
# http_servers took them at once, so they differ, then left). Each runs
# under timeout(1), which passes the kill on.
free_ports() {
    _pids=
    for _n in "$@"; do
        : >"$_tmp.fp$_n" # before the server starts: no old line in it
        timeout --foreground -k 2 "$SERVER_LIMIT" "$SERVER" 0 >>"$_tmp.fp$_n" 2>&1 &
        _pids="$_pids $!"
    done
    for _n in "$@"; do
        _i=0
        until grep -q '^listening on ' "$_tmp.fp$_n" || [ "$_i" -gt 200 ]; do
            _i=$((_i + 1))
            sleep 0.05
        done
        sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$_tmp.fp$_n"
    done
    # shellcheck disable=SC2086 # a list of pids
    kill $_pids 2>/dev/null
    # shellcheck disable=SC2086
    wait $_pids
}
CLOSED=$(free_ports c)
[ -n "$CLOSED" ] || fail "could not find a free port"

start_server "$SERVER" 0 "$WWW"
trap cleanup EXIT # start_server set its own
URL=http://127.0.0.1:$PORT

# dl EXPECTED-STATUS URL...: run the downloader, its output in $OUT.
dl() {
    _want=$1
    shift
    bounded "$CLIENT_LIMIT" "$DL" "$@" >"$OUT" 2>"$_tmp.dlerr"
    _status=$?
    [ "$_status" -eq "$_want" ] || fail "downloader $*: exit status $_status$(why $_status), expected $_want$(
        printf '\n'; cat "$_tmp.dlerr")"
}
# total BYTES URLS: the total line says so.
total() {
    grep -q "^total: $1 bytes from $2 URLs in [0-9]*\.[0-9][0-9][0-9] s\$" "$OUT" ||
        fail "expected 'total: $1 bytes from $2 URLs in ... s'"
}

# Only good URLs, all at once (the same one twice too).
dl 0 "$URL/a.txt" "$URL/d/big.bin" "$URL/" "$URL/empty" "$URL/d/one" "$URL/a.txt"
expect_count "$URL/a.txt: 100 bytes" 2
expect_count "$URL/d/big.bin: 150000 bytes" 1
expect_count "$URL/: 13 bytes" 1
expect_count "$URL/empty: 0 bytes" 1
expect_count "$URL/d/one: 1 bytes" 1
expect_nlines 7
total 150214 6

# A 404 and a closed port fail; the good one still counts.
dl 1 "$URL/missing.txt" "http://127.0.0.1:$CLOSED/" "$URL/d/big.bin"
expect_count "$URL/missing.txt: HTTP 404" 1
expect_count "http://127.0.0.1:$CLOSED/: error: Connection refused" 1
expect_count "$URL/d/big.bin: 150000 bytes" 1
expect_nlines 4
total 150000 1

# URLs that cannot be fetched are reported, each on its line with why, and
# the others are downloaded all the same; then the exit status is 1.
dl 1 "$URL/a.txt" ftp://127.0.0.1/ garbage "http://" "http://:80/" "http://127.0.0.1:99999/" \
    "http://127.0.0.1:x/" "http://user@127.0.0.1/" "http://127.0.0.1/a b" "$URL/d/one"
expect_count "ftp://127.0.0.1/: error: only http:// and https:// URLs are supported" 1
expect_count "garbage: error: only http:// and https:// URLs are supported" 1
expect_count "http://: error: no host" 1
expect_count "http://:80/: error: no host" 1
expect_count "http://127.0.0.1:99999/: error: bad port" 1
expect_count "http://127.0.0.1:x/: error: bad port" 1
expect_count "http://user@127.0.0.1/: error: user names are not supported" 1
expect_count "http://127.0.0.1/a b: error: spaces and control characters must be percent-encoded in the path" 1
expect_count "$URL/a.txt: 100 bytes" 1
expect_count "$URL/d/one: 1 bytes" 1
expect_nlines 11
total 101 2
[ -s "$_tmp.dlerr" ] && fail "downloader with bad URLs: wrote '$(cat "$_tmp.dlerr")' on stderr"

# A bad command line: nothing is fetched, status 2 and a usage line.
for args in "" "--nope $URL/a.txt" "$URL/a.txt --cacert"; do
    # shellcheck disable=SC2086 # the words of args
    dl 2 $args
    [ -s "$OUT" ] && fail "downloader $args: printed '$(cat "$OUT")' for a bad command line"
    grep -q '^usage: downloader ' "$_tmp.dlerr" || fail "downloader $args: no usage line"
done

stop_server

# Answers http_server never gives, from one-shot nc servers.
if nc -h 2>&1 | grep -q OpenBSD && [ -r /proc/net/tcp ]; then # -N and -l HOST PORT
    # fake PORT RESPONSE: answer one connection on PORT with RESPONSE
    # (FAKES gets the pid of timeout, which passes a kill on to nc).
    fake() {
        printf '%b' "$2" | timeout --foreground -k 2 "$CLIENT_LIMIT" nc -N -l 127.0.0.1 "$1" >/dev/null 2>&1 &
        FAKES="$FAKES $!"
        _hex=$(printf '%04X' "$1")
        _i=0
        until grep -q "0100007F:$_hex 00000000:0000 0A" /proc/net/tcp; do
            _i=$((_i + 1))
            [ "$_i" -le 200 ] || fail "nc did not listen on port $1"
            sleep 0.05
        done
    }
    # shellcheck disable=SC2046 # three ports, one word each
    set -- $(free_ports 1 2 3)
    [ $# -eq 3 ] || fail "could not find free ports"
    P1=$1 P2=$2 P3=$3
    fake "$P1" 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\nA\r\n, world!!!\r\n0\r\nTrailer: t\r\n\r\n'
    fake "$P2" 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nup to the end'
    fake "$P3" 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort'
    dl 1 "http://127.0.0.1:$P1/chunked" "http://127.0.0.1:$P2/eof" "http://127.0.0.1:$P3/short"
    expect_count "http://127.0.0.1:$P1/chunked: 15 bytes" 1
    expect_count "http://127.0.0.1:$P2/eof: 13 bytes" 1
    expect_count "http://127.0.0.1:$P3/short: error: Protocol error" 1
    total 28 2
fi
pass "byte counts, 404, connection refused, bad URLs, chunked and end-of-stream bodies"
