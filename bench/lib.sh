# bench/lib.sh: what the benchmark scripts share; sourced, not run.

# install_missing NAME PKG...: as root on Debian, apt-get install the
# packages; otherwise say on stderr (as NAME) that they are missing.
install_missing() {
    local name=$1
    shift
    [ $# -gt 0 ] || return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "$name: installing $*" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq "$@" >/dev/null
    else
        echo "$name: missing $* (install them, or run as root on Debian)" >&2
    fi
}

# check_settings NAME KNOWN-WORKLOADS VAR...: exit 2 (a word on stderr, as
# NAME) unless every VAR is a positive integer, SLICE (where the script has
# one) a positive number of seconds and every word of WORKLOADS one of
# KNOWN-WORKLOADS (a list); then WORKLOADS has one space between its names,
# for wants.
check_settings() {
    local name=$1 known=" $2 " v w names
    shift 2
    for v; do
        case ${!v} in '' | *[!0-9]* | 0) echo "$name: $v must be a positive integer" >&2; exit 2 ;; esac
    done
    [ -z "${SLICE+set}" ] || awk -v s="$SLICE" 'BEGIN {exit !(s ~ /^[0-9]*\.?[0-9]+$/ && s > 0)}' ||
        { echo "$name: SLICE must be a positive number of seconds" >&2; exit 2; }
    for w in $WORKLOADS; do
        case $known in *" $w "*) ;; *) echo "$name: unknown workload $w" >&2; exit 2 ;; esac
    done
    read -r -a names <<<"$WORKLOADS"
    WORKLOADS="${names[*]}"
}
wants() { case " $WORKLOADS " in *" $1 "*) return 0 ;; esac; return 1; }  # WORKLOAD: it is to run

# install_with_build_tools NAME PKG...: install_missing the packages and
# those of a C compiler, make and cmake where missing; then exit (a word on
# stderr, as NAME) unless cc and cmake are there.
install_with_build_tools() {
    local name=$1 t
    shift
    local pkgs=("$@")
    { command -v cc >/dev/null && command -v make >/dev/null; } || pkgs=(build-essential "${pkgs[@]}")
    command -v cmake >/dev/null || pkgs=(cmake "${pkgs[@]}")
    install_missing "$name" "${pkgs[@]}"
    for t in cc cmake; do
        command -v "$t" >/dev/null || { echo "$name: $t is needed" >&2; exit 1; }
    done
}

# cmake_release LOG KIND MESSAGE TARGET...: configure BUILD in Release with
# the benchmarks (KIND bench) or the examples (KIND examples) and no tests,
# and build TARGET... (output in LOG). If that fails: MESSAGE and LOG's last
# lines on stderr, and 1.
cmake_release() {
    local log=$1 kind=$2 msg=$3 b=OFF e=OFF
    shift 3
    if [ "$kind" = bench ]; then b=ON; else e=ON; fi
    echo "${0##*/}: building in $BUILD ..." >&2
    { cmake -S "$root" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DASYNCIO_BUILD_TESTS=OFF \
        -DASYNCIO_BUILD_BENCH=$b -DASYNCIO_BUILD_EXAMPLES=$e &&
        cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)" --target "$@"; } >"$log" 2>&1 && return 0
    echo "${0##*/}: $msg" >&2
    tail -n 15 "$log" | sed 's/^/    /' >&2
    return 1
}

# build_bench LOG TARGET: cmake_release bench/TARGET, the old binary removed
# first: never a stale one. If it does not build, says so (the peers run
# alone).
build_bench() {
    rm -f "$BUILD/bench/$2"
    cmake_release "$1" bench "$2 does not build (see $1): the peers run alone" "$2" || true
}

# build_peer LOG SRC BIN [LIB...]: compile the peer SRC (one C file) into
# BIN, linked with LIB..., the old BIN removed first; if it does not build,
# says so (the compiler's output appended to LOG). build_uv_peer LOG SRC
# BIN: the same with libuv, where its headers are there (have_uvdev).
build_peer() {
    local log=$1 src=$2 bin=$3
    shift 3
    rm -f "$bin"
    mkdir -p "$(dirname "$bin")"
    cc -O2 -std=gnu11 -Wall -Wextra -pthread -o "$bin" "$src" "$@" 2>>"$log" ||
        echo "${0##*/}: ${src##*/} does not build (see $log)" >&2
}
build_uv_peer() {
    if have_uvdev; then
        build_peer "$@" -luv
    else
        rm -f "$3"
        echo "${0##*/}: no libuv1-dev" >&2
    fi
    [ -x "$3" ] || echo "${0##*/}: libuv runs skipped" >&2
}

# new_results KIND: out=bench/results/KIND-<date>-<time>, made, and
# raw=$out/raw.txt (`round impl workload metric value unit` lines), empty.
new_results() {
    out=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/results/$1-$(date +%Y%m%d-%H%M%S)
    mkdir -p "$out"
    raw=$out/raw.txt
    : >"$raw"
}

# have_uvloop: $PY runs and imports uvloop. have_uvdev: libuv's headers are
# there (Debian's libuv1-dev).
have_uvloop() { [ -x "$PY" ] && "$PY" -c 'import uvloop' >/dev/null 2>&1; }
have_uvdev() { [ -f /usr/include/uv.h ] || pkg-config --exists libuv 2>/dev/null; }

# ---- processes, ports and CPU time (bench/compare.sh; net.sh has its own
# copies of the first ones, which behave the same) ---------------------------

# alive PID: running (not gone, not a zombie).
alive() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [ "${st%% *}" != Z ]
}

# stop_pid PID: SIGTERM, then SIGKILL after 5 s; reaps it if it is a child.
stop_pid() {
    local pid=$1 i
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.05; done
        if alive "$pid"; then
            echo "${0##*/}: pid $pid ignored SIGTERM for 5 s, killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

# port_state PORT [STATE]: a TCP socket whose local port is PORT (in STATE,
# as in /proc/net/tcp: 0A is LISTEN) exists.
port_state() {
    local t=(/proc/net/tcp)
    [ -r /proc/net/tcp6 ] && t+=(/proc/net/tcp6)
    awk -v h="$(printf ':%04X' "$1")" -v s="${2:-}" \
        'FNR > 1 && substr($2, length($2) - 4) == h && (s == "" || $4 == s) {f = 1; exit}
         END {exit !f}' "${t[@]}"
}

# listens PID PORT: PID itself holds a socket listening on PORT (not some
# other process that happens to use the port).
listens() {
    local t=(/proc/net/tcp) inos ino f
    [ -r /proc/net/tcp6 ] && t+=(/proc/net/tcp6)
    mapfile -t inos < <(awk -v h="$(printf ':%04X' "$2")" \
        'FNR > 1 && substr($2, length($2) - 4) == h && $4 == "0A" {print $10}' "${t[@]}")
    for ino in "${inos[@]}"; do
        for f in /proc/"$1"/fd/*; do
            [ "$(readlink "$f" 2>/dev/null)" = "socket:[$ino]" ] && return 0
        done
    done
    return 1
}

# cpu_ns PID...: the CPU time of all their threads (sum_exec_runtime), in ns.
cpu_ns() {
    local sum=0 pid f v
    for pid; do
        for f in /proc/"$pid"/task/*/schedstat; do
            read -r v _ 2>/dev/null <"$f" || continue
            sum=$((sum + v))
        done
    done
    echo "$sum"
}

# tcp_rmem_fix NAME BYTES: every new TCP socket's receive buffer fixed at
# BYTES (net.ipv4.tcp_rmem's default, tcp_moderate_rcvbuf=0; needs root),
# the old values kept in tcp_rmem_saved; 1 (and a word on stderr, as NAME)
# if they cannot be set. tcp_rmem_restore NAME puts them back.
tcp_rmem_saved=()
tcp_rmem_fix() {
    local name=$1 bytes=$2 rmem mod min max
    [ ${#tcp_rmem_saved[@]} = 0 ] || return 0
    if ! rmem=$(sysctl -n net.ipv4.tcp_rmem 2>/dev/null) ||
        ! mod=$(sysctl -n net.ipv4.tcp_moderate_rcvbuf 2>/dev/null); then
        echo "$name: cannot read the TCP sysctls: autotuned receive buffers" >&2
        return 1
    fi
    read -r min _ max <<<"$rmem"
    [ "$bytes" -le "$max" ] || max=$bytes
    if sysctl -qw net.ipv4.tcp_moderate_rcvbuf=0 2>/dev/null &&
        sysctl -qw net.ipv4.tcp_rmem="$min $bytes $max" 2>/dev/null; then
        tcp_rmem_saved=("$rmem" "$mod")
        return 0
    fi
    sysctl -qw net.ipv4.tcp_moderate_rcvbuf="$mod" 2>/dev/null || true
    echo "$name: cannot set the TCP sysctls (not root?): autotuned receive buffers" >&2
    return 1
}
tcp_rmem_restore() {
    [ ${#tcp_rmem_saved[@]} -gt 0 ] || return 0
    sysctl -qw net.ipv4.tcp_rmem="${tcp_rmem_saved[0]}" \
        net.ipv4.tcp_moderate_rcvbuf="${tcp_rmem_saved[1]}" >/dev/null ||
        echo "$1: could not restore net.ipv4.tcp_rmem=\"${tcp_rmem_saved[0]}\"" \
            "tcp_moderate_rcvbuf=${tcp_rmem_saved[1]}" >&2
    tcp_rmem_saved=()
}

# ---- the network benchmarks' machinery (net.sh, lifecycle.sh) --------------
# Moved here from net.sh for lifecycle.sh. These use the script's
# variables: root (the source tree), BUILD (the Release build directory),
# OURS (where our example servers are), out and raw (new_results), pids (an
# array: every process started here, for the script's cleanup to stop with
# stop_all), pin_srv and pin_load (arrays: the taskset prefix of servers and
# of load generators, maybe empty), nbin (where bench/net's tools are
# built), netsrc (bench/net), scratch (a temporary directory), next_port
# (the next port to try), ROUNDS, SECS, ECHO_SECS, SLICE and start_s (when
# the script started, in s). Messages are signed with the script's name.

# bench_header TITLE: the first lines of a run's header.txt: TITLE and the
# date, the commit (+ changes: uncommitted ones in src, include or examples),
# the machine, the kernel and the memory.
bench_header() {
    echo "$1, $(date '+%Y-%m-%d %H:%M:%S %Z')"
    echo "commit:  $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(
        [ -n "$(git -C "$root" status --porcelain -- src include examples 2>/dev/null)" ] && echo ' (+ changes)')"
    echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)"
    echo "kernel:  $(uname -srm)"
    echo "memory:  $(free -g 2>/dev/null | awk '/^Mem:/ {print $2 " GB total"}')"
}

ours_bin() { [ -x "$OURS/$1" ] && echo "$OURS/$1"; }  # NAME: our example's path, 1 if missing

# build_ours LOG NAME...: configure BUILD (Release, the examples only) and
# build the examples NAME... (output in LOG); if that fails, each one alone,
# so that those that build are there. Says which are missing. When OURS is
# BUILD/examples, the old binaries go first: never a stale one.
build_ours() {
    local log=$1 n j targets=()
    shift
    j=$(nproc 2>/dev/null || echo 2)
    for n; do
        targets+=("example_$n")
        if [ "$OURS" = "$BUILD/examples" ]; then rm -f "$OURS/$n"; fi
    done
    if ! cmake_release "$log" examples "the build failed (see $log); trying our servers one by one" \
        "${targets[@]}"; then
        for n; do cmake --build "$BUILD" -j "$j" --target "example_$n" >>"$log" 2>&1 || true; done
    fi
    for n; do
        ours_bin "$n" >/dev/null || echo "${0##*/}: skipped: missing $OURS/$n (its workload runs the peers only)" >&2
    done
}

# build_net_tools LOG NAME...: compile bench/net/NAME.c into $nbin (the
# compiler's output appended to LOG); exits if one does not build.
build_net_tools() {
    local log=$1 p
    shift
    mkdir -p "$nbin"
    for p; do
        cc -O2 -std=gnu11 -Wall -Wextra -o "$nbin/$p" "$netsrc/$p.c" 2>>"$log" ||
            { echo "${0##*/}: $netsrc/$p.c does not build (see $log)" >&2; exit 1; }
    done
}

# pin_two_cpus: servers on CPU 0, load generators on CPU 1 (pin_srv,
# pin_load), where there are taskset and two CPUs; else neither, and a word
# on stderr.
pin_two_cpus() {
    pin_srv=() pin_load=()
    if command -v taskset >/dev/null && [ "$(nproc 2>/dev/null || echo 1)" -ge 2 ] &&
        taskset -c 1 true 2>/dev/null; then
        pin_srv=(taskset -c 0)
        pin_load=(taskset -c 1)
    else
        echo "${0##*/}: not pinned (needs taskset and 2 CPUs): numbers are noisier" >&2
    fi
}

pick_port() {  # sets port to a port no socket uses, a new one every time
    while port_state "$next_port"; do next_port=$((next_port + 1)); done
    port=$next_port
    next_port=$((next_port + 1))
}

# start_server LOG CMD...: start CMD (pinned as pin_srv says) in the
# background, wait (10 s at most) until something listens on $port; sets
# spid. 1 if it died or did not listen in time.
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
    echo "${0##*/}: $* did not start listening on $port (see $log)" >&2
    stop_server "$spid"
    return 1
}

stop_all() {  # every process of pids, the last started first
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[i]}"; done
    pids=()
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

# rotate ROUND WORD...: the words, starting at word ROUND (cyclically), so
# that no implementation always runs first
rotate() {
    local r=$1 n i
    shift
    n=$#
    local words=("$@")
    for ((i = 0; i < n; i++)); do echo "${words[(i + r - 1) % n]}"; done
}

# run_echo ROUND WORKLOAD CONNS SIZE DEPTH IMPL...: start every
# implementation's server (the script's echo_cmd IMPL sets cmd to it, with
# $port, or returns 1 when it is not available), then one echo_load drives
# them in turn, CONNS connections each with DEPTH messages of SIZE bytes in
# flight, SLICE seconds at a time (forwards, then backwards), until each has
# had ECHO_SECS seconds: the machine's drift falls on all of them alike, and
# the ratios of a round are paired. Records thr, cpu_us and load_cpu_pct.
run_echo() {
    local round=$1 w=$2 conns=$3 size=$4 depth=$5 t0=$SECONDS log rc=0 impl i
    shift 5
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
        "$conns" "$size" "$depth" "$ECHO_SECS" --pid "$slist" --warmup 0.2 --slice "$SLICE" >"$log" 2>&1 || rc=$?
    for i in "${!impls[@]}"; do
        alive "${spids[i]}" ||
            echo "${0##*/}: ${impls[i]} echo server died (see $out/r$round-$w-${impls[i]}-server.txt)" >>"$log"
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

hello_check() {  # PORT: one GET / with bash's /dev/tcp; 0 if "Hello, World!" came back
    # shellcheck disable=SC2016 # $1 is the inner shell's
    timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" &&
        printf "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" >&3 &&
        timeout 2 cat <&3' _ "$1" 2>/dev/null | grep -q 'Hello, World!'
}

# start_nginx ROUND WORKLOAD IMPL WORKERS [CONF [ROOT]]: nginx (the
# template bench/net/CONF, default nginx.conf, with WORKERS worker
# processes and @ROOT@ replaced by ROOT) on $port; sets spid and cpids (the
# master and its workers, whose CPU counts). 1 if it did not start.
start_nginx() {
    local round=$1 w=$2 impl=$3 workers=$4 conf=${5:-nginx.conf} docroot=${6:-} t0=$SECONDS
    local d=$scratch/nginx-$1-$2 i
    rm -rf "$d"
    mkdir -p "$d"
    sed -e "s|@DIR@|$d|g" -e "s|@PORT@|$port|g" -e "s|@WORKERS@|$workers|g" -e "s|@ROOT@|$docroot|g" \
        "$netsrc/$conf" >"$d/nginx.conf"
    if ! serve "$round" "$w" "$impl" "$t0" nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf"; then
        cat "$d/error.log" >>"$out/r$round-$w-$impl-server.txt" 2>/dev/null || true
        return 1
    fi
    local wpids=()
    for ((i = 0; i < 100; i++)); do  # the master listens before it forks
        mapfile -t wpids < <(children "$spid")
        [ ${#wpids[@]} -ge "$workers" ] && break
        sleep 0.05
    done
    cpids=("$spid" "${wpids[@]}")
    pids+=("${wpids[@]}")  # stopped by the master; on the list in case it is not
}

# start_http ROUND WORKLOAD IMPL WORKERS: ours (examples/http_server, with
# --workers WORKERS when more than 1: a loop per thread) or nginx (WORKERS
# worker processes) on a new port; sets cpids, the processes whose CPU
# counts (every thread of each), the first the one to stop. 1 if it is not
# available or did not start.
start_http() {
    local round=$1 w=$2 impl=$3 workers=$4 t0=$SECONDS b
    pick_port
    case $impl in
        ours)
            b=$(ours_bin http_server) || return 1
            local more=()
            [ "$workers" -gt 1 ] && more=(--workers "$workers")
            serve "$round" "$w" "$impl" "$t0" "$b" "$port" "${more[@]}" || return 1
            cpids=("$spid")
            ;;
        nginx) start_nginx "$round" "$w" "$impl" "$workers" ;;
    esac
}

# run_http ROUND WORKLOAD WORKERS IMPL...: start every server (start_http),
# warm each up with a 1 s wrk, then one wrk -t1 -c100 per server, taking
# turns in SLICE-second slices (alternate): each gets about SECS seconds of
# running time. Records thr, cpu_us and errors.
run_http() {
    local round=$1 w=$2 workers=$3 t0=$SECONDS impl i rc=0
    shift 3
    local impls=() ports=() groups=()
    for impl; do
        start_http "$round" "$w" "$impl" "$workers" || continue
        hello_check "$port" ||
            echo "${0##*/}: GET / on $impl did not answer Hello, World!" | tee -a "$out/r$round-$w-$impl.txt" >&2
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
        alive "${g[0]}" || echo "${0##*/}: $impl http server died" >>"$log"
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

# awk_quantile: an awk function for the tables' programs (paired_table,
# compare.sh's): quantile(list, q), the q-quantile (0..1) of list
# (space-separated numbers), interpolated; "" for an empty list.
# shellcheck disable=SC2034 # used by the scripts
awk_quantile='
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
    }'

# paired_table ROWS WHAT: the table of $raw's results, one line per row of
# the file ROWS, `workload|impl|target text|condition[|ours]`: the medians
# over ROUNDS of impl's throughput (kib_per_conn for idle_* workloads) and
# CPU per message or request, and for an impl whose name does not start with
# ours the median of the rounds' paired ratios of ours (or of the impl
# named last, such as ours_nobp) to it (thr: ours/peer throughput, cpu:
# peer/ours CPU, both > 1 when ours is better), with their quartiles. The
# condition is judged on those ratios, or on ours' own row on its value:
# terms `thr|cpu|val >=|<= NUMBER` joined by ` && `; PASS, FAIL, or n/a
# when a figure is missing. WHAT says what was measured ("1 round(s) of 1 s");
# HOW how a round's implementations shared the machine (default: "servers
# loaded in turn, SLICE s slices").
paired_table() {
    awk -v rawf="$raw" -v rounds="$ROUNDS" -v what="$2" -v how="${3:-servers loaded in turn, ${SLICE:-?} s slices}" \
        -v total=$(($(date +%s) - start_s)) -v out="$out" -v rowsf="$1" '
    function fmt(x, a) {
        if (x == "") return "-"
        a = x < 0 ? -x : x
        if (a >= 1e6) return sprintf("%.3g", x)
        if (a >= 1000) return sprintf("%.0f", x)
        if (a >= 100) return sprintf("%.1f", x)
        if (a >= 10) return sprintf("%.2f", x)
        return sprintf("%.3f", x)
    }
    '"$awk_quantile"'
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
    # a condition: PASS, FAIL, or n/a if a figure it needs is missing
    function judge(cond, v, tr, cr, n, t, i, p, x, res) {
        n = split(cond, t, / && /)
        res = "PASS"
        for (i = 1; i <= n; i++) {
            split(t[i], p, " ")
            x = p[1] == "val" ? v : (p[1] == "thr" ? tr : cr)
            if (x == "") return "n/a"
            if (!(p[2] == ">=" ? x >= p[3] + 0 : x <= p[3] + 0)) res = "FAIL"
        }
        return res
    }
    BEGIN {
        while ((getline line < rawf) > 0) {  # round impl workload metric value unit
            split(line, x, " ")
            val[x[1] SUBSEP x[2] SUBSEP x[3] SUBSEP x[4]] = x[5]
            runs[x[2] SUBSEP x[3] SUBSEP x[4]] = runs[x[2] SUBSEP x[3] SUBSEP x[4]] " " x[5]
            unit[x[3] SUBSEP x[4]] = x[6]
        }
        iw = 9  # the impl column: 9 wide, or as the longest name (ours_kqueue)
        while ((getline line < rowsf) > 0) {
            split(line, x, "|")
            if (length(x[2]) > iw) iw = length(x[2])
        }
        close(rowsf)
        rowfmt = "%-22s %-" iw "s %11s %-8s %9s %9s %-11s %9s  %-32s %s\n"
        printf rowfmt, "workload", "impl", "median", "unit",
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
            res = judge(cond, v, tr, cr)
            if (res == "PASS") passes++
            else if (res == "FAIL") fails++
            else nas++
        }
        u = unit[w SUBSEP vm]
        if (u == "") u = w ~ /^idle/ ? "KiB/conn" : (w ~ /^(echo|embed)/ ? "msgs/s" : "req/s")
        printf rowfmt, (w == lastw ? "" : w), impl,
            fmt(v), u, fmt(c), (tr == "" ? "-" : sprintf("%.3fx", tr)), spread,
            (cr == "" ? "-" : sprintf("%.3fx", cr)), target, res
        lastw = w
    }
    END {
        print "medians of " what "; ratios are ours vs the peer"
        print "of the row, > 1 when ours is better (thr: ours/peer, cpu: peer/ours), the median of the"
        print "rounds'"'"' paired ratios (" how "), q1-q3 their quartiles;"
        printf "targets: %d PASS, %d FAIL, %d n/a\n", passes, fails, nas
        print "total time: " total " s; raw output: " out
    }' "$1"
}
