#!/usr/bin/env bash
# bench/tls.sh: the TLS benchmarks (issue 21): examples/http_server --tls
# against nginx, one worker each, the same certificate and key, TLS 1.3,
# the same cipher suite and key exchange. Builds libasyncio's http_server
# (with libasyncio-tls) in Release and the load generators in bench/net/,
# runs each workload against ours and nginx, alternating them within every
# round, and prints one table of medians, paired ratios and the targets.
#
#   bench/tls.sh                                  11 rounds of all (~4 min)
#   ROUNDS=1 SECS=1 bench/tls.sh                  a quick check
#   WORKLOADS="handshake bulk" bench/tls.sh       only some of keepalive handshake bulk
#
# Workloads (servers pinned to CPU 0, the load generators to CPU 1):
#   keepalive  wrk -t1 -c100 against https://127.0.0.1:PORT/, both servers
#              answering "Hello, World!" at / (ours from its code, nginx
#              from memory), the connections kept alive: requests per
#              second and server CPU per request.
#   handshake  full TLS handshakes per second: bench/net/tls_load hs, 16
#              connections at a time (HS_CONNS), each a new TCP connection,
#              a full handshake, one GET / with "Connection: close" and the
#              server's close, then the next. It never resumes a session (a
#              new SSL object each time, no client session cache; it
#              checks SSL_session_reused() and a run with a resumed
#              handshake fails). wrk is not used here: it reconnects with
#              SSL_clear(), which keeps the session, and it resumes when the
#              server issues tickets (seen with nginx with tickets on: 1375
#              of 1379 "Connection: close" requests resumed).
#   bulk       a BULK_MIB (100) MiB file of random bytes downloaded over one
#              keep-alive connection, again and again (bench/net/tls_load
#              get: GET /bulk.bin, the body read and dropped): MiB per
#              second and server CPU per MiB. Ours serves it from the
#              directory given to http_server (read in 64 KiB chunks, see
#              examples/http_server.c), nginx from the same directory (root;
#              sendfile off and its default buffers: without kernel TLS,
#              which neither uses, nginx reads and encrypts as ours does).
# Taking turns: both servers run at once and are loaded in turn, so that
# the machine's drift falls on both alike (bench/net.sh says why).
# keepalive: wrk cannot take turns itself: one wrk runs per server and
# bench/net/alternate lets them run in turn, SLICE seconds each, stopping
# the others (SIGSTOP); a rate is the requests over the time its wrk ran
# (alternate's active_s). handshake and bulk: one tls_load loads the
# servers in turn itself, SLICE seconds each (forwards, then backwards),
# until each has had SECS seconds; at the end of a slice it starts no new
# request and the slice ends when those in flight are done (bulk: a slice
# is thus one whole 100 MiB download), so a server has nothing queued while
# the other has its turn. (Stopping the client instead, as for wrk, leaves
# a server up to HS_CONNS handshakes, ~25 ms of CPU, or a socket buffer's
# worth of records to finish on CPU 0 during the other's slice: measured
# so, nginx was credited with 1.04 CPUs over its slices and ours with 0.95,
# and the handshake ratio was 0.89x where the CPU per handshake differed by
# 4%.) A
# rate is the handshakes (MiB) over the server's slices' time. Each server
# first gets a warm-up run alone of 1 s (keepalive) or 0.5 s (the others;
# bulk: at least one whole download), not counted.
# Server CPU per request: the CPU time of all the server's threads
# (/proc/PID/task/*/schedstat; nginx: master + worker) over the run (a
# server waiting for its turn spends next to nothing) divided by its
# requests (handshakes; bulk: per MiB).
#
# TLS: one certificate and key for both servers, made in the results
# directory by the openssl command: RSA-2048 by default (KEY=p256: ECDSA
# P-256), self-signed, CN=localhost. RSA because with it the server's side
# of a handshake (a 2048-bit signature, ~0.9 ms here) costs several times
# the client's, so the handshake row measures the servers; with P-256 the
# client's side (two ECDSA verifications) costs more than the server's and
# the load generator would bound both. Only the clients force the protocol:
# they offer TLS 1.3 alone, the cipher suite CIPHERSUITE
# (TLS_AES_128_GCM_SHA256) alone and the group X25519 alone (wrk through
# OPENSSL_CONF: a config file in the results directory with a
# system_default section, checked to take effect: without it wrk gets
# TLS_AES_256_GCM_SHA384; tls_load through its options), so both servers
# negotiate the same; tls_load check asks each server once per run and
# round, and its answer (version, cipher) is in rR-W-IMPL-check.txt. nginx
# (bench/net/nginx-tls.conf): TLSv1.3 only, ssl_session_cache off,
# session tickets at nginx's default (on); ours: the library's defaults:
# both send two encrypted TLS 1.3 tickets per handshake (the clients never
# resume; the tickets each server sends per connection are counted,
# tickets_per_conn in raw.txt). With nginx's tickets off, nginx's two
# tickets are stateful ones that cost no encryption, about 4% of a
# handshake's CPU that ours would spend and nginx not. The handshake row
# does no certificate verification on the client (SSL_VERIFY_NONE; the
# server's signature over the handshake is still checked): the same for
# both.
#
# Targets (issue 21): keepalive: ours >= nginx's requests per second and
# ours <= nginx's CPU per request; handshake and bulk: ours >= 0.95x
# nginx's rate. Ratios are ours vs the peer of the row, paired within a
# round (the servers of a round ran in turn), their median over the rounds
# judged against the target.
#
# Environment:
#   ROUNDS       rounds (default 11)
#   SECS         seconds of running time per server and measurement
#                (default 2: wrk's 100 connections start with 100 full
#                handshakes, ~0.1 s of a server's CPU with RSA-2048, which
#                a 1 s run would count as 10% of its time)
#   SLICE        seconds a server is loaded before the next (default 0.05;
#                handshake and bulk: then until its requests in flight are
#                done)
#   WORKLOADS    which of keepalive handshake bulk to run (default all)
#   HS_CONNS     connections at a time of the handshake workload (default 16)
#   BULK_MIB     the bulk file's size in MiB (default 100)
#   KEY          rsa2048 (default) or p256: the certificate's key
#   CIPHERSUITE  the TLS 1.3 suite the clients offer (default
#                TLS_AES_128_GCM_SHA256)
#   BUILD        build directory (default bench/results/build-tls)
#   OURS         where our http_server is (default $BUILD/examples, built
#                here; another directory is used as is)
#   PORT_BASE    first port tried for a server (default 18700)
#
# As root, installs what is missing with apt-get: build-essential cmake
# libssl-dev openssl nginx-light wrk. When our http_server is missing, does
# not build, or does not serve TLS (a build without libasyncio-tls says
# "--tls is not available"), the workloads run nginx only; without wrk,
# keepalive is skipped. ASYNCIO_BUSY_POLL_US and ASYNCIO_BACKEND are unset:
# the library's defaults. Every process started here is stopped by its pid,
# also on errors and Ctrl-C. Raw output (and the certificate, the key and
# the clients' OpenSSL config) goes to bench/results/tls-<timestamp>/; the
# bulk file lives in a scratch directory, removed at the end.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
netsrc=$here/net
ROUNDS=${ROUNDS:-11}
SECS=${SECS:-2}
SLICE=${SLICE:-0.05}
WORKLOADS=${WORKLOADS:-keepalive handshake bulk}
HS_CONNS=${HS_CONNS:-16}
BULK_MIB=${BULK_MIB:-100}
KEY=${KEY:-rsa2048}
CIPHERSUITE=${CIPHERSUITE:-TLS_AES_128_GCM_SHA256}
BUILD=${BUILD:-$here/results/build-tls}
OURS=${OURS:-$BUILD/examples}
PORT_BASE=${PORT_BASE:-18700}
export PATH=$PATH:/usr/sbin:/sbin # nginx lives in /usr/sbin
unset ASYNCIO_BUSY_POLL_US ASYNCIO_BACKEND OPENSSL_CONF

# shellcheck source=bench/lib.sh
. "$here/lib.sh"
check_settings tls.sh "keepalive handshake bulk" ROUNDS SECS HS_CONNS BULK_MIB PORT_BASE
case $KEY in rsa2048 | p256) ;; *) echo "tls.sh: KEY must be rsa2048 or p256" >&2; exit 2 ;; esac
case $CIPHERSUITE in TLS_* ) ;; *) echo "tls.sh: CIPHERSUITE must be a TLS 1.3 suite (TLS_...)" >&2; exit 2 ;; esac
start_s=$(date +%s)

# ---- what is needed -------------------------------------------------------
missing=()
command -v nginx >/dev/null || missing+=(nginx-light)
command -v openssl >/dev/null || missing+=(openssl)
[ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
if wants keepalive; then command -v wrk >/dev/null || missing+=(wrk); fi
install_with_build_tools tls.sh "${missing[@]}"
command -v openssl >/dev/null || { echo "tls.sh: openssl is needed" >&2; exit 1; }

# ---- where the output goes ------------------------------------------------
new_results tls
scratch=$(mktemp -d "${TMPDIR:-/tmp}/asyncio-tls.XXXXXX")

# ---- processes: every one started here is stopped by its pid --------------
pids=() # servers and background load generators, in start order
cleanup() {
    stop_all
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- build ----------------------------------------------------------------
blog=$out/build.txt
build_ours "$blog" http_server
nbin=$BUILD/net
build_net_tools "$blog" alternate
# tls_load needs OpenSSL (build_net_tools links nothing)
cc -O2 -std=gnu11 -Wall -Wextra -o "$nbin/tls_load" "$netsrc/tls_load.c" -lssl -lcrypto 2>>"$blog" ||
    { echo "tls.sh: $netsrc/tls_load.c does not build (see $blog; libssl-dev?)" >&2; exit 1; }

# ---- the certificate, the clients' OpenSSL config, the bulk file ----------
cert=$out/cert.pem
key=$out/key.pem
case $KEY in
    rsa2048) kopt=(-newkey rsa:2048) ;;
    p256) kopt=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1) ;;
esac
openssl req -x509 "${kopt[@]}" -nodes -keyout "$key" -out "$cert" -days 30 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" >"$out/openssl-req.txt" 2>&1 ||
    { echo "tls.sh: openssl req failed (see $out/openssl-req.txt)" >&2; exit 1; }
# What the clients offer: wrk takes it from here (OPENSSL_CONF), tls_load
# from its options (the same values).
ccnf=$out/openssl-client.cnf
cat >"$ccnf" <<EOF
# bench/tls.sh: the clients' OpenSSL config (OPENSSL_CONF of wrk and tls_load)
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MinProtocol = TLSv1.3
MaxProtocol = TLSv1.3
Ciphersuites = $CIPHERSUITE
Groups = X25519
EOF
docroot=$scratch/www
mkdir -p "$docroot"
bulk_bytes=$((BULK_MIB * 1048576))
if wants bulk; then
    head -c "$bulk_bytes" /dev/urandom >"$docroot/bulk.bin"
fi
# nginx started as root runs its worker as nobody: the file must be readable
# by all, and the directories (mktemp's are 0700) open to all
chmod a+rx "$scratch" "$docroot"
[ ! -f "$docroot/bulk.bin" ] || chmod a+r "$docroot/bulk.bin"
client=(env OPENSSL_CONF="$ccnf")
tls_opts=(--ciphersuites "$CIPHERSUITE" --groups X25519 --sni localhost)

# ---- machine set-up -------------------------------------------------------
impls=(ours nginx)
command -v nginx >/dev/null || { echo "tls.sh: no nginx: its runs skipped" >&2; impls=(ours); }
if wants keepalive && ! command -v wrk >/dev/null; then
    echo "tls.sh: no wrk: keepalive skipped" >&2
    WORKLOADS=$(echo " $WORKLOADS " | sed 's/ keepalive / /; s/^ *//; s/ *$//')
fi
pin_two_cpus

{
    bench_header "libasyncio TLS benchmarks"
    echo "peers:   $(nginx -v 2>&1 | sed 's/.*: //') (1 worker), $(wrk -v 2>&1 | head -n 1 | awk '{print $1, $2}')," \
        "$(openssl version | awk '{print $1, $2}') (both servers and the clients)"
    echo "tls:     TLSv1.3, $CIPHERSUITE, X25519 (offered by the clients alone), certificate" \
        "$(openssl x509 -in "$cert" -noout -text | sed -n 's/^ *Public Key Algorithm: //p; s/^ *Public-Key: //p' | tr '\n' ' ')" \
        "self-signed, no client verification, no resumption"
    echo "runs:    ROUNDS=$ROUNDS SECS=$SECS SLICE=$SLICE WORKLOADS=\"$WORKLOADS\" HS_CONNS=$HS_CONNS" \
        "BULK_MIB=$BULK_MIB, pinned: ${pin_srv[*]:-no} / ${pin_load[*]:-no}"
} | tee "$out/header.txt"
echo

# ---- servers --------------------------------------------------------------
next_port=$PORT_BASE

# start_nginx_tls ROUND WORKLOAD: nginx (bench/net/nginx-tls.conf) on $port;
# sets spid and cpids (the master and its worker). 1 if it did not start.
start_nginx_tls() {
    local round=$1 w=$2 t0=$SECONDS d=$scratch/nginx-$1-$2 i
    rm -rf "$d"
    mkdir -p "$d"
    sed -e "s|@DIR@|$d|g" -e "s|@PORT@|$port|g" -e "s|@CERT@|$cert|g" -e "s|@KEY@|$key|g" \
        -e "s|@ROOT@|$docroot|g" "$netsrc/nginx-tls.conf" >"$d/nginx.conf"
    if ! serve "$round" "$w" nginx "$t0" nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf"; then
        cat "$d/error.log" >>"$out/r$round-$w-nginx-server.txt" 2>/dev/null || true
        return 1
    fi
    local wpids=()
    for ((i = 0; i < 100; i++)); do # the master listens before it forks
        mapfile -t wpids < <(children "$spid")
        [ ${#wpids[@]} -ge 1 ] && break
        sleep 0.05
    done
    cpids=("$spid" "${wpids[@]}")
    pids+=("${wpids[@]}") # stopped by the master; on the list in case it is not
}

# start_tls ROUND WORKLOAD IMPL: ours (examples/http_server PORT DOCROOT
# --tls CERT KEY, one loop) or nginx on a new port, then one GET checked
# with tls_load check (/ or the bulk file: a 200 of the right length, TLS
# 1.3 and CIPHERSUITE); sets cpids, the processes whose CPU counts (every
# thread of each), the first the one to stop. 1 if it is not available,
# did not start or did not answer as it should.
start_tls() {
    local round=$1 w=$2 impl=$3 t0=$SECONDS b
    pick_port
    case $impl in
        ours)
            b=$(ours_bin http_server) || return 1
            serve "$round" "$w" "$impl" "$t0" "$b" "$port" "$docroot" --tls "$cert" "$key" || return 1
            cpids=("$spid")
            ;;
        nginx) start_nginx_tls "$round" "$w" || return 1 ;;
    esac
    local chk=$out/r$round-$w-$impl-check.txt p=/ len=13
    if [ "$w" = bulk ]; then p=/bulk.bin len=$bulk_bytes; fi
    if timeout 30 "${pin_load[@]}" "${client[@]}" "$nbin/tls_load" 127.0.0.1 "$port" check "$p" \
        "${tls_opts[@]}" >"$chk" 2>&1 &&
        [ "$(field "$chk" body_bytes)" = "$len" ] && [ "$(field "$chk" version)" = TLSv1.3 ] &&
        [ "$(field "$chk" cipher)" = "$CIPHERSUITE" ]; then
        return 0
    fi
    progress "$round" "$w" "$impl" "$t0" "did not answer GET $p over TLS 1.3 / $CIPHERSUITE as expected: $(tail -n 1 "$chk")"
    local g
    for g in "${cpids[@]}"; do stop_server "$g"; done
    return 1
}

# load_cmd WORKLOAD PORT SECONDS: sets cmd, the load generator of the
# workload against 127.0.0.1:PORT (handshake, bulk: PORT,PORT,... loaded in
# turn) for SECONDS (keepalive: of wall time, as wrk's -d; the others: of
# each server's turns)
load_cmd() {
    case $1 in
        keepalive) cmd=("${client[@]}" wrk -t1 -c100 -d"${3}s" "https://127.0.0.1:$2/") ;;
        handshake) cmd=("${client[@]}" "$nbin/tls_load" 127.0.0.1 "$2" hs "$3" -c "$HS_CONNS" --slice "$SLICE"
            "${tls_opts[@]}") ;;
        bulk) cmd=("${client[@]}" "$nbin/tls_load" 127.0.0.1 "$2" get /bulk.bin "$3" -c 1 --slice "$SLICE"
            "${tls_opts[@]}") ;;
    esac
}

# run_tls ROUND WORKLOAD IMPL...: start every server (start_tls), warm each
# up alone, then load them in turn: keepalive, one wrk per server taking
# turns in SLICE-second slices (alternate), each getting about SECS seconds
# of running time; handshake and bulk, one tls_load loading them in turn
# (SLICE-second slices, each ending when its requests in flight are done)
# until each has had SECS seconds. Records thr, cpu_us and (keepalive)
# errors, (handshake) resumed and tickets_per_conn.
run_tls() {
    local round=$1 w=$2 t0=$SECONDS impl i rc=0
    shift 2
    local impls_=() ports=() groups=()
    for impl; do
        start_tls "$round" "$w" "$impl" || continue
        impls_+=("$impl")
        ports+=("$port")
        groups+=("${cpids[*]}")
    done
    [ ${#impls_[@]} -gt 0 ] || return 0
    local n=${#impls_[@]} args=() c0=() c1=() warm=0.5 tlog=$out/r$round-$w-tls_load.txt
    [ "$w" = keepalive ] && warm=1
    for i in "${!impls_[@]}"; do
        load_cmd "$w" "${ports[i]}" "$warm"
        timeout 30 "${pin_load[@]}" "${cmd[@]}" >"$out/r$round-$w-${impls_[i]}.warmup" 2>&1 || true
        if [ "$w" = keepalive ]; then
            load_cmd "$w" "${ports[i]}" $((n * SECS))
            [ "$i" = 0 ] || args+=(--)
            args+=("$out/r$round-$w-${impls_[i]}.txt" "${cmd[@]}")
        fi
    done
    # shellcheck disable=SC2086 # a group is one word per pid
    for i in "${!impls_[@]}"; do c0[i]=$(cpu_ns ${groups[i]}); done
    if [ "$w" = keepalive ]; then
        timeout $((n * SECS * 3 + 30)) "${pin_load[@]}" "$nbin/alternate" --slice "$SLICE" "${args[@]}" \
            >"$out/r$round-$w-alternate.txt" 2>&1 || rc=$?
    else
        load_cmd "$w" "$(IFS=,; echo "${ports[*]}")" "$SECS"
        timeout $((n * SECS * 3 + 30)) "${pin_load[@]}" "${cmd[@]}" >"$tlog" 2>&1 || rc=$?
    fi
    # shellcheck disable=SC2086
    for i in "${!impls_[@]}"; do c1[i]=$(cpu_ns ${groups[i]}); done
    for i in "${!impls_[@]}"; do
        local p g log=$out/r$round-$w-${impls_[i]}.txt k=t$((i + 1)).
        [ "$n" = 1 ] && k=
        [ "$w" = keepalive ] || log=$tlog
        impl=${impls_[i]}
        read -r -a g <<<"${groups[i]}"
        alive "${g[0]}" || echo "${0##*/}: $impl server died" >>"$out/r$round-$w-$impl-server.txt"
        stop_server "${g[0]}"
        for p in "${g[@]:1}"; do stop_server "$p"; done
        local act cnt errs="" thr cpu text bad=""
        case $w in
            keepalive)
                act=$(field "$out/r$round-$w-alternate.txt" "c$((i + 1)).active_s")
                cnt=$(awk '$2 == "requests" && $3 == "in" {print $1}' "$log")
                errs=$(awk '/Non-2xx or 3xx responses:/ {e += $NF}
                    /Socket errors:/ {gsub(/,/, ""); e += $4 + $6 + $8 + $10} END {print e + 0}' "$log")
                ;;
            handshake)
                act=$(field "$log" "${k}seconds")
                cnt=$(field "$log" "${k}requests")
                local res tk
                res=$(field "$log" "${k}resumed")
                tk=$(field "$log" "${k}tickets")
                [ "${res:-0}" = 0 ] || bad="$res handshakes resumed"
                record "$round" "$impl" "$w" resumed "${res:-}" count
                if [ -n "$cnt" ] && [ "$cnt" -gt 0 ]; then
                    record "$round" "$impl" "$w" tickets_per_conn "$(div "${tk:-0}" "$(field "$log" "${k}handshakes")")" count
                fi
                ;;
            bulk)
                act=$(field "$log" "${k}seconds")
                cnt=$(field "$log" "${k}bytes")
                [ -z "$cnt" ] || cnt=$(awk -v b="$cnt" 'BEGIN {printf "%.6f", b / 1048576}')
                ;;
        esac
        if [ $rc != 0 ] || [ -z "$act" ] || [ -z "$cnt" ] || [ -n "$bad" ]; then
            progress "$round" "$w" "$impl" "$t0" "FAILED (exit $rc): ${bad:-$(tail -n 1 "$log")}"
            continue
        fi
        thr=$(div "$cnt" "$act")
        cpu=$(div $((c1[i] - c0[i])) "$cnt" 0.001)
        case $w in
            keepalive)
                record "$round" "$impl" "$w" thr "$thr" req/s
                record "$round" "$impl" "$w" errors "$errs" count
                text=$(printf '%10.0f req/s  %8.3f us/req' "$thr" "${cpu:-0}")
                [ "$errs" = 0 ] || text+="  ($errs errors)"
                ;;
            handshake)
                record "$round" "$impl" "$w" thr "$thr" hs/s
                text=$(printf '%10.0f hs/s   %8.1f us/hs, %s tickets/conn' "$thr" "${cpu:-0}" \
                    "$(awk -v r="$round" -v i="$impl" '$1 == r && $2 == i && $4 == "tickets_per_conn" {print $5}' "$raw")")
                ;;
            bulk)
                record "$round" "$impl" "$w" thr "$thr" MiB/s
                text=$(printf '%10.1f MiB/s  %8.1f us/MiB' "$thr" "${cpu:-0}")
                ;;
        esac
        record "$round" "$impl" "$w" cpu_us "${cpu:-}" us
        progress "$round" "$w" "$impl" "$t0" "$text  ($(printf '%.2f' "$act") s run)"
    done
}

# ---- the rounds -----------------------------------------------------------
echo "running $WORKLOADS, $ROUNDS round(s) of $SECS s measurements ..." >&2
for ((r = 1; r <= ROUNDS; r++)); do
    for w in keepalive handshake bulk; do
        if wants "$w"; then
            # shellcheck disable=SC2046 # one word per implementation
            run_tls "$r" "$w" $(rotate "$r" "${impls[@]}")
        fi
    done
done

# ---- the table ------------------------------------------------------------
# Rows as paired_table (bench/lib.sh) reads them.
rows=$out/rows.txt
{
    if wants keepalive; then
        echo "keepalive|ours||"
        echo "keepalive|nginx|thr >= nginx, cpu <= nginx|thr >= 1 && cpu >= 1"
    fi
    if wants handshake; then
        echo "handshake|ours||"
        echo "handshake|nginx|thr >= 0.95x nginx|thr >= 0.95"
    fi
    if wants bulk; then
        echo "bulk|ours||"
        echo "bulk|nginx|thr >= 0.95x nginx|thr >= 0.95"
    fi
} >"$rows"
{
    paired_table "$rows" "$ROUNDS round(s) of $SECS s"
    echo "cpu_us: server CPU per request (handshake: per handshake; bulk: per MiB)"
} | tee "$out/table.txt"
