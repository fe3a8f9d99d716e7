# tls_lib.sh: helpers for the TLS smoke tests (NAME_tls.sh), sourced after
# lib.sh (POSIX sh and awk only, and the openssl command).
#
# Such a test runs as `sh NAME_tls.sh BINARY HAVE_TLS`: HAVE_TLS is 1 when
# the examples were built with libasyncio-tls, 0 when they must say that
# https or --tls is not available in this build (examples/CMakeLists.txt
# passes it, so that a build that lost TLS by mistake fails the test
# rather than skipping it).
#
#     make_certs DIR          a CA and certificates, made with `openssl`
#     start_server_as TAG BINARY ARGS...
#                             start_server, its output in $_tmp.TAG.out/.err
#     start_s_server TAG DIR CERT KEY
#                             `openssl s_server -WWW` serving the files of
#                             DIR over https; sets S_PID and S_PORT
#     expect_no_tls STATUS TEXT BINARY ARGS...
#                             BINARY exits with STATUS, saying TEXT on stderr

HAVE_TLS=$2
case $HAVE_TLS in
    0 | 1) ;;
    *) fail "usage: $0 PATH-TO-EXAMPLE HAVE_TLS (1: built with libasyncio-tls, 0: without)" ;;
esac

# The message of an example built without libasyncio-tls.
NOT_BUILT='is not available in this build (libasyncio-tls was not built)'

# make_certs DIR: make DIR (absolute in $CERTS) with, as PEM files, EC P-256
# keys and certificates valid for two days:
#   ca.pem, ca.key          the CA the tests trust (--cacert, -CAfile)
#   server.pem, server.key  signed by ca, for DNS:localhost and IP:127.0.0.1
#   other.pem, other.key    signed by ca, for DNS:other.example only
# with a configuration of its own, so that the system's openssl.cnf does
# not matter. Fails the test if openssl does.
CERTS=
make_certs() {
    mkdir -p "$1" || fail "cannot create $1"
    CERTS=$(cd "$1" && pwd) || fail "cannot enter $1"
    cat >"$CERTS/openssl.cnf" <<'END'
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[other]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:other.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
END
    _c=$CERTS
    _ec='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'
    # shellcheck disable=SC2086 # _ec is a list of options
    bounded "$CLIENT_LIMIT" openssl req -x509 -new -config "$_c/openssl.cnf" -extensions ca $_ec \
        -keyout "$_c/ca.key" -out "$_c/ca.pem" -days 2 -subj '/CN=libasyncio smoke test CA' \
        >"$_c/log" 2>&1 || fail "openssl could not make the CA: $(cat "$_c/log")"
    _serial=2
    for _n in server other; do
        # shellcheck disable=SC2086
        bounded "$CLIENT_LIMIT" openssl req -new -config "$_c/openssl.cnf" $_ec \
            -keyout "$_c/$_n.key" -out "$_c/$_n.csr" -subj "/CN=$_n" >"$_c/log" 2>&1 &&
            bounded "$CLIENT_LIMIT" openssl x509 -req -in "$_c/$_n.csr" -CA "$_c/ca.pem" \
                -CAkey "$_c/ca.key" -set_serial "$_serial" -days 2 -extfile "$_c/openssl.cnf" \
                -extensions "$_n" -out "$_c/$_n.pem" >"$_c/log" 2>&1 ||
            fail "openssl could not make the $_n certificate: $(cat "$_c/log")"
        _serial=$((_serial + 1))
    done
    bounded "$CLIENT_LIMIT" openssl verify -CAfile "$_c/ca.pem" "$_c/server.pem" "$_c/other.pem" \
        >"$_c/log" 2>&1 || fail "the certificates made do not verify: $(cat "$_c/log")"
}

# start_server_as TAG BINARY ARGS...: start_server (lib.sh), with the
# server's output in $_tmp.TAG.out and .err instead of $OUT and $ERR, for
# a test that runs several servers at once. Sets SERVER_PID and PORT; the
# caller keeps them and sets its trap again (start_server sets its own).
start_server_as() {
    _sa_out=$OUT _sa_err=$ERR
    OUT=$_tmp.$1.out ERR=$_tmp.$1.err
    shift
    start_server "$@"
    OUT=$_sa_out ERR=$_sa_err
}

# start_s_server TAG DIR CERT KEY: `openssl s_server -WWW` on a free port
# of 127.0.0.1, serving the files under DIR (it serves paths relative to
# its working directory) with CERT and KEY; its output in $_tmp.TAG.out.
# Waits (up to 10 s) for its "ACCEPT 127.0.0.1:PORT" line and sets S_PID
# (timeout's, which passes a kill on) and S_PORT. It lives SERVER_LIMIT s
# at most.
S_PID=
S_PORT=
start_s_server() {
    _ss_out=$_tmp.$1.out
    : >"$_ss_out"
    (cd "$2" && exec timeout --foreground -k 2 "$SERVER_LIMIT" openssl s_server -WWW \
        -accept 127.0.0.1:0 -cert "$3" -key "$4") </dev/null >"$_ss_out" 2>&1 &
    S_PID=$!
    _i=0
    while :; do
        S_PORT=$(sed -n 's/^ACCEPT .*:\([0-9][0-9]*\)$/\1/p' "$_ss_out" | head -n 1)
        [ -n "$S_PORT" ] && break
        kill -0 "$S_PID" 2>/dev/null || fail "openssl s_server exited before it listened: $(cat "$_ss_out")"
        _i=$((_i + 1))
        [ "$_i" -le 200 ] || fail "no 'ACCEPT 127.0.0.1:PORT' line from openssl s_server after 10 s"
        sleep 0.05
    done
}

# expect_no_tls STATUS TEXT BINARY ARGS...: BINARY ARGS exits at once with
# STATUS and says TEXT (a fixed string) on stderr: what an example built
# without libasyncio-tls does when asked for TLS.
expect_no_tls() {
    _nt_want=$1 _nt_text=$2
    shift 2
    bounded "$CLIENT_LIMIT" "$@" >"$_tmp.ntout" 2>"$_tmp.nterr"
    _nt_st=$?
    [ "$_nt_st" -eq "$_nt_want" ] ||
        fail "'$*' (built without TLS): status $_nt_st$(why "$_nt_st"), expected $_nt_want$(
            printf '\n'; cat "$_tmp.nterr")"
    grep -qF -- "$_nt_text" "$_tmp.nterr" ||
        fail "'$*' (built without TLS): no '$_nt_text' on stderr: $(cat "$_tmp.nterr")"
}
