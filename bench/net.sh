#!/usr/bin/env bash
# bench/net.sh: the network benchmarks. Builds libasyncio's example servers in
# Release and the peers in bench/net/, runs each workload against ours and the
# peers, alternating implementations within every round, and prints one table
# of medians, ratios and the targets.
#
#   bench/net.sh                            11 rounds of every workload (~22 min)
#   ROUNDS=1 ECHO_SECS=1 bench/net.sh       a quick check
#   WORKLOADS="echo idle" bench/net.sh      only some of echo http static redis idle
#   ECHO_IMPLS="ours epoll uv uvloop ours_kqueue" bench/net.sh
#                                           also our kqueue backend (below)
#
# Workloads (server pinned to CPU 0, load generator to CPU 1):
#   echo   10 connections, 1, 10 and 100 KiB messages, 1 and 16 in flight per
#          connection (bench/net/echo_load): ours (examples/echo_server) beside
#          a plain epoll loop (bench/net/epoll_echo.c), a plain libuv server
#          (bench/net/uv_echo.c) and uvloop with asyncio.Protocol
#          (bench/net/uvloop_echo.py). All of a round's servers run at once
#          and one echo_load loads them in turn, SLICE seconds each
#          (forwards, then backwards), until each has had ECHO_SECS seconds.
#          "ours_kqueue", when ECHO_IMPLS names it: examples/echo_server
#          again, from a second Release build with the kqueue backend over
#          libkqueue (-DASYNCIO_LIBKQUEUE=ON; libkqueue built with
#          ../shared/tools/build-libkqueue.sh into bench/results/libkqueue),
#          run with ASYNCIO_BACKEND=kqueue. For information only, no target:
#          libkqueue adds its own layer (over epoll) on Linux. Its rows show
#          its own figures and its ratios to the epoll server (or, without
#          epoll, the first peer listed), "ours_kqueue, for reference". Not
#          in the default list: it costs a second build (~10 s) and 3 s
#          more per echo workload and round (~4 min of the default run).
#   http   wrk -t1 -c100 against examples/http_server and nginx with 1 worker
#          (bench/net/nginx.conf), both answering "Hello, World!" at /.
#   static a STATIC_MIB (100) MiB file of random bytes (made once per run in
#          the scratch directory) downloaded again and again over one
#          keep-alive connection, wrk -t1 -c1, from examples/http_server
#          PORT DIR and nginx with 1 worker, root DIR, sendfile on and
#          tcp_nopush on (bench/net/nginx-static.conf). Each server's
#          answer is checked first (curl: a 200 of the file's length).
#          Throughput in MiB/s: the bytes wrk read (all of them, partial
#          answers too: a wrk script prints its summary.bytes) over the time
#          its wrk ran; server CPU per MiB. While wrk is stopped, the
#          server goes on until the socket buffers are full, on CPU 0
#          during the other's turn: the receive buffers are fixed as for
#          echo (ECHO_RMEM, below), which bounds that to 4 MiB + the
#          server's send buffer (net.ipv4.tcp_wmem's maximum, 4 MiB); with
#          autotuning wrk's buffer grew anywhere from 128 KiB to
#          tcp_rmem's maximum (32 MiB here) from one connection to the
#          next.
#   redis  redis-benchmark -t ping,set,get -c 50, and again with -P 16, against
#          examples/kv_server and redis-server (no persistence), one test at
#          a time, the same number of requests for both. kv_server
#          busy-polls for 20 us by default, which spends CPU to spare
#          redis-benchmark the cost of waking it; it runs again with
#          --busy-poll 0 ("ours_nobp": the library's default) for reference.
#          wrk and redis-benchmark cannot take turns themselves: one runs per
#          server at once, and bench/net/alternate lets them run in turn,
#          SLICE seconds each, stopping the others (SIGSTOP); a rate is the
#          requests over the time its generator ran.
#   idle   10,000 idle connections to each echo server: resident memory per
#          connection, as opened and after one 1-byte echo on each (round 1
#          only: memory does not drift with the machine's speed); then,
#          IDLE_SETTLE s later (3), resident memory plus page tables (VmRSS +
#          VmPTE) per connection, "idle_settled". "ours_sweep" is
#          examples/echo_server again with --stack-sweep 1 (idle rows only):
#          by then its handlers' stacks have been swept.
# Throughput is per second. Server CPU per message or request: the CPU time
# of the server's threads (/proc/PID/task/*/schedstat, ns; nginx: master +
# worker) over its slices (echo) or the run, divided by its messages or
# requests.
#
# Why in turn: this machine's speed swings by 5-10% from one 50 ms slice
# to the next and by 10-30% between runs a few seconds apart (up to 2x), as
# much in a 6 s run as in a 1 s one. Two 1 s runs of the same echo server
# one after the other differed by 0.78-1.24x (12 pairs; the ratio of their
# medians 0.98x); two copies of it interleaved in 50 ms slices for 10 s
# each, by 0.986-1.023x (8 runs).
# Why 50 ms slices and 3 s for echo: two copies of the plain epoll echo
# server loaded in turn (12 runs of 1 s a workload) differ from run to run
# by a standard deviation of 2-3% with 50 ms slices, but of 5-11% with
# 200 ms slices; at 100 KiB with 16 in flight by 11% even with 50 ms, by
# about 2% over 4 s (8 runs: 0.985-1.045x). A target 3% away needs that.
#
# Why fixed TCP receive buffers for echo: with the kernel's autotuning each
# connection's buffer settles anywhere from 2 to 19 MiB (ss -tmi, 100 KiB
# with 16 in flight), differently in every run, and the run's speed with
# it: two copies of the epoll echo server loaded in turn differed by
# 0.78-1.26x at 100 KiB x16 (30 runs of 1 s; the median 1.05x), far too
# much to tell 3% apart. With every buffer
# at 4 MiB (net.ipv4.tcp_rmem's default, tcp_moderate_rcvbuf=0, as root;
# restored afterwards) the same pair differed by 0.93-1.22x, quartiles
# 0.96-1.02 (16 runs), and the smaller rows by 1-3%.
#
# Environment:
#   ROUNDS      rounds (default 11); the table has medians over them, and the
#               median of each round's paired ratios
#   SECS        seconds per measurement (default 1)
#   ECHO_SECS   seconds per echo measurement (default 3x SECS: see above)
#   SLICE       seconds a server is loaded before the next (default 0.05)
#   WORKLOADS   which of echo http static redis idle to run (default all)
#   ECHO_IMPLS  echo implementations (default "ours epoll uv uvloop"; also
#               "streams": uvloop with asyncio streams, and "ours_kqueue":
#               ours on the kqueue backend over libkqueue, both shown for
#               reference; they take part in idle too)
#   IDLE_N      connections of the idle workload (default 10000)
#   STATIC_MIB  size of the static workload's file in MiB (default 100)
#   ECHO_RMEM   TCP receive buffer of every socket while echo and static
#               run, in bytes (default 4194304; "auto": the kernel's
#               autotuning, as is)
#   BUILD       build directory (default bench/results/build-net)
#   OURS        where our echo_server, http_server and kv_server are (default
#               $BUILD/examples, built here; another directory is used as is)
#   KQ_BUILD    build directory of ours_kqueue (default
#               bench/results/build-net-kqueue; libkqueue goes to
#               bench/results/libkqueue); without ../shared/tools beside the
#               checkout ours_kqueue is skipped
#   PYTHON      interpreter for uvloop (default /usr/bin/python3, for which
#               Debian's python3-uvloop is installed)
#   PORT_BASE   first port tried for a server (default 18000)
#
# As root, installs what is missing with apt-get: build-essential cmake
# libuv1-dev python3-uvloop nginx-light wrk curl redis-server redis-tools. When one
# of our example servers is missing (or does not build), its workload runs the
# peers only (ours_kqueue: it is skipped, with a word). Every process started
# here is stopped by its pid, also on errors and Ctrl-C. Raw output goes to
# bench/results/net-<timestamp>/.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
netsrc=$here/net
ROUNDS=${ROUNDS:-11}
SECS=${SECS:-1}
ECHO_SECS=${ECHO_SECS:-$((3 * SECS))}
SLICE=${SLICE:-0.05}
WORKLOADS=${WORKLOADS:-echo http static redis idle}
ECHO_IMPLS=${ECHO_IMPLS:-ours epoll uv uvloop}
IDLE_N=${IDLE_N:-10000}
STATIC_MIB=${STATIC_MIB:-100}
ECHO_RMEM=${ECHO_RMEM:-4194304}
BUILD=${BUILD:-$here/results/build-net}
OURS=${OURS:-$BUILD/examples}
KQ_BUILD=${KQ_BUILD:-$here/results/build-net-kqueue}
kq_prefix=$here/results/libkqueue
kq_tool=$root/../shared/tools/build-libkqueue.sh
PY=${PYTHON:-/usr/bin/python3}
PORT_BASE=${PORT_BASE:-18000}
export PYTHONDONTWRITEBYTECODE=1
export PATH=$PATH:/usr/sbin:/sbin  # nginx lives in /usr/sbin

# shellcheck source=bench/lib.sh
. "$here/lib.sh"
check_settings net.sh "echo http static redis idle" ROUNDS SECS ECHO_SECS IDLE_N STATIC_MIB PORT_BASE
case $ECHO_RMEM in auto) ;; '' | *[!0-9]* | 0) echo "net.sh: ECHO_RMEM must be a number of bytes or auto" >&2; exit 2 ;; esac
for i in $ECHO_IMPLS; do
    case $i in
        ours | epoll | uv | uvloop | streams | ours_kqueue) ;;
        *) echo "net.sh: unknown echo implementation $i" >&2; exit 2 ;;
    esac
done
echo_wants() {  # IMPL: ECHO_IMPLS names it
    local i
    for i in $ECHO_IMPLS; do [ "$i" = "$1" ] && return 0; done
    return 1
}
start_s=$(date +%s)

# ---- what is needed -------------------------------------------------------
missing=()
have_uvdev || missing+=(libuv1-dev)
have_uvloop || missing+=(python3-uvloop)
command -v nginx >/dev/null || missing+=(nginx-light)
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-benchmark >/dev/null || missing+=(redis-tools)
install_with_build_tools net.sh "${missing[@]}"

# ---- where the output goes ------------------------------------------------
new_results net
scratch=$(mktemp -d "${TMPDIR:-/tmp}/asyncio-net.XXXXXX")

# ---- processes: every one started here is stopped by its pid --------------
pids=()   # servers and background load generators, in start order
# (alive, stop_pid, port_state and cpu_ns are bench/lib.sh's)

# TCP receive buffers fixed for echo (see the top), and back as they were.
tcp_saved=()
tcp_fix() {
    if [ "$ECHO_RMEM" = auto ] || [ ${#tcp_saved[@]} -gt 0 ]; then return 0; fi
    local rmem mod min max
    if ! rmem=$(sysctl -n net.ipv4.tcp_rmem 2>/dev/null) ||
        ! mod=$(sysctl -n net.ipv4.tcp_moderate_rcvbuf 2>/dev/null); then
        echo "net.sh: cannot read the TCP sysctls: echo and static run with autotuned buffers" >&2
        ECHO_RMEM=auto
        return 0
    fi
    read -r min _ max <<<"$rmem"
    if [ "$ECHO_RMEM" -gt "$max" ]; then max=$ECHO_RMEM; fi
    if sysctl -qw net.ipv4.tcp_moderate_rcvbuf=0 2>/dev/null &&
        sysctl -qw net.ipv4.tcp_rmem="$min $ECHO_RMEM $max" 2>/dev/null; then
        tcp_saved=("$rmem" "$mod")
    else
        sysctl -qw net.ipv4.tcp_moderate_rcvbuf="$mod" 2>/dev/null || true
        echo "net.sh: cannot set the TCP sysctls (not root?): echo and static run with autotuned buffers" >&2
        ECHO_RMEM=auto
    fi
}
tcp_restore() {
    [ ${#tcp_saved[@]} -gt 0 ] || return 0
    sysctl -qw net.ipv4.tcp_rmem="${tcp_saved[0]}" net.ipv4.tcp_moderate_rcvbuf="${tcp_saved[1]}" ||
        echo "net.sh: could not restore net.ipv4.tcp_rmem=\"${tcp_saved[0]}\" tcp_moderate_rcvbuf=${tcp_saved[1]}" >&2
    tcp_saved=()
}

cleanup() {
    stop_all
    tcp_restore
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- build ----------------------------------------------------------------
blog=$out/build.txt
build_ours "$blog" echo_server http_server kv_server

nbin=$BUILD/net
build_net_tools "$blog" echo_load epoll_echo alternate
rm -f "$nbin/uv_echo"
have_uvdev && cc -O2 -std=gnu11 -Wall -Wextra -o "$nbin/uv_echo" "$netsrc/uv_echo.c" -luv 2>>"$blog" ||
    echo "net.sh: no uv_echo (libuv1-dev missing or the build failed, see $blog): libuv runs skipped" >&2

# ours_kqueue: libkqueue (rebuilt from ../shared's snapshot: a few seconds)
# and a second Release build of echo_server with the kqueue backend over it;
# the old binary removed first: never a stale one
kq_echo=$KQ_BUILD/examples/echo_server
kq_version=
if echo_wants ours_kqueue && { wants echo || wants idle; }; then
    rm -f "$kq_echo"
    if [ ! -f "$kq_tool" ]; then
        echo "net.sh: no $kq_tool (../shared is not beside this checkout): ours_kqueue skipped" >&2
    else
        echo "net.sh: building libkqueue in $kq_prefix and ours over it in $KQ_BUILD ..." >&2
        if ! { sh "$kq_tool" "$kq_prefix" &&
            cmake -S "$root" -B "$KQ_BUILD" -DCMAKE_BUILD_TYPE=Release -DASYNCIO_BUILD_TESTS=OFF \
                -DASYNCIO_BUILD_BENCH=OFF -DASYNCIO_BUILD_EXAMPLES=ON \
                -DASYNCIO_LIBKQUEUE=ON -DCMAKE_PREFIX_PATH="$kq_prefix" &&
            cmake --build "$KQ_BUILD" -j "$(nproc 2>/dev/null || echo 2)" --target example_echo_server; } \
            >>"$blog" 2>&1; then
            echo "net.sh: ours_kqueue does not build (see $blog): skipped" >&2
            tail -n 15 "$blog" | sed 's/^/    /' >&2
        fi
        kq_version=$(PKG_CONFIG_PATH=$kq_prefix/lib/pkgconfig pkg-config --modversion libkqueue 2>/dev/null || echo '?')
    fi
fi

# ---- machine set-up -------------------------------------------------------
# 10,000 connections need the open-file limit raised; the servers inherit it.
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
ulimit -n "$hard" 2>/dev/null || true
if wants idle && [ "$(ulimit -n)" -lt $((IDLE_N + 100)) ]; then
    echo "net.sh: open-file limit $(ulimit -n) < IDLE_N + 100; idle skipped" >&2
    WORKLOADS=$(echo " $WORKLOADS " | sed 's/ idle / /; s/^ *//; s/ *$//')
fi

if { wants echo || wants static; } && [ "$ECHO_RMEM" != auto ] && [ "$(id -u)" != 0 ]; then
    echo "net.sh: not root: echo and static run with autotuned TCP buffers (ECHO_RMEM=auto)" >&2
    ECHO_RMEM=auto
fi

http_impls=(ours nginx)
command -v nginx >/dev/null || { echo "net.sh: no nginx: its http runs skipped" >&2; http_impls=(ours); }
redis_impls=(redis ours ours_nobp)
command -v redis-server >/dev/null ||
    { echo "net.sh: no redis-server: its runs skipped" >&2; redis_impls=(ours ours_nobp); }
if wants http && ! command -v wrk >/dev/null; then
    echo "net.sh: no wrk: http skipped" >&2
    WORKLOADS=$(echo " $WORKLOADS " | sed 's/ http / /; s/^ *//; s/ *$//')
fi
if wants static && ! { command -v wrk >/dev/null && command -v curl >/dev/null; }; then
    echo "net.sh: no wrk or no curl: static skipped" >&2
    WORKLOADS=$(echo " $WORKLOADS " | sed 's/ static / /; s/^ *//; s/ *$//')
fi
if wants redis && ! command -v redis-benchmark >/dev/null; then
    echo "net.sh: no redis-benchmark: redis skipped" >&2
    WORKLOADS=$(echo " $WORKLOADS " | sed 's/ redis / /; s/^ *//; s/ *$//')
fi

pin_two_cpus

{
    bench_header "libasyncio network benchmarks"
    echo "peers:   libuv $(dpkg-query -W -f='${Version}' libuv1-dev 2>/dev/null || echo '?')," \
        "uvloop $("$PY" -c 'import uvloop; print(uvloop.__version__)' 2>/dev/null || echo none)" \
        "(python $("$PY" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || echo none))," \
        "$(nginx -v 2>&1 | sed 's/.*: //')," \
        "redis $(redis-server --version 2>/dev/null | sed -n 's/.*v=\([^ ]*\).*/\1/p')," \
        "$(wrk -v 2>&1 | head -n 1 | awk '{print $1, $2}')"
    [ -x "$kq_echo" ] && echo "kqueue:  ours_kqueue = $kq_echo, ASYNCIO_BACKEND=kqueue, libkqueue $kq_version ($kq_prefix)"
    echo "runs:    ROUNDS=$ROUNDS SECS=$SECS ECHO_SECS=$ECHO_SECS SLICE=$SLICE WORKLOADS=\"$WORKLOADS\" ECHO_IMPLS=\"$ECHO_IMPLS\"" \
        "IDLE_N=$IDLE_N STATIC_MIB=$STATIC_MIB ECHO_RMEM=$ECHO_RMEM, pinned: ${pin_srv[*]:-no} / ${pin_load[*]:-no}, open files $(ulimit -n)"
} | tee "$out/header.txt"
echo

# ---- helpers --------------------------------------------------------------

next_port=$PORT_BASE
# (pick_port, start_server, stop_server, serve, children, field, record,
# progress, div, rotate, run_echo, run_http and paired_table are
# bench/lib.sh's)

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
mem_kib() { awk '/^VmRSS:|^VmPTE:/ {k += $2} END {print k + 0}' "/proc/$1/status" 2>/dev/null || echo 0; }
IDLE_SETTLE=${IDLE_SETTLE:-3}
nfds() { local f=(/proc/"$1"/fd/*); echo "${#f[@]}"; }

# ---- echo -----------------------------------------------------------------
echo_cmd() {  # IMPL: sets cmd, 1 if the implementation is not available
    case $1 in
        ours) local b; b=$(ours_bin echo_server) || return 1; cmd=("$b" "$port") ;;
        ours_sweep) local b; b=$(ours_bin echo_server) || return 1; cmd=("$b" "$port" --stack-sweep 1) ;;
        epoll) cmd=("$nbin/epoll_echo" "$port") ;;
        uv) [ -x "$nbin/uv_echo" ] || return 1; cmd=("$nbin/uv_echo" "$port") ;;
        uvloop) have_uvloop || return 1; cmd=("$PY" "$netsrc/uvloop_echo.py" "$port") ;;
        streams) have_uvloop || return 1; cmd=("$PY" "$netsrc/uvloop_echo.py" "$port" --streams) ;;
        ours_kqueue) [ -x "$kq_echo" ] || return 1; cmd=(env ASYNCIO_BACKEND=kqueue "$kq_echo" "$port") ;;
    esac
}

# ---- http -----------------------------------------------------------------
# ---- static ---------------------------------------------------------------
# The file: random bytes (nothing compresses or dedups them), in the
# directory both servers serve; made once, only when static runs. nginx
# started as root runs its worker as nobody: the directories (mktemp's are
# 0700) and the file are opened to all.
docroot=$scratch/www
static_name=static.bin
static_bytes=$((STATIC_MIB * 1048576))
if wants static; then
    mkdir -p "$docroot"
    head -c "$static_bytes" /dev/urandom >"$docroot/$static_name"
    chmod a+rx "$scratch" "$docroot"
    chmod a+r "$docroot/$static_name"
fi
# wrk's own summary gives the bytes in MB to 3 digits: this script has it
# print every byte it read (partial answers too) and the whole answers
wrk_bytes=$scratch/wrk-bytes.lua
cat >"$wrk_bytes" <<'EOF'
done = function(summary, latency, requests)
    io.write(string.format("bytes_read %d\nanswers %d\n", summary.bytes, summary.requests))
end
EOF

stop_group() {  # PID...: stop them, the first (the one that stops the rest) first
    local p
    for p; do stop_server "$p"; done
}

# start_static ROUND IMPL: ours (examples/http_server PORT DOCROOT) or
# nginx (bench/net/nginx-static.conf, 1 worker) on a new port, then one GET
# of the file with curl: a 200 of static_bytes bytes. Sets cpids (the
# processes whose CPU counts, the first the one to stop); 1 if it is not
# available, did not start or did not answer so.
start_static() {
    local round=$1 impl=$2 t0=$SECONDS b got
    pick_port
    case $impl in
        ours)
            b=$(ours_bin http_server) || return 1
            serve "$round" static "$impl" "$t0" "$b" "$port" "$docroot" || return 1
            cpids=("$spid")
            ;;
        nginx) start_nginx "$round" static "$impl" 1 nginx-static.conf "$docroot" || return 1 ;;
    esac
    got=$(timeout 60 "${pin_load[@]}" curl -s -o /dev/null -w '%{http_code} %{size_download}' \
        "http://127.0.0.1:$port/$static_name" 2>&1) || got="curl failed: $got"
    [ "$got" = "200 $static_bytes" ] && return 0
    progress "$round" static "$impl" "$t0" "GET /$static_name: \"$got\", not \"200 $static_bytes\""
    stop_group "${cpids[@]}"
    return 1
}

# run_static ROUND IMPL...: start every server (start_static), warm each up
# with a 1 s wrk, then one wrk -t1 -c1 per server downloading the file
# again and again, taking turns in SLICE-second slices (alternate): each
# gets about SECS seconds of running time. Records thr (MiB/s: the bytes
# read over its wrk's running time), cpu_us (per MiB) and errors.
run_static() {
    local round=$1 t0=$SECONDS w=static impl i rc=0
    shift
    local impls=() ports=() groups=()
    for impl; do
        start_static "$round" "$impl" || continue
        impls+=("$impl")
        ports+=("$port")
        groups+=("${cpids[*]}")
    done
    [ ${#impls[@]} -gt 0 ] || return 0
    local n=${#impls[@]} args=() c0=() c1=() alog=$out/r$round-$w-alternate.txt
    # --timeout: an answer may take several of the other's turns
    local wrk=(wrk -t1 -c1 --timeout 60s -s "$wrk_bytes")
    for i in "${!impls[@]}"; do
        "${pin_load[@]}" "${wrk[@]}" -d1s "http://127.0.0.1:${ports[i]}/$static_name" \
            >"$out/r$round-$w-${impls[i]}.warmup" 2>&1 || true
        [ "$i" = 0 ] || args+=(--)
        args+=("$out/r$round-$w-${impls[i]}.txt" "${wrk[@]}" -d"$((n * SECS))s"
            "http://127.0.0.1:${ports[i]}/$static_name")
    done
    # shellcheck disable=SC2086 # a group is one word per pid
    for i in "${!impls[@]}"; do c0[i]=$(cpu_ns ${groups[i]}); done
    timeout $((n * SECS * 3 + 30)) "${pin_load[@]}" "$nbin/alternate" --slice "$SLICE" "${args[@]}" \
        >"$alog" 2>&1 || rc=$?
    # shellcheck disable=SC2086
    for i in "${!impls[@]}"; do c1[i]=$(cpu_ns ${groups[i]}); done
    for i in "${!impls[@]}"; do
        local g log=$out/r$round-$w-${impls[i]}.txt act bytes answers errs mib thr cpu
        impl=${impls[i]}
        read -r -a g <<<"${groups[i]}"
        alive "${g[0]}" || echo "net.sh: $impl http server died" >>"$log"
        stop_group "${g[@]}"
        act=$(field "$alog" "c$((i + 1)).active_s")
        bytes=$(field "$log" bytes_read)
        answers=$(field "$log" answers)
        errs=$(awk '/Non-2xx or 3xx responses:/ {e += $NF}
            /Socket errors:/ {gsub(/,/, ""); e += $4 + $6 + $8 + $10} END {print e + 0}' "$log")
        if [ $rc != 0 ] || [ -z "$act" ] || [ -z "$bytes" ] || [ "$bytes" = 0 ]; then
            progress "$round" "$w" "$impl" "$t0" "FAILED (exit $rc): $(tail -n 1 "$log")"
            continue
        fi
        mib=$(div "$bytes" 1048576)
        thr=$(div "$mib" "$act")
        cpu=$(div $((c1[i] - c0[i])) "$mib" 0.001)
        record "$round" "$impl" "$w" thr "$thr" MiB/s
        record "$round" "$impl" "$w" cpu_us "${cpu:-}" us/MiB
        record "$round" "$impl" "$w" errors "$errs" count
        progress "$round" "$w" "$impl" "$t0" "$(printf '%8.1f MiB/s  %8.1f us/MiB  (%s answers, %.2f s run)' \
            "$thr" "${cpu:-0}" "${answers:-?}" "$act")$([ "$errs" = 0 ] || echo "  ($errs errors)")"
    done
}

# ---- redis ----------------------------------------------------------------
# requests per test and server, per mode: start from these guesses (about
# SECS seconds a test at the reference rates), then follow the last rates
# shellcheck disable=SC2034 # read as ${!nvar}
redis_n_p1=$((SECS * 70000))
# shellcheck disable=SC2034
redis_n_p16=$((SECS * 800000))

start_redis() {  # ROUND MODE IMPL: its server on a new port; 1 if not available
    local round=$1 w=redis_$2 impl=$3 t0=$SECONDS b
    pick_port
    case $impl in
        ours)
            b=$(ours_bin kv_server) || return 1
            serve "$round" "$w" "$impl" "$t0" "$b" "$port" || return 1
            ;;
        ours_nobp)
            b=$(ours_bin kv_server) || return 1
            serve "$round" "$w" "$impl" "$t0" env -u ASYNCIO_BUSY_POLL_US "$b" "$port" --busy-poll 0 ||
                return 1
            ;;
        redis)
            mkdir -p "$scratch/redis"
            serve "$round" "$w" "$impl" "$t0" redis-server --port "$port" --bind 127.0.0.1 \
                --save '' --appendonly no --dir "$scratch/redis" || return 1
            ;;
    esac
}

# run_redis ROUND MODE IMPL...: start every server; then for each test
# (PING_INLINE, PING_MBULK, SET, GET) one redis-benchmark per server of the
# same number of requests, taking turns in SLICE-second slices (alternate);
# a test's rate is its requests over its running time.
run_redis() {
    local round=$1 mode=$2 t0=$SECONDS w=redis_$2 impl i rc test n nvar
    shift 2
    local impls=() ports=() spids=()
    for impl; do
        start_redis "$round" "$mode" "$impl" || continue
        impls+=("$impl")
        ports+=("$port")
        spids+=("$spid")
    done
    [ ${#impls[@]} -gt 0 ] || return 0
    nvar=redis_n_$mode
    n=${!nvar}
    local extra=() cpu=() act=() done_=() text=() rates=()
    [ "$mode" = p16 ] && extra=(-P 16)
    for i in "${!impls[@]}"; do cpu[i]=0 act[i]=0 done_[i]=0 text[i]=""; done
    for test in ping_inline ping_mbulk set get; do
        local args=() c0=() c1=() alog=$out/r$round-$w-$test-alternate.txt
        for i in "${!impls[@]}"; do
            [ "$i" = 0 ] || args+=(--)
            args+=("$out/r$round-$w-$test-${impls[i]}.txt" redis-benchmark -h 127.0.0.1 -p "${ports[i]}"
                -t "$test" -c 50 -n "$n" "${extra[@]}" --csv)
            c0[i]=$(cpu_ns "${spids[i]}")
        done
        rc=0
        # give up at 6x the time planned
        timeout $((${#impls[@]} * SECS * 6 + 20)) "${pin_load[@]}" "$nbin/alternate" --slice "$SLICE" \
            "${args[@]}" >"$alog" 2>&1 || rc=$?
        for i in "${!impls[@]}"; do
            c1[i]=$(cpu_ns "${spids[i]}")
            local a
            a=$(field "$alog" "c$((i + 1)).active_s")
            # "PING_INLINE","76045.62",...: the line of a finished test
            if [ $rc != 0 ] || [ -z "$a" ] ||
                ! grep -q '^"[A-Z_]*","[0-9.]*"' "$out/r$round-$w-$test-${impls[i]}.txt"; then
                text[i]+="$test FAILED  "
                continue
            fi
            local rps
            rps=$(div "$n" "$a")
            record "$round" "${impls[i]}" "${w}_$test" thr "$rps" req/s
            rates[i]=${rates[i]:-}" $rps"
            text[i]+="$test $(printf '%.0f' "$rps")  "
            act[i]=$(awk -v a="${act[i]}" -v b="$a" 'BEGIN {print a + b}')
            cpu[i]=$((cpu[i] + c1[i] - c0[i]))
            done_[i]=$((done_[i] + n))
        done
    done
    for i in "${!impls[@]}"; do
        impl=${impls[i]}
        alive "${spids[i]}" || echo "net.sh: $impl redis server died" >>"$out/r$round-$w-$impl-server.txt"
        stop_server "${spids[i]}"
        if [ "${done_[i]}" = 0 ]; then
            progress "$round" "$w" "$impl" "$t0" "FAILED: ${text[i]}"
            continue
        fi
        local c
        c=$(div "${cpu[i]}" "${done_[i]}" 0.001)
        record "$round" "$impl" "${w}_all" thr "$(div "${done_[i]}" "${act[i]}")" req/s
        record "$round" "$impl" "${w}_all" cpu_us "${c:-}" us
        progress "$round" "$w" "$impl" "$t0" "${text[i]}$(printf '%.3f' "${c:-0}") us/req"
    done
    # the next rounds of this mode: SECS seconds a test at the mean rate seen
    local all
    all=$(echo "${rates[*]:-}" | awk '{for (i = 1; i <= NF; i++) {t += $i; k++}}
        END {if (k) {n = int(t / k * s / 10000) * 10000; print n < 10000 ? 10000 : n}}' s="$SECS")
    [ -n "$all" ] && printf -v "$nvar" '%s' "$all"
    return 0
}

# ---- idle -----------------------------------------------------------------
wait_line() {  # FILE PATTERN PID SECONDS: until FILE has PATTERN; 1 if PID died or time ran out
    local i
    for ((i = 0; i < $4 * 20; i++)); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        alive "$3" || { grep -q "$2" "$1" 2>/dev/null; return; }
        sleep 0.05
    done
    return 1
}

run_idle() {  # ROUND IMPL
    local round=$1 impl=$2 t0=$SECONDS w=idle log lpid r0 r1 r2 m0 m3 f0 i
    log=$out/r$round-$w-$impl.txt
    pick_port
    echo_cmd "$impl" || return 0
    serve "$round" "$w" "$impl" "$t0" "${cmd[@]}" || return 0
    sleep 0.3
    r0=$(rss_kib "$spid")
    m0=$(mem_kib "$spid")
    f0=$(nfds "$spid")
    "${pin_load[@]}" "$nbin/echo_load" 127.0.0.1 "$port" --idle "$IDLE_N" 600 --touch >"$log" 2>&1 &
    lpid=$!
    pids+=("$lpid")
    local ok=1
    if wait_line "$log" '^connected' "$lpid" 60; then
        # connected on our side; wait until the server has accepted them all
        for ((i = 0; i < 600; i++)); do
            [ "$(nfds "$spid")" -ge $((f0 + IDLE_N)) ] && break
            alive "$spid" || break
            sleep 0.05
        done
        sleep 0.5
        r1=$(rss_kib "$spid")
        if [ "$(nfds "$spid")" -lt $((f0 + IDLE_N)) ]; then
            ok=0
            echo "net.sh: the server has $(nfds "$spid") fds, expected $((f0 + IDLE_N))" >>"$log"
        fi
        kill -USR1 "$lpid" 2>/dev/null || true
        if wait_line "$log" '^touched' "$lpid" 30; then
            sleep 0.5
            r2=$(rss_kib "$spid")
            sleep "$IDLE_SETTLE"
            m3=$(mem_kib "$spid")
        else
            ok=0
        fi
    else
        ok=0
    fi
    alive "$spid" || { ok=0; echo "net.sh: $impl server died" >>"$log"; }
    stop_server "$lpid"
    stop_server "$spid"
    if [ $ok = 0 ]; then
        progress "$round" "$w" "$impl" "$t0" "FAILED: $(tail -n 1 "$log")"
        return 0
    fi
    local k1 k2 k3
    k1=$(div $((r1 - r0)) "$IDLE_N")
    k2=$(div $((r2 - r0)) "$IDLE_N")
    k3=$(div $((m3 - m0)) "$IDLE_N")
    record "$round" "$impl" idle_open kib_per_conn "$k1" KiB/conn
    record "$round" "$impl" idle_used kib_per_conn "$k2" KiB/conn
    record "$round" "$impl" idle_settled kib_per_conn "$k3" KiB/conn
    record "$round" "$impl" idle_open rss_base_kib "$r0" KiB
    progress "$round" "$w" "$impl" "$t0" "$(printf 'RSS %d KiB, +%d conns: %.2f KiB/conn, after one echo each: %.2f KiB/conn, %d s later (RSS+PTE): %.2f KiB/conn' \
        "$r0" "$IDLE_N" "$k1" "$k2" "$IDLE_SETTLE" "$k3")"
}

# ---- the rounds -----------------------------------------------------------
echo "running $WORKLOADS, $ROUNDS round(s) of $SECS s measurements ..." >&2
read -r -a echo_impls <<<"$ECHO_IMPLS"
for ((r = 1; r <= ROUNDS; r++)); do
    if wants echo; then
        tcp_fix
        for size in 1024 10240 102400; do
            for depth in 1 16; do
                # shellcheck disable=SC2046 # one word per implementation
                run_echo "$r" "echo_$((size / 1024))k_d$depth" 10 "$size" "$depth" $(rotate "$r" "${echo_impls[@]}")
            done
        done
        tcp_restore
    fi
    # shellcheck disable=SC2046 # one word per implementation
    wants http && run_http "$r" http 1 $(rotate "$r" "${http_impls[@]}")
    if wants static; then
        tcp_fix
        # shellcheck disable=SC2046
        run_static "$r" $(rotate "$r" "${http_impls[@]}")
        tcp_restore
    fi
    if wants redis; then
        # shellcheck disable=SC2046
        for mode in p1 p16; do run_redis "$r" "$mode" $(rotate "$r" "${redis_impls[@]}"); done
    fi
    # memory per connection does not drift with the machine's speed: once
    if wants idle && [ "$r" = 1 ]; then
        for impl in $(rotate "$r" "${echo_impls[@]}" ours_sweep); do run_idle "$r" "$impl"; done
    fi
done

# ---- the table ------------------------------------------------------------
# Rows: workload|impl|target text|condition[|ours]. The condition is on the
# ratios of ours (or of the implementation named last, such as ours_nobp) to
# this peer (thr: ours/peer throughput, cpu: peer/ours CPU per message, both
# > 1 when ours is better) or, on ours' own row, on its value.
rows=$out/rows.txt
# ours_kqueue's ratios, for reference: to epoll, or the first peer listed
kq_ref=
for impl in epoll uv uvloop streams; do
    if echo_wants "$impl"; then kq_ref=$impl; break; fi
done
kq_rows() {  # WORKLOAD: ours_kqueue's rows (no target), when ECHO_IMPLS names it
    echo_wants ours_kqueue || return 0
    echo "$1|ours_kqueue||"
    [ -z "$kq_ref" ] || echo "$1|$kq_ref|ours_kqueue, for reference||ours_kqueue"
}
{
    if wants echo; then
        for size in 1 10 100; do
            for depth in 1 16; do
                w=echo_${size}k_d$depth
                echo "$w|ours||"
                for impl in $ECHO_IMPLS; do
                    case $impl in
                        epoll) echo "$w|epoll|thr >= 0.97x epoll|thr >= 0.97" ;;
                        uv) echo "$w|uv|cpu/msg <= uv|cpu >= 1" ;;
                        uvloop) echo "$w|uvloop|thr >= uvloop|thr >= 1" ;;
                        streams) echo "$w|streams||" ;;
                    esac
                done
                kq_rows "$w"
            done
        done
    fi
    if wants http; then
        echo "http|ours||"
        echo "http|nginx|thr >= nginx, cpu <= nginx|thr >= 1 && cpu >= 1"
    fi
    if wants static; then  # cpu: per byte
        echo "static|ours||"
        echo "static|nginx|thr >= 0.95x nginx, cpu <= nginx|thr >= 0.95 && cpu >= 1"
    fi
    if wants redis; then
        for mode in p1 p16; do
            for t in ping_inline ping_mbulk set get; do
                echo "redis_${mode}_$t|ours||"
                echo "redis_${mode}_$t|redis|thr >= 0.95x redis|thr >= 0.95"
                echo "redis_${mode}_$t|ours_nobp||"
                echo "redis_${mode}_$t|redis|ours_nobp, for reference||ours_nobp"
            done
            echo "redis_${mode}_all|ours||"
            echo "redis_${mode}_all|ours_nobp||"
            echo "redis_${mode}_all|redis||"
        done
    fi
    if wants idle; then
        for w in idle_open idle_used; do
            echo "$w|ours|<= 12 KiB/conn|val <= 12"
            for impl in $ECHO_IMPLS; do
                case $impl in ours | ours_kqueue) ;; *) echo "$w|$impl||" ;; esac
            done
            kq_rows "$w"
        done
        echo "idle_settled|ours_sweep|<= 1.25 KiB/conn|val <= 1.25"
        echo "idle_settled|ours||"
        for impl in $ECHO_IMPLS; do
            case $impl in ours | ours_kqueue) ;; *) echo "idle_settled|$impl|||ours_sweep" ;; esac
        done
    fi
} >"$rows"

paired_table "$rows" "$ROUNDS round(s) of $SECS s (echo: $ECHO_SECS s)" | tee "$out/table.txt"
