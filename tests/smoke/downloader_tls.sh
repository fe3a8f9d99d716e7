#!/bin/sh
# Smoke test for examples/downloader with https:// URLs (sh
# downloader_tls.sh BINARY HAVE_TLS). With a CA and certificates made with
# the openssl command, it fetches with --cacert, at once, files from a
# local `openssl s_server -WWW` and from http_server --tls (built next to
# it), by address and by name, and over plain http from another
# http_server: the right byte counts, status 0. Then, among good URLs that
# are still downloaded: an ftp:// URL, http to the TLS server, and a
# server whose certificate names another host are each reported on their
# line, with why (OpenSSL's reason for TLS), and the status is 1. Without
# --cacert, the private CA's server is refused with a certificate reason
# while an http URL in the same run is fetched. A --cacert file that is
# missing or holds no certificate is a bad command line (status 2).
# Built without TLS (HAVE_TLS 0): each https URL says that https is not
# available in this build, and the http ones are still fetched.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"

DL=$1
[ -x "$DL" ] || fail "not an executable: $DL"
SERVER=$(dirname "$DL")/http_server
[ -x "$SERVER" ] || fail "no http_server next to $DL"

BASE=$_tmp.d
WWW=$BASE/www
PIDS= # the servers other than SERVER_PID
cleanup() {
    # shellcheck disable=SC2086 # PIDS is a list of pids
    kill "$SERVER_PID" $PIDS 2>/dev/null
    rm -rf "$BASE"
    rm -f "$_tmp".*
}
mkdir -p "$WWW/d" || fail "cannot create $WWW"
trap cleanup EXIT
awk 'BEGIN { for (i = 0; i < 100; i++) printf "x" }' >"$WWW/a.txt"
dd if=/dev/urandom of="$WWW/d/big.bin" bs=1000 count=150 2>/dev/null || fail "cannot write big.bin"

# dl EXPECTED-STATUS ARGS...: run the downloader, its output in $OUT.
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
# expect_error URL REGEX: the line of URL is "URL: error: " and a reason
# that matches REGEX (an awk extended regular expression).
expect_error() {
    awk -v p="$1: error: " -v re="$2" \
        'index($0, p) == 1 && substr($0, length(p) + 1) ~ re { n++ } END { exit n != 1 }' "$OUT" ||
        fail "expected one line '$1: error: ...' with a reason matching /$2/"
}

# A plain http server, in both builds.
start_server_as plain "$SERVER" 0 "$WWW"
PIDS=$SERVER_PID
trap cleanup EXIT
PLAIN=http://127.0.0.1:$PORT
PLAIN_PORT=$PORT
SERVER_PID=

if [ "$HAVE_TLS" = 0 ]; then
    dl 1 "https://127.0.0.1:$PLAIN_PORT/a.txt" "$PLAIN/a.txt" "https://localhost/"
    expect_count "https://127.0.0.1:$PLAIN_PORT/a.txt: error: https $NOT_BUILT" 1
    expect_count "https://localhost/: error: https $NOT_BUILT" 1
    expect_count "$PLAIN/a.txt: 100 bytes" 1
    total 100 1
    dl 1 --cacert "$_tmp.none.pem" "https://127.0.0.1:$PLAIN_PORT/a.txt" "$PLAIN/a.txt"
    expect_count "https://127.0.0.1:$PLAIN_PORT/a.txt: error: https $NOT_BUILT" 1
    total 100 1
    ELAPSED=-
    pass "https URLs: not available in this build, each on its line; http ones fetched"
fi

need openssl
make_certs "$BASE/certs"
CA=$CERTS/ca.pem

# http_server --tls, and openssl s_server -WWW with the same certificate
# and with one for another host, all serving WWW.
start_server_as tls "$SERVER" 0 "$WWW" --tls "$CERTS/server.pem" "$CERTS/server.key"
trap cleanup EXIT
H=https://127.0.0.1:$PORT
TLS_PORT=$PORT
HNAME=https://localhost:$PORT
start_s_server sserver "$WWW" "$CERTS/server.pem" "$CERTS/server.key"
PIDS="$PIDS $S_PID"
S=https://127.0.0.1:$S_PORT
start_s_server other "$WWW" "$CERTS/other.pem" "$CERTS/other.key"
PIDS="$PIDS $S_PID"
O=https://127.0.0.1:$S_PORT

# Good URLs only, all at once: status 0.
dl 0 --cacert "$CA" "$H/a.txt" "$HNAME/d/big.bin" "$S/a.txt" "$S/d/big.bin" "$PLAIN/d/big.bin" "$H/"
expect_count "$H/a.txt: 100 bytes" 1
expect_count "$HNAME/d/big.bin: 150000 bytes" 1
expect_count "$S/a.txt: 100 bytes" 1
expect_count "$S/d/big.bin: 150000 bytes" 1
expect_count "$PLAIN/d/big.bin: 150000 bytes" 1
expect_count "$H/: 13 bytes" 1
expect_nlines 7
total 450213 6

# Bad ones among them: each reported on its line, the others fetched.
dl 1 --cacert "$CA" "$H/a.txt" ftp://127.0.0.1/x "$S/a.txt" "http://127.0.0.1:$TLS_PORT/a.txt" \
    "$O/a.txt" "$PLAIN/a.txt"
expect_count "$H/a.txt: 100 bytes" 1
expect_count "$S/a.txt: 100 bytes" 1
expect_count "$PLAIN/a.txt: 100 bytes" 1
expect_count "ftp://127.0.0.1/x: error: only http:// and https:// URLs are supported" 1
# (The TLS server fails the handshake on a plain request, and closes.)
expect_error "http://127.0.0.1:$TLS_PORT/a.txt" '^(Protocol error|Connection reset by peer)$'
expect_error "$O/a.txt" '^certificate verify failed: .*mismatch'
expect_nlines 7
total 300 3

# Without --cacert (the system's CA store): the private CA's server is
# refused, with a certificate reason; the http URL is still fetched.
dl 1 "$H/a.txt" "$PLAIN/a.txt"
expect_error "$H/a.txt" '^certificate verify failed: .*certificate'
expect_count "$PLAIN/a.txt: 100 bytes" 1
total 100 1

# A --cacert that cannot be used: a bad command line, nothing fetched.
dl 2 --cacert "$CERTS/missing.pem" "$H/a.txt"
[ -s "$OUT" ] && fail "--cacert with a missing file: printed '$(cat "$OUT")'"
grep -q "^downloader: --cacert $CERTS/missing.pem: No such file" "$_tmp.dlerr" ||
    fail "--cacert with a missing file: said '$(cat "$_tmp.dlerr")'"
dl 2 --cacert "$WWW/a.txt" "$H/a.txt"
grep -q "^downloader: --cacert $WWW/a.txt: " "$_tmp.dlerr" ||
    fail "--cacert with no certificate in it: said '$(cat "$_tmp.dlerr")'"

# The TLS server said nothing of the clients that gave up on it.
stop_server
[ -s "$_tmp.tls.err" ] && fail "http_server --tls wrote to stderr: $(cat "$_tmp.tls.err")"

pass "https from openssl s_server -WWW and http_server --tls with --cacert, with http;" \
    "ftp, http to a TLS server and a certificate for another host each reported;" \
    "an untrusted certificate refused; bad --cacert files"
