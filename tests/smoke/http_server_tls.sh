#!/bin/sh
# Smoke test for examples/http_server --tls CERT KEY (sh http_server_tls.sh
# BINARY HAVE_TLS), with a CA and a certificate for localhost and
# 127.0.0.1 made with the openssl command: curl --cacert checks the hello
# answer, a 200 KB file (byte for byte), the name localhost, and keep-alive
# (two transfers on one connection); openssl s_client checks that ALPN
# agrees on http/1.1; a client that speaks plain HTTP to it, and one that
# does not trust its certificate, fail without disturbing it; SIGTERM
# stops it with status 0 and nothing on stderr. With --workers 2: 20
# connections, each with a handshake of its own, answered and spread over
# both workers. Certificate and key files that are missing or do not match
# end it with status 1; --tls without its KEY is a usage error.
# Built without TLS (HAVE_TLS 0): --tls says it is not available in this
# build, with status 2.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"

BIN=$1
if [ "$HAVE_TLS" = 0 ]; then
    expect_no_tls 2 "http_server: --tls $NOT_BUILT" "$BIN" 0 --tls cert.pem key.pem
    expect_no_tls 2 "http_server: --tls $NOT_BUILT" "$BIN" 0 --workers 2 --tls cert.pem key.pem
    ELAPSED=-
    pass "--tls is not available in this build: said so, status 2"
fi

need curl openssl

BASE=$_tmp.d
WWW=$BASE/www
cleanup() { kill "$SERVER_PID" 2>/dev/null; rm -rf "$BASE"; rm -f "$_tmp".*; }
mkdir -p "$WWW/sub" || fail "cannot create $WWW"
trap cleanup EXIT
printf 'a small file\n' >"$WWW/small.txt"
dd if=/dev/urandom of="$WWW/sub/big.bin" bs=1024 count=200 2>/dev/null ||
    fail "cannot write $WWW/sub/big.bin"
make_certs "$BASE/certs"
CA=$CERTS/ca.pem

# Files that cannot serve: status 1 and why; --tls CERT without KEY: usage.
bounded "$CLIENT_LIMIT" "$BIN" 0 --tls "$CERTS/missing.pem" "$CERTS/server.key" 2>"$_tmp.e" >/dev/null
_st=$?
[ "$_st" -eq 1 ] || fail "--tls with a missing certificate: status $_st$(why "$_st"), expected 1"
grep -q "missing.pem.*No such file" "$_tmp.e" || fail "--tls with a missing certificate: said '$(cat "$_tmp.e")'"
bounded "$CLIENT_LIMIT" "$BIN" 0 --tls "$CERTS/server.pem" "$CERTS/other.key" 2>"$_tmp.e" >/dev/null
_st=$?
[ "$_st" -eq 1 ] || fail "--tls with another certificate's key: status $_st$(why "$_st"), expected 1"
grep -q "^http_server: --tls .*: " "$_tmp.e" || fail "--tls with another certificate's key: said '$(cat "$_tmp.e")'"
expect_usage_error "$BIN" 0 --tls "$CERTS/server.pem"

start_server "$BIN" 0 "$WWW" --tls "$CERTS/server.pem" "$CERTS/server.key"
trap cleanup EXIT # start_server set its own
URL=https://127.0.0.1:$PORT

get() { bounded "$CLIENT_LIMIT" curl -sS --max-time 5 --cacert "$CA" "$@"; }

code=$(get -o "$_tmp.body" -w '%{http_code} %{content_type}' "$URL/") || fail "GET / failed"
[ "$code" = "200 text/plain" ] || fail "GET /: got '$code', expected '200 text/plain'"
printf 'Hello, World!' >"$_tmp.hello"
cmp -s "$_tmp.hello" "$_tmp.body" || fail "GET /: body is '$(cat "$_tmp.body")'"

code=$(get -o "$_tmp.big" -w '%{http_code} %{size_download}' "$URL/sub/big.bin") || fail "GET /sub/big.bin failed"
[ "$code" = "200 204800" ] || fail "GET /sub/big.bin: got '$code', expected '200 204800'"
cmp -s "$WWW/sub/big.bin" "$_tmp.big" || fail "GET /sub/big.bin: the bytes differ from the file"

# By name: curl checks the certificate's DNS name (and sends it as SNI).
code=$(get -o "$_tmp.body" -w '%{http_code}' --resolve "localhost:$PORT:127.0.0.1" \
    "https://localhost:$PORT/small.txt") || fail "GET https://localhost:$PORT/small.txt failed"
if [ "$code" != 200 ] || ! grep -qx 'a small file' "$_tmp.body"; then
    fail "GET https://localhost:$PORT/small.txt: got $code, '$(cat "$_tmp.body")'"
fi

# Keep-alive: the second transfer reuses the first one's TLS connection.
conns=$(get -o /dev/null -o /dev/null -w '%{num_connects} ' "$URL/" "$URL/small.txt") ||
    fail "keep-alive: curl failed"
[ "$conns" = "1 0 " ] || fail "keep-alive: new connections per transfer were '$conns', expected '1 0 '"

# ALPN: the server agrees on http/1.1; the certificate verifies.
bounded "$CLIENT_LIMIT" openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$CA" -verify_return_error \
    -alpn http/1.1 </dev/null >"$_tmp.sc" 2>&1 || fail "openssl s_client failed: $(cat "$_tmp.sc")"
grep -q '^ALPN protocol: http/1.1$' "$_tmp.sc" || fail "ALPN: no 'ALPN protocol: http/1.1' from s_client"
grep -q 'Verify return code: 0 (ok)' "$_tmp.sc" || fail "s_client: the certificate did not verify"

# Plain HTTP to it, and a client without the CA: both fail, the server
# goes on and says nothing (a failed handshake is no error of its own).
bounded "$CLIENT_LIMIT" curl -sS --max-time 5 -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null &&
    fail "plain http to the TLS server succeeded"
bounded "$CLIENT_LIMIT" curl -sS --max-time 5 -o /dev/null "$URL/" 2>"$_tmp.e" &&
    fail "curl without the CA trusted the server's certificate"
grep -qi 'certificate' "$_tmp.e" || fail "curl without the CA: '$(cat "$_tmp.e")'"
code=$(get -o /dev/null -w '%{http_code}' "$URL/") || fail "GET / after the failed clients failed"
[ "$code" = 200 ] || fail "GET / after the failed clients: got $code"

stop_server
[ -s "$ERR" ] && fail "unexpected output on stderr"

# --workers 2: one context for both; every connection a new handshake.
start_server "$BIN" 0 "$WWW" --workers 2 --tls "$CERTS/server.pem" "$CERTS/server.key"
trap cleanup EXIT
URL=https://127.0.0.1:$PORT
urls=
i=0
while [ "$i" -lt 20 ]; do
    urls="$urls $URL/"
    i=$((i + 1))
done
# shellcheck disable=SC2086 # a list of URLs
get -H 'Connection: close' -w ' %{http_code} %{num_connects}\n' $urls >"$_tmp.many" ||
    fail "--workers 2: curl of 20 URLs failed"
expect_count 'Hello, World! 200 1' 20 "$_tmp.many"
stop_server
[ ! -s "$ERR" ] || fail "--workers 2: unexpected output on stderr"
expect_workers 2 20

pass "https with curl --cacert: hello, a 200 KB file, by name, keep-alive; ALPN http/1.1;" \
    "plain http and an untrusted client refused quietly; --workers 2 spread 20 handshakes;" \
    "bad certificate files, usage error"
