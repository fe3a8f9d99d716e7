#!/bin/sh
# Smoke test for examples/echo_server --tls CERT KEY (sh echo_server_tls.sh
# BINARY HAVE_TLS), with a CA and a certificate for localhost and
# 127.0.0.1 made with the openssl command: `openssl s_client -CAfile CA
# -verify_return_error` sends lines, one of them 100 KB long, and gets back
# exactly what it sent, once and then three clients at once; a client that
# speaks plain text to it gets nothing back and the server goes on, saying
# nothing; SIGTERM with a client still connected closes it and ends the
# server with status 0. With --workers 2: 24 connections, each with a
# handshake of its own, all echoed and spread over both workers.
# Certificate and key files that are missing or do not match end it with
# status 1. Built without TLS (HAVE_TLS 0): --tls says it is not available
# in this build, with status 2.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"

BIN=$1
if [ "$HAVE_TLS" = 0 ]; then
    expect_no_tls 2 "echo_server: --tls $NOT_BUILT" "$BIN" 0 --tls cert.pem key.pem
    ELAPSED=-
    pass "--tls is not available in this build: said so, status 2"
fi

need openssl

BASE=$_tmp.d
PIDS=
cleanup() {
    # shellcheck disable=SC2086 # PIDS is a list of pids
    kill "$SERVER_PID" $PIDS 2>/dev/null
    rm -rf "$BASE"
    rm -f "$_tmp".*
}
mkdir -p "$BASE" || fail "cannot create $BASE"
trap cleanup EXIT
make_certs "$BASE/certs"
CA=$CERTS/ca.pem

IN=$_tmp.in
awk 'BEGIN {
    print "hello over TLS"
    print ""
    print "tabs\tand  spaces "
    for (i = 0; i < 10000; i++) printf "%010d", i   # a 100 KB line
    print ""
    for (i = 0; i < 1000; i++) print "line " i
    printf "no newline at the end"
}' >"$IN"

# Files that cannot serve: status 1 and why.
bounded "$CLIENT_LIMIT" "$BIN" 0 --tls "$CERTS/server.pem" "$CERTS/missing.key" 2>"$_tmp.e" >/dev/null
_st=$?
[ "$_st" -eq 1 ] || fail "--tls with a missing key: status $_st$(why "$_st"), expected 1"
grep -q "missing.key.*No such file" "$_tmp.e" || fail "--tls with a missing key: said '$(cat "$_tmp.e")'"
bounded "$CLIENT_LIMIT" "$BIN" 0 --tls "$CERTS/other.pem" "$CERTS/server.key" 2>"$_tmp.e" >/dev/null
_st=$?
[ "$_st" -eq 1 ] || fail "--tls with another certificate's key: status $_st$(why "$_st"), expected 1"
grep -q "^echo_server: --tls .*: " "$_tmp.e" || fail "--tls with another certificate's key: said '$(cat "$_tmp.e")'"

# tls_echo IN OUT: send the file IN through openssl s_client and keep what
# comes back in OUT (s_client's messages in OUT.err). s_client verifies
# the server's certificate (for 127.0.0.1) against the CA; -brief: only
# the data on stdout; -nocommands: lines starting with Q or R are data too.
# Its input ends (then it sends close_notify and exits) once OUT has as
# many bytes as IN, or after 10 s: s_client leaves at the end of its input
# without waiting for more.
# shellcheck disable=SC2094 # OUT is read while s_client writes it, on purpose
tls_echo() {
    : >"$2"
    _want=$(($(wc -c <"$1")))
    {
        cat "$1"
        _k=0
        while [ "$(($(wc -c <"$2")))" -lt "$_want" ] && [ "$_k" -lt 200 ]; do
            _k=$((_k + 1))
            sleep 0.05
        done
    } | bounded "$CLIENT_LIMIT" openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$CA" \
        -verify_return_error -verify_ip 127.0.0.1 -brief -nocommands >"$2" 2>"$2.err"
}

start_server "$BIN" 0 --tls "$CERTS/server.pem" "$CERTS/server.key"
trap cleanup EXIT # start_server set its own

tls_echo "$IN" "$_tmp.out1" || fail "s_client exited with status $?$(why $?): $(cat "$_tmp.out1.err")"
cmp -s "$IN" "$_tmp.out1" || fail "what came back through s_client differs from what was sent"
grep -q '^Verification: OK' "$_tmp.out1.err" || fail "s_client did not verify the certificate"

# Three at once (each tls_echo in a subshell: its s_client is bounded).
for i in 1 2 3; do
    tls_echo "$IN" "$_tmp.many$i" &
    PIDS="$PIDS $!"
done
for p in $PIDS; do
    wait "$p" || fail "one of three concurrent s_client exited with status $?$(why $?)"
done
PIDS=
for i in 1 2 3; do
    cmp -s "$IN" "$_tmp.many$i" || fail "connection $i of three: the echo differs from what was sent"
done

# Plain text to the TLS port: no handshake, nothing echoed; the server
# goes on without a word.
if command -v nc >/dev/null 2>&1; then
    printf 'plain hello\n' | bounded "$CLIENT_LIMIT" nc -w 5 127.0.0.1 "$PORT" >"$_tmp.plain" 2>&1
    grep -q 'plain hello' "$_tmp.plain" && fail "a plain-text client got an echo from the TLS server"
    printf 'again\n' >"$_tmp.in2"
    tls_echo "$_tmp.in2" "$_tmp.out2" || fail "s_client after a plain client: status $?$(why $?)"
    cmp -s "$_tmp.in2" "$_tmp.out2" || fail "s_client after a plain client: got '$(cat "$_tmp.out2")'"
fi

# A client that stays connected (its input a FIFO we hold open) when the
# server is told to stop: the server closes it (close_notify) and s_client
# leaves.
mkfifo "$_tmp.fifo" || fail "mkfifo failed"
timeout --foreground -k 2 "$CLIENT_LIMIT" openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$CA" \
    -verify_return_error -brief -nocommands <"$_tmp.fifo" >"$_tmp.idle" 2>&1 &
PIDS=$!
exec 3>"$_tmp.fifo"
echo ping >&3
i=0
until grep -qx ping "$_tmp.idle"; do
    i=$((i + 1))
    [ "$i" -le 200 ] || fail "no echo of ping after 10 s"
    sleep 0.05
done
stop_server
wait "$PIDS"
_st=$?
exec 3>&-
[ "$_st" -lt 124 ] || fail "the connected s_client did not end when the server stopped: status $_st$(why $_st)"
PIDS=
[ ! -s "$ERR" ] || fail "the server wrote to stderr"

# --workers 2: one context for both; every connection a new handshake.
start_server "$BIN" 0 --workers 2 --tls "$CERTS/server.pem" "$CERTS/server.key"
trap cleanup EXIT
i=0
while [ "$i" -lt 24 ]; do
    printf 'hello %d\n' "$i" >"$_tmp.w.in"
    tls_echo "$_tmp.w.in" "$_tmp.w" || fail "--workers 2: s_client exited with status $?$(why $?)"
    [ "$(cat "$_tmp.w")" = "hello $i" ] || fail "--workers 2: connection $i got '$(cat "$_tmp.w")'"
    i=$((i + 1))
done
stop_server
[ ! -s "$ERR" ] || fail "--workers 2: the server wrote to stderr"
expect_workers 2 24

pass "s_client verified the server and got its bytes back, alone and three at once;" \
    "a plain client refused quietly; SIGTERM closed a connected client;" \
    "--workers 2 spread 24 handshakes; bad certificate files"
