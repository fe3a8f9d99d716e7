#!/usr/bin/env bash
# bench/net.sh: the network benchmarks. Builds libasyncio's example servers in
# Release and the peers in bench/net/, runs each workload against ours and the
# peers, alternating implementations within every round, and prints one table
# of medians, ratios and the targets.
#
#   bench/net.sh                            11 rounds of every workload (~21 min)
#   ROUNDS=1 ECHO_SECS=1 bench/net.sh       a quick check
#   WORKLOADS="echo idle" bench/net.sh      only some of echo http redis idle
#
# Workloads (server pinned to CPU 0, load generator to CPU 1):
#   echo   10 connections, 1, 10 and 100 KiB messages, 1 and 16 in flight per
#          connection (bench/net/echo_load): ours (examples/echo_server) beside
#          a plain epoll loop (bench/net/epoll_echo.c), a plain libuv server
#          (bench/net/uv_echo.c) and uvloop with asyncio.Protocol
#          (bench/net/uvloop_echo.py). All of a round's servers run at once
#          and one echo_load loads them in turn, SLICE seconds each
#          (forwards, then backwards), until each has had ECHO_SECS seconds.
#   http   wrk -t1 -c100 against examples/http_server and nginx with 1 worker
#          (bench/net/nginx.conf), both answering "Hello, World!" at /.
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
#          only: memory does not drift with the machine's speed).
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
#   WORKLOADS   which of echo http redis idle to run (default all)
#   ECHO_IMPLS  echo implementations (default "ours epoll uv uvloop"; also
#               "streams": uvloop with asyncio streams, shown for reference)
#   IDLE_N      connections of the idle workload (default 10000)
#   ECHO_RMEM   TCP receive buffer of every socket while echo runs, in bytes
#               (default 4194304; "auto": the kernel's autotuning, as is)
#   BUILD       build directory (default bench/results/build-net)
#   OURS        where our echo_server, http_server and kv_server are (default
#               $BUILD/examples, built here; another directory is used as is)
#   PYTHON      interpreter for uvloop (default /usr/bin/python3, for which
#               Debian's python3-uvloop is installed)
#   PORT_BASE   first port tried for a server (default 18000)
#
# As root, installs what is missing with apt-get: build-essential cmake
# libuv1-dev python3-uvloop nginx-light wrk redis-server redis-tools. When one
# of our example servers is missing (or does not build), its workload runs the
# peers only. Every process started here is stopped by its pid, also on
# errors and Ctrl-C. Raw output goes to bench/results/net-<timestamp>/.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
netsrc=$here/net
ROUNDS=${ROUNDS:-11}
SECS=${SECS:-1}
ECHO_SECS=${ECHO_SECS:-$((3 * SECS))}
SLICE=${SLICE:-0.05}
WORKLOADS=${WORKLOADS:-echo http redis idle}
ECHO_IMPLS=${ECHO_IMPLS:-ours epoll uv uvloop}
IDLE_N=${IDLE_N:-10000}
ECHO_RMEM=${ECHO_RMEM:-4194304}
BUILD=${BUILD:-$here/results/build-net}
OURS=${OURS:-$BUILD/examples}
PY=${PYTHON:-/usr/bin/python3}
PORT_BASE=${PORT_BASE:-18000}
export PYTHONDONTWRITEBYTECODE=1
export PATH=$PATH:/usr/sbin:/sbin  # nginx lives in /usr/sbin

for v in ROUNDS SECS ECHO_SECS IDLE_N PORT_BASE; do
    case ${!v} in '' | *[!0-9]* | 0) echo "net.sh: $v must be a positive integer" >&2; exit 2 ;; esac
done
awk -v s="$SLICE" 'BEGIN {exit !(s ~ /^[0-9]*\.?[0-9]+$/ && s > 0)}' ||
    { echo "net.sh: SLICE must be a positive number of seconds" >&2; exit 2; }
case $ECHO_RMEM in auto) ;; '' | *[!0-9]* | 0) echo "net.sh: ECHO_RMEM must be a number of bytes or auto" >&2; exit 2 ;; esac
for w in $WORKLOADS; do
    case $w in echo | http | redis | idle) ;; *) echo "net.sh: unknown workload $w" >&2; exit 2 ;; esac
done
for i in $ECHO_IMPLS; do
    case $i in
        ours | epoll | uv | uvloop | streams) ;;
        *) echo "net.sh: unknown echo implementation $i" >&2; exit 2 ;;
    esac
done
read -r -a wl <<<"$WORKLOADS"
WORKLOADS="${wl[*]}"  # one space between names
wants() { case " $WORKLOADS " in *" $1 "*) return 0 ;; esac; return 1; }

start_s=$(date +%s)

# ---- what is needed -------------------------------------------------------
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
missing=()
{ command -v cc >/dev/null && command -v make >/dev/null; } || missing+=(build-essential)
command -v cmake >/dev/null || missing+=(cmake)
have_uvdev || missing+=(libuv1-dev)
have_uvloop || missing+=(python3-uvloop)
command -v nginx >/dev/null || missing+=(nginx-light)
command -v wrk >/dev/null || missing+=(wrk)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-benchmark >/dev/null || missing+=(redis-tools)
install_missing net.sh "${missing[@]}"
command -v cc >/dev/null || { echo "net.sh: a C compiler is needed" >&2; exit 1; }
command -v cmake >/dev/null || { echo "net.sh: cmake is needed" >&2; exit 1; }

# ---- where the output goes ------------------------------------------------
stamp=$(date +%Y%m%d-%H%M%S)
out=$here/results/net-$stamp
mkdir -p "$out"
raw=$out/raw.txt   # round impl workload metric value unit, one line per result
: >"$raw"
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
        echo "net.sh: cannot read the TCP sysctls: echo runs with autotuned buffers" >&2
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
        echo "net.sh: cannot set the TCP sysctls (not root?): echo runs with autotuned buffers" >&2
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
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[i]}"; done
    pids=()
    tcp_restore
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- build ----------------------------------------------------------------
nproc_=$(nproc 2>/dev/null || echo 2)
ours_names=(echo_server http_server kv_server)
if [ "$OURS" = "$BUILD/examples" ]; then
    for n in "${ours_names[@]}"; do rm -f "$OURS/$n"; done  # never a stale one
fi
echo "net.sh: building in $BUILD ..." >&2
blog=$out/build.txt
if ! { cmake -S "$root" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DASYNCIO_BUILD_TESTS=OFF \
    -DASYNCIO_BUILD_BENCH=OFF -DASYNCIO_BUILD_EXAMPLES=ON &&
    cmake --build "$BUILD" -j "$nproc_"; } >"$blog" 2>&1; then
    echo "net.sh: the build failed (see $blog); trying our servers one by one" >&2
    tail -n 15 "$blog" | sed 's/^/    /' >&2
    for n in "${ours_names[@]}"; do
        cmake --build "$BUILD" -j "$nproc_" --target "example_$n" >>"$blog" 2>&1 || true
    done
fi
ours_bin() { [ -x "$OURS/$1" ] && echo "$OURS/$1"; }
for n in "${ours_names[@]}"; do
    ours_bin "$n" >/dev/null || echo "net.sh: skipped: missing $OURS/$n (its workload runs the peers only)" >&2
done

nbin=$BUILD/net
mkdir -p "$nbin"
ccflags=(-O2 -std=gnu11 -Wall -Wextra)
for p in echo_load epoll_echo alternate; do
    cc "${ccflags[@]}" -o "$nbin/$p" "$netsrc/$p.c" 2>>"$blog" ||
        { echo "net.sh: $netsrc/$p.c does not build (see $blog)" >&2; exit 1; }
done
rm -f "$nbin/uv_echo"
have_uvdev && cc "${ccflags[@]}" -o "$nbin/uv_echo" "$netsrc/uv_echo.c" -luv 2>>"$blog" ||
    echo "net.sh: no uv_echo (libuv1-dev missing or the build failed, see $blog): libuv runs skipped" >&2

# ---- machine set-up -------------------------------------------------------
# 10,000 connections need the open-file limit raised; the servers inherit it.
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
ulimit -n "$hard" 2>/dev/null || true
if wants idle && [ "$(ulimit -n)" -lt $((IDLE_N + 100)) ]; then
    echo "net.sh: open-file limit $(ulimit -n) < IDLE_N + 100; idle skipped" >&2
    WORKLOADS=$(echo " $WORKLOADS " | sed 's/ idle / /; s/^ *//; s/ *$//')
fi

if wants echo && [ "$ECHO_RMEM" != auto ] && [ "$(id -u)" != 0 ]; then
    echo "net.sh: not root: echo runs with autotuned TCP buffers (ECHO_RMEM=auto)" >&2
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
if wants redis && ! command -v redis-benchmark >/dev/null; then
    echo "net.sh: no redis-benchmark: redis skipped" >&2
    WORKLOADS=$(echo " $WORKLOADS " | sed 's/ redis / /; s/^ *//; s/ *$//')
fi

pin_srv=() pin_load=()
if command -v taskset >/dev/null && [ "$nproc_" -ge 2 ] && taskset -c 1 true 2>/dev/null; then
    pin_srv=(taskset -c 0)
    pin_load=(taskset -c 1)
else
    echo "net.sh: not pinned (needs taskset and 2 CPUs): numbers are noisier" >&2
fi

{
    echo "libasyncio network benchmarks, $(date '+%Y-%m-%d %H:%M:%S %Z')"
    echo "commit:  $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(
        [ -n "$(git -C "$root" status --porcelain -- src include examples 2>/dev/null)" ] && echo ' (+ changes)')"
    echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)"
    echo "kernel:  $(uname -srm)"
    echo "memory:  $(free -g 2>/dev/null | awk '/^Mem:/ {print $2 " GB total"}')"
    echo "peers:   libuv $(dpkg-query -W -f='${Version}' libuv1-dev 2>/dev/null || echo '?')," \
        "uvloop $("$PY" -c 'import uvloop; print(uvloop.__version__)' 2>/dev/null || echo none)" \
        "(python $("$PY" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || echo none))," \
        "$(nginx -v 2>&1 | sed 's/.*: //')," \
        "redis $(redis-server --version 2>/dev/null | sed -n 's/.*v=\([^ ]*\).*/\1/p')," \
        "$(wrk -v 2>&1 | head -n 1 | awk '{print $1, $2}')"
    echo "runs:    ROUNDS=$ROUNDS SECS=$SECS ECHO_SECS=$ECHO_SECS SLICE=$SLICE WORKLOADS=\"$WORKLOADS\" ECHO_IMPLS=\"$ECHO_IMPLS\"" \
        "IDLE_N=$IDLE_N ECHO_RMEM=$ECHO_RMEM, pinned: ${pin_srv[*]:-no} / ${pin_load[*]:-no}, open files $(ulimit -n)"
} | tee "$out/header.txt"
echo

# ---- helpers --------------------------------------------------------------

next_port=$PORT_BASE
pick_port() {  # sets port to a port no socket uses, a new one every time
    while port_state "$next_port"; do next_port=$((next_port + 1)); done
    port=$next_port
    next_port=$((next_port + 1))
}

# start_server LOG CMD...: start CMD pinned to CPU 0 in the background, wait
# (10 s at most) until something listens on $port; sets spid. 1 if it died or
# did not listen in time.
start_server() {
    local log=$1 i
    shift
    "${pin_srv[@]}" "$@" >"$log" 2>&1 &
    spid=$!
    pids+=("$spid")
    for ((i = 0; i < 200; i++)); do
        port_state "$port" 0A && return 0
        alive "$spid" || break
        sleep 0.05
    done
    echo "net.sh: $* did not start listening on $port (see $log)" >&2
    stop_server "$spid"
    return 1
}

stop_server() {  # PID: stop it and drop it from pids
    local pid=$1 i
    stop_pid "$pid"
    for i in "${!pids[@]}"; do [ "${pids[i]}" = "$pid" ] && unset 'pids[i]'; done
    pids=("${pids[@]}")
}

# serve ROUND WORKLOAD IMPL T0 CMD...: start_server with the log named after
# the run; reports a server that does not start
serve() {
    local round=$1 w=$2 impl=$3 t0=$4
    shift 4
    start_server "$out/r$round-$w-$impl-server.txt" "$@" && return 0
    progress "$round" "$w" "$impl" "$t0" "server did not start"
    return 1
}

children() {  # PID: its child pids, one a line
    { cat /proc/"$1"/task/*/children 2>/dev/null || pgrep -P "$1" 2>/dev/null || true; } |
        tr ' ' '\n' | grep -v '^$' || true
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
nfds() { local f=(/proc/"$1"/fd/*); echo "${#f[@]}"; }

# field FILE NAME: the value of the `NAME value unit` line of FILE
field() { awk -v n="$2" '$1 == n {print $2}' "$1"; }

# record ROUND IMPL WORKLOAD METRIC VALUE UNIT
record() { [ -n "$5" ] && echo "$1 $2 $3 $4 $5 $6" >>"$raw"; return 0; }

# progress ROUND WORKLOAD IMPL T0 TEXT: on stderr and in progress.txt
progress() {
    printf '  round %d  %-15s %-7s %4ds  %s\n' "$1" "$2" "$3" $((SECONDS - $4)) "$5" |
        tee -a "$out/progress.txt" >&2
}

# awk-computed numbers
div() { awk -v a="$1" -v b="$2" -v m="${3:-1}" 'BEGIN {if (b > 0) printf "%.6g\n", a * m / b}'; }

# ---- echo -----------------------------------------------------------------
echo_cmd() {  # IMPL: sets cmd, 1 if the implementation is not available
    case $1 in
        ours) local b; b=$(ours_bin echo_server) || return 1; cmd=("$b" "$port") ;;
        epoll) cmd=("$nbin/epoll_echo" "$port") ;;
        uv) [ -x "$nbin/uv_echo" ] || return 1; cmd=("$nbin/uv_echo" "$port") ;;
        uvloop) have_uvloop || return 1; cmd=("$PY" "$netsrc/uvloop_echo.py" "$port") ;;
        streams) have_uvloop || return 1; cmd=("$PY" "$netsrc/uvloop_echo.py" "$port" --streams) ;;
    esac
}

# run_echo ROUND SIZE DEPTH IMPL...: start every implementation's server, then
# one echo_load drives them in turn, SLICE seconds at a time (forwards, then
# backwards), until each has had SECS seconds: the machine's drift falls on
# all of them alike, and the ratios of a round are paired.
run_echo() {
    local round=$1 size=$2 depth=$3 t0=$SECONDS w log rc=0 impl i
    shift 3
    w=echo_$((size / 1024))k_d$depth
    log=$out/r$round-$w.txt
    local impls=() ports=() spids=()
    for impl; do
        pick_port
        echo_cmd "$impl" || continue
        serve "$round" "$w" "$impl" "$t0" "${cmd[@]}" || continue
        impls+=("$impl")
        ports+=("$port")
        spids+=("$spid")
    done
    [ ${#impls[@]} -gt 0 ] || return 0
    local plist slist
    plist=$(IFS=,; echo "${ports[*]}")
    slist=$(IFS=,; echo "${spids[*]}")
    timeout $((${#impls[@]} * (ECHO_SECS * 2 + 5) + 40)) "${pin_load[@]}" "$nbin/echo_load" 127.0.0.1 "$plist" \
        10 "$size" "$depth" "$ECHO_SECS" --pid "$slist" --warmup 0.2 --slice "$SLICE" >"$log" 2>&1 || rc=$?
    for i in "${!impls[@]}"; do
        alive "${spids[i]}" ||
            echo "net.sh: ${impls[i]} echo server died (see $out/r$round-$w-${impls[i]}-server.txt)" >>"$log"
        stop_server "${spids[i]}"
    done
    local thr cpu load k
    for i in "${!impls[@]}"; do
        impl=${impls[i]}
        k=t$((i + 1)).
        [ ${#impls[@]} = 1 ] && k=
        thr=$(field "$log" "${k}msgs_per_s")
        cpu=$(field "$log" "${k}server_cpu_us_per_msg")
        load=$(field "$log" "${k}load_cpu_pct")
        if [ $rc != 0 ] || [ -z "$thr" ]; then
            progress "$round" "$w" "$impl" "$t0" "FAILED (exit $rc): $(tail -n 1 "$log")"
            continue
        fi
        record "$round" "$impl" "$w" thr "$thr" msgs/s
        record "$round" "$impl" "$w" cpu_us "$cpu" us
        record "$round" "$impl" "$w" load_cpu_pct "$load" %
        progress "$round" "$w" "$impl" "$t0" "$(printf '%10.0f msgs/s %8.3f us/msg  (CPU: server %s%%, load %s%%)' \
            "$thr" "${cpu:-0}" "$(field "$log" "${k}server_cpu_pct")" "$load")"
    done
}

# ---- http -----------------------------------------------------------------
hello_check() {  # PORT: one GET / with bash's /dev/tcp; 0 if "Hello, World!" came back
    # shellcheck disable=SC2016 # $1 is the inner shell's
    timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" &&
        printf "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" >&3 &&
        timeout 2 cat <&3' _ "$1" 2>/dev/null | grep -q 'Hello, World!'
}

# start_http ROUND IMPL: start its server on a new port; sets port and cpids
# (the processes whose CPU counts: nginx's master and worker). 1 if it is
# not available or did not start.
start_http() {
    local round=$1 impl=$2 t0=$SECONDS w=http b
    pick_port
    case $impl in
        ours)
            b=$(ours_bin http_server) || return 1
            serve "$round" "$w" "$impl" "$t0" "$b" "$port" || return 1
            cpids=("$spid")
            ;;
        nginx)
            local d=$scratch/nginx-$round
            rm -rf "$d"
            mkdir -p "$d"
            sed -e "s|@DIR@|$d|g" -e "s|@PORT@|$port|g" "$netsrc/nginx.conf" >"$d/nginx.conf"
            if ! serve "$round" "$w" "$impl" "$t0" nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf"; then
                cat "$d/error.log" >>"$out/r$round-$w-$impl-server.txt" 2>/dev/null || true
                return 1
            fi
            local workers="" i
            for ((i = 0; i < 100; i++)); do  # the master listens before it forks
                workers=$(children "$spid")
                [ -n "$workers" ] && break
                sleep 0.05
            done
            local wpids
            mapfile -t wpids <<<"$workers"
            cpids=("$spid" "${wpids[@]}")
            pids+=("${wpids[@]}")  # stopped by the master; on the list in case it is not
            ;;
    esac
    hello_check "$port" ||
        echo "net.sh: GET / on $impl did not answer Hello, World!" | tee -a "$out/r$round-$w-$impl.txt" >&2
    return 0
}

# run_http ROUND IMPL...: start every server, warm each up with a 1 s wrk,
# then one wrk per server, taking turns in SLICE-second slices (alternate):
# each gets about SECS seconds of running time.
run_http() {
    local round=$1 t0=$SECONDS w=http impl i rc=0
    shift
    local impls=() ports=() groups=()
    for impl; do
        start_http "$round" "$impl" || continue
        impls+=("$impl")
        ports+=("$port")
        groups+=("${cpids[*]}")
    done
    [ ${#impls[@]} -gt 0 ] || return 0
    local n=${#impls[@]} args=() c0=() c1=()
    for i in "${!impls[@]}"; do
        "${pin_load[@]}" wrk -t1 -c100 -d1s "http://127.0.0.1:${ports[i]}/" >"$out/r$round-$w-${impls[i]}.warmup" 2>&1 || true
        [ "$i" = 0 ] || args+=(--)
        args+=("$out/r$round-$w-${impls[i]}.txt" wrk -t1 -c100 -d"$((n * SECS))s" "http://127.0.0.1:${ports[i]}/")
    done
    # shellcheck disable=SC2086 # a group is one word per pid
    for i in "${!impls[@]}"; do c0[i]=$(cpu_ns ${groups[i]}); done
    timeout $((n * SECS * 3 + 30)) "${pin_load[@]}" "$nbin/alternate" --slice "$SLICE" "${args[@]}" \
        >"$out/r$round-$w-alternate.txt" 2>&1 || rc=$?
    # shellcheck disable=SC2086
    for i in "${!impls[@]}"; do c1[i]=$(cpu_ns ${groups[i]}); done
    for i in "${!impls[@]}"; do
        local p g log=$out/r$round-$w-${impls[i]}.txt
        impl=${impls[i]}
        read -r -a g <<<"${groups[i]}"
        alive "${g[0]}" || echo "net.sh: $impl http server died" >>"$log"
        stop_server "${g[0]}"
        for p in "${g[@]:1}"; do stop_server "$p"; done
        local act reqs errs thr cpu
        act=$(field "$out/r$round-$w-alternate.txt" "c$((i + 1)).active_s")
        reqs=$(awk '$2 == "requests" && $3 == "in" {print $1}' "$log")
        errs=$(awk '/Non-2xx or 3xx responses:/ {e += $NF}
            /Socket errors:/ {gsub(/,/, ""); e += $4 + $6 + $8 + $10} END {print e + 0}' "$log")
        if [ $rc != 0 ] || [ -z "$act" ] || [ -z "$reqs" ]; then
            progress "$round" "$w" "$impl" "$t0" "FAILED (exit $rc): $(tail -n 1 "$log")"
            continue
        fi
        thr=$(div "$reqs" "$act")
        cpu=$(div $((c1[i] - c0[i])) "$reqs" 0.001)
        record "$round" "$impl" "$w" thr "$thr" req/s
        record "$round" "$impl" "$w" cpu_us "${cpu:-}" us
        record "$round" "$impl" "$w" errors "$errs" count
        progress "$round" "$w" "$impl" "$t0" "$(printf '%10.0f req/s  %8.3f us/req  (%.2f s run)' "$thr" "${cpu:-0}" "$act")$(
            [ "$errs" = 0 ] || echo "  ($errs errors)")"
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
    local round=$1 impl=$2 t0=$SECONDS w=idle log lpid r0 r1 r2 f0 i
    log=$out/r$round-$w-$impl.txt
    pick_port
    echo_cmd "$impl" || return 0
    serve "$round" "$w" "$impl" "$t0" "${cmd[@]}" || return 0
    sleep 0.3
    r0=$(rss_kib "$spid")
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
    local k1 k2
    k1=$(div $((r1 - r0)) "$IDLE_N")
    k2=$(div $((r2 - r0)) "$IDLE_N")
    record "$round" "$impl" idle_open kib_per_conn "$k1" KiB/conn
    record "$round" "$impl" idle_used kib_per_conn "$k2" KiB/conn
    record "$round" "$impl" idle_open rss_base_kib "$r0" KiB
    progress "$round" "$w" "$impl" "$t0" "$(printf 'RSS %d KiB, +%d conns: %.2f KiB/conn, after one echo each: %.2f KiB/conn' \
        "$r0" "$IDLE_N" "$k1" "$k2")"
}

# ---- the rounds -----------------------------------------------------------
# rotate ROUND WORD...: the words, starting at word ROUND (cyclically), so
# that no implementation always runs first
rotate() {
    local r=$1 n i
    shift
    n=$#
    local words=("$@")
    for ((i = 0; i < n; i++)); do echo "${words[(i + r - 1) % n]}"; done
}

echo "running $WORKLOADS, $ROUNDS round(s) of $SECS s measurements ..." >&2
read -r -a echo_impls <<<"$ECHO_IMPLS"
for ((r = 1; r <= ROUNDS; r++)); do
    if wants echo; then
        tcp_fix
        for size in 1024 10240 102400; do
            for depth in 1 16; do
                # shellcheck disable=SC2046 # one word per implementation
                run_echo "$r" "$size" "$depth" $(rotate "$r" "${echo_impls[@]}")
            done
        done
        tcp_restore
    fi
    # shellcheck disable=SC2046 # one word per implementation
    wants http && run_http "$r" $(rotate "$r" "${http_impls[@]}")
    if wants redis; then
        # shellcheck disable=SC2046
        for mode in p1 p16; do run_redis "$r" "$mode" $(rotate "$r" "${redis_impls[@]}"); done
    fi
    # memory per connection does not drift with the machine's speed: once
    if wants idle && [ "$r" = 1 ]; then
        for impl in $(rotate "$r" "${echo_impls[@]}"); do run_idle "$r" "$impl"; done
    fi
done

# ---- the table ------------------------------------------------------------
# Rows: workload|impl|target text|condition[|ours]. The condition is on the
# ratios of ours (or of the implementation named last, such as ours_nobp) to
# this peer (thr: ours/peer throughput, cpu: peer/ours CPU per message, both
# > 1 when ours is better) or, on ours' own row, on its value.
rows=$out/rows.txt
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
            done
        done
    fi
    if wants http; then
        echo "http|ours||"
        echo "http|nginx|thr >= nginx, cpu <= nginx|thr >= 1 && cpu >= 1"
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
            for impl in $ECHO_IMPLS; do [ "$impl" = ours ] || echo "$w|$impl||"; done
        done
    fi
} >"$rows"

table=$out/table.txt
{
    awk -v rawf="$raw" -v rounds="$ROUNDS" -v secs="$SECS" -v esecs="$ECHO_SECS" -v slice="$SLICE" -v total=$(($(date +%s) - start_s)) -v out="$out" '
    function fmt(x, a) {
        if (x == "") return "-"
        a = x < 0 ? -x : x
        if (a >= 1e6) return sprintf("%.3g", x)
        if (a >= 1000) return sprintf("%.0f", x)
        if (a >= 100) return sprintf("%.1f", x)
        if (a >= 10) return sprintf("%.2f", x)
        return sprintf("%.3f", x)
    }
    # the q-quantile (0..1) of list (space-separated numbers), interpolated
    function quantile(list, q, n, v, i, j, t, x) {
        n = split(list, v, " ")
        if (n == 0) return ""
        for (i = 2; i <= n; i++) {
            t = v[i] + 0
            for (j = i - 1; j >= 1 && v[j] + 0 > t; j--) v[j + 1] = v[j]
            v[j + 1] = t
        }
        x = 1 + q * (n - 1)
        i = int(x)
        return i >= n ? v[n] + 0 : v[i] + (x - i) * (v[i + 1] - v[i])
    }
    function median(list) { return quantile(list, 0.5) }
    # ours against peer (hi: higher is better, ours / peer; else peer / ours):
    # the servers of a round ran interleaved, so each round gives a paired
    # ratio; the median of those (and in q1, q3 their quartiles).
    function mratio(w, ours, peer, m, hi, a, b, r, list) {
        list = ""
        for (r = 1; r <= rounds; r++) {
            a = val[r SUBSEP ours SUBSEP w SUBSEP m]
            b = val[r SUBSEP peer SUBSEP w SUBSEP m]
            if (a > 0 && b > 0) list = list " " (hi ? a / b : b / a)
        }
        q1 = quantile(list, 0.25)
        q3 = quantile(list, 0.75)
        return median(list)
    }
    BEGIN {
        while ((getline line < rawf) > 0) {  # round impl workload metric value unit
            split(line, x, " ")
            val[x[1] SUBSEP x[2] SUBSEP x[3] SUBSEP x[4]] = x[5]
            runs[x[2] SUBSEP x[3] SUBSEP x[4]] = runs[x[2] SUBSEP x[3] SUBSEP x[4]] " " x[5]
            unit[x[3] SUBSEP x[4]] = x[6]
        }
        printf "%-22s %-9s %11s %-8s %9s %9s %-11s %9s  %-32s %s\n", "workload", "impl", "median", "unit",
            "cpu_us", "thr ratio", "(q1-q3)", "cpu ratio", "target", "result"
    }
    {
        split($0, f, "|")
        w = f[1]; impl = f[2]; target = f[3]; cond = f[4]; ours = f[5] == "" ? "ours" : f[5]
        vm = w ~ /^idle/ ? "kib_per_conn" : "thr"
        v = median(runs[impl SUBSEP w SUBSEP vm])
        c = median(runs[impl SUBSEP w SUBSEP "cpu_us"])
        tr = ""; cr = ""; spread = "-"
        if (impl !~ /^ours/) {
            tr = mratio(w, ours, impl, vm, vm == "thr")
            if (tr != "") spread = sprintf("%.2f-%.2f", q1, q3)
            cr = mratio(w, ours, impl, "cpu_us", 0)
        }
        res = ""
        if (cond != "") {
            if (cond == "val <= 12") ok = v == "" ? "n/a" : (v <= 12 ? "PASS" : "FAIL")
            else if (cond == "thr >= 0.97") ok = tr == "" ? "n/a" : (tr >= 0.97 ? "PASS" : "FAIL")
            else if (cond == "thr >= 0.95") ok = tr == "" ? "n/a" : (tr >= 0.95 ? "PASS" : "FAIL")
            else if (cond == "thr >= 1") ok = tr == "" ? "n/a" : (tr >= 1 ? "PASS" : "FAIL")
            else if (cond == "cpu >= 1") ok = cr == "" ? "n/a" : (cr >= 1 ? "PASS" : "FAIL")
            else if (cond == "thr >= 1 && cpu >= 1")
                ok = tr == "" || cr == "" ? "n/a" : (tr >= 1 && cr >= 1 ? "PASS" : "FAIL")
            res = ok
            if (ok == "PASS") passes++
            else if (ok == "FAIL") fails++
            else nas++
        }
        u = unit[w SUBSEP vm]
        if (u == "") u = w ~ /^idle/ ? "KiB/conn" : (w ~ /^echo/ ? "msgs/s" : "req/s")
        printf "%-22s %-9s %11s %-8s %9s %9s %-11s %9s  %-32s %s\n", (w == lastw ? "" : w), impl,
            fmt(v), u, fmt(c), (tr == "" ? "-" : sprintf("%.3fx", tr)), spread,
            (cr == "" ? "-" : sprintf("%.3fx", cr)), target, res
        lastw = w
    }
    END {
        print "medians of " rounds " round(s) of " secs " s (echo: " esecs " s); ratios are ours vs the peer"
        print "of the row, > 1 when ours is better (thr: ours/peer, cpu: peer/ours), the median of the"
        print "rounds'"'"' paired ratios (servers loaded in turn, " slice " s slices), q1-q3 their quartiles;"
        printf "targets: %d PASS, %d FAIL, %d n/a\n", passes, fails, nas
        print "total time: " total " s; raw output: " out
    }' "$rows"
} | tee "$table"
