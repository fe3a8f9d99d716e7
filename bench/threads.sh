#!/usr/bin/env bash
# bench/threads.sh: the thread layer's benchmarks (issue 18). Builds
# bench_threads in Release and its peers, runs them alternating the
# implementations within every round (A, B, C, A, B, C ...), and prints one
# table of medians over the rounds, ratios and the targets.
#
#   bench/threads.sh                  7 rounds (~2 min)
#   ROUNDS=3 bench/threads.sh         a quicker look
#   WORKLOADS=threadsafe bench/threads.sh   only some of to_thread_1cpu
#                                     to_thread_2cpu threadsafe
#
# Workloads:
#   to_thread_1cpu, to_thread_2cpu
#       TO_THREAD_N sequential round trips of a no-op through the thread
#       pool (after 1000 not measured): a task's asyncio_to_thread(noop)
#       (bench/bench_threads.c), libuv's uv_queue_work (bench/threads/
#       uv_work.c), and `await asyncio.to_thread(noop)` on asyncio and on
#       uvloop (bench/py/bench_threads.py). Median, p99 and max of the round
#       trips, and the process's CPU time (getrusage, every thread) per
#       round trip. The whole process is pinned with taskset to CPU 1
#       (1cpu: the loop and the pool's thread take turns on one core, no
#       cross-core wake-up) or to CPUs 0,1 (2cpu: the pool's thread may run
#       on the other core, as in most programs; the scheduler decides).
#   threadsafe
#       Callbacks delivered per second from another thread: a plain thread
#       posts THREADSAFE_N callbacks (PY_THREADSAFE_N for Python) as fast as
#       it can while the loop runs each: asyncio_call_soon_threadsafe
#       (ours), a minimal epoll + eventfd + mutex-protected array
#       (bench/threads/minimal_queue.c: the ceiling), the same array woken
#       with libuv's uv_async_send (uv_work.c), and
#       loop.call_soon_threadsafe from a threading.Thread (asyncio, uvloop).
#       The loop's thread is pinned to LOOP_CPU and the producer to
#       PRODUCER_CPU (pthread_setaffinity_np / os.sched_setaffinity), for
#       every implementation. Each process makes one warm-up run of N/10
#       and three runs of N and reports its median run: the rate (N over
#       the time from the first call to the N-th callback) and the
#       process's CPU time per callback; a failed call (-ENOMEM ...) is
#       counted and shown.
#
# Targets (issue 18): to_thread median >= 10x asyncio's (their ratio),
# judged on the machine as it is (to_thread_2cpu: this machine has two
# CPUs; the one-CPU ratio is shown beside it), and no slower than libuv's
# (ratio >= 1.0, on one CPU and on two); threadsafe rate >= 0.9x the
# minimal queue's. Ratios are ours vs the peer, > 1 when ours is better
# (time: peer/ours; rate: ours/peer); "paired" is the median over the
# rounds of each round's ratio (the implementations of a round run one
# after the other, so a round's pair shares the machine's speed of the
# moment, which drifts by 25-60% between runs), and the targets are judged
# on it; "of medians" is the ratio of the medians over the rounds.
#
# Environment:
#   ROUNDS           rounds (default 7)
#   WORKLOADS        default "to_thread_1cpu to_thread_2cpu threadsafe"
#   TO_THREAD_N      round trips per to_thread run (default 10000, all
#                    implementations)
#   THREADSAFE_N     callbacks per threadsafe run in C (default 2000000)
#   PY_THREADSAFE_N  the same for asyncio and uvloop (default 100000: at
#                    ~100k callbacks/s a Python run takes a few seconds)
#   LOOP_CPU, PRODUCER_CPU   threadsafe's pinning (default 1 and 0)
#   BUSY_US          the extra to_thread rows "ours_bp": ours again with
#                    ASYNCIO_BUSY_POLL_US=BUSY_US (default 50), the opt-in
#                    that trades CPU for latency (the loop busy polls, the
#                    default executor's threads spin as long); shown under
#                    the table, not judged against the targets
#   BUILD            build directory (default bench/results/build-threads)
#   PYTHON           interpreter (default /usr/bin/python3, for which
#                    Debian's python3-uvloop is installed)
#
# As root, installs what is missing with apt-get (build-essential cmake
# libuv1-dev python3 python3-uvloop). If bench_threads does not build, the
# peers run alone and ours shows "-". ASYNCIO_BUSY_POLL_US (but for
# ours_bp) and ASYNCIO_BACKEND are unset: the library's defaults. Raw output goes to
# bench/results/threads-<timestamp>/.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
ROUNDS=${ROUNDS:-7}
WORKLOADS=${WORKLOADS:-to_thread_1cpu to_thread_2cpu threadsafe}
TO_THREAD_N=${TO_THREAD_N:-10000}
THREADSAFE_N=${THREADSAFE_N:-2000000}
PY_THREADSAFE_N=${PY_THREADSAFE_N:-100000}
BUSY_US=${BUSY_US:-50} # the ours_bp rows: ASYNCIO_BUSY_POLL_US for to_thread
LOOP_CPU=${LOOP_CPU:-1}
PRODUCER_CPU=${PRODUCER_CPU:-0}
BUILD=${BUILD:-$here/results/build-threads}
PY=${PYTHON:-/usr/bin/python3}
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in bench/py
unset ASYNCIO_BUSY_POLL_US ASYNCIO_BACKEND

for v in ROUNDS TO_THREAD_N THREADSAFE_N PY_THREADSAFE_N LOOP_CPU PRODUCER_CPU; do
    case ${!v} in '' | *[!0-9]*) echo "threads.sh: $v must be a non-negative integer" >&2; exit 2 ;; esac
done
for v in ROUNDS TO_THREAD_N THREADSAFE_N PY_THREADSAFE_N; do
    [ "${!v}" -gt 0 ] || { echo "threads.sh: $v must be positive" >&2; exit 2; }
done
for w in $WORKLOADS; do
    case $w in to_thread_1cpu | to_thread_2cpu | threadsafe) ;;
        *) echo "threads.sh: unknown workload $w" >&2; exit 2 ;; esac
done

start_s=$(date +%s)

# ---- what is needed -------------------------------------------------------
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
missing=()
have_uvdev || missing+=(libuv1-dev)
[ -x "$PY" ] || missing+=(python3)
have_uvloop || missing+=(python3-uvloop)
install_with_build_tools threads.sh "${missing[@]}"

# ---- where the output goes ------------------------------------------------
new_results threads

# ---- build ----------------------------------------------------------------
nproc_=$(nproc 2>/dev/null || echo 2)
blog=$out/build.txt
tbin=$BUILD/threads
build_bench "$blog" bench_threads
build_peer "$blog" "$here/threads/minimal_queue.c" "$tbin/minimal_queue"
build_uv_peer "$blog" "$here/threads/uv_work.c" "$tbin/uv_work"

impls=()
[ -x "$BUILD/bench/bench_threads" ] && impls+=(ours ours_bp)
[ -x "$tbin/minimal_queue" ] && impls+=(minimal)
[ -x "$tbin/uv_work" ] && impls+=(libuv)
if [ -x "$PY" ]; then impls+=(asyncio); else echo "threads.sh: no $PY: Python runs skipped" >&2; fi
if have_uvloop; then impls+=(uvloop); else echo "threads.sh: no uvloop for $PY: its runs skipped" >&2; fi

pin1=() pin2=()
pin_threads=(-1 -1)
if command -v taskset >/dev/null && [ "$nproc_" -ge 2 ] &&
    taskset -c "$LOOP_CPU,$PRODUCER_CPU" true 2>/dev/null && taskset -c 0,1 true 2>/dev/null; then
    pin1=(taskset -c 1)
    pin2=(taskset -c "0,1")
    pin_threads=("$LOOP_CPU" "$PRODUCER_CPU")
else
    echo "threads.sh: not pinned (needs taskset and 2 CPUs): numbers are noisier" >&2
fi

{
    echo "libasyncio thread benchmarks, $(date '+%Y-%m-%d %H:%M:%S %Z')"
    echo "commit:  $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(
        [ -n "$(git -C "$root" status --porcelain -- src include 2>/dev/null)" ] && echo ' (+ changes)')"
    echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)"
    echo "kernel:  $(uname -srm)"
    echo "peers:   libuv $(dpkg-query -W -f='${Version}' libuv1-dev 2>/dev/null || echo '?')," \
        "python $("$PY" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || echo none)," \
        "uvloop $("$PY" -c 'import uvloop; print(uvloop.__version__)' 2>/dev/null || echo none)"
    echo "runs:    ROUNDS=$ROUNDS WORKLOADS=\"$WORKLOADS\" TO_THREAD_N=$TO_THREAD_N" \
        "THREADSAFE_N=$THREADSAFE_N PY_THREADSAFE_N=$PY_THREADSAFE_N"
    echo "pinned:  to_thread_1cpu: ${pin1[*]:-no}; to_thread_2cpu: ${pin2[*]:-no};" \
        "threadsafe: loop CPU ${pin_threads[0]}, producer CPU ${pin_threads[1]} (-1: not pinned)"
    echo "impls:   ${impls[*]}"
} | tee "$out/header.txt"
echo

# impls_of WORKLOAD: the implementations that run it, in turn.
impls_of() {
    local i
    for i in "${impls[@]}"; do
        case $1/$i in to_thread*/minimal | threadsafe/ours_bp) continue ;; esac
        echo "$i"
    done
}

# run ROUND IMPL WORKLOAD: one process, its lines appended to raw.txt.
run() {
    local round=$1 impl=$2 w=$3 cmd pin log rc=0 mode n cpus=()
    case $w in
        to_thread_1cpu) mode=to_thread pin=("${pin1[@]}") ;;
        to_thread_2cpu) mode=to_thread pin=("${pin2[@]}") ;;
        threadsafe) mode=threadsafe pin=("${pin2[@]}") cpus=("${pin_threads[@]}") ;;
    esac
    n=$TO_THREAD_N
    if [ "$mode" = threadsafe ]; then
        case $impl in asyncio | uvloop) n=$PY_THREADSAFE_N ;; *) n=$THREADSAFE_N ;; esac
    fi
    case $impl in
        ours) cmd=("$BUILD/bench/bench_threads") ;;
        ours_bp) cmd=(env "ASYNCIO_BUSY_POLL_US=$BUSY_US" "$BUILD/bench/bench_threads") ;;
        minimal) cmd=("$tbin/minimal_queue") ;;
        libuv) cmd=("$tbin/uv_work") ;;
        asyncio | uvloop) cmd=("$PY" "$here/py/bench_threads.py" --loop "$impl") ;;
    esac
    log=$out/r$round-$w-$impl.txt
    local t0=$SECONDS
    timeout -k 5 600 "${pin[@]}" "${cmd[@]}" "$mode" "$n" "${cpus[@]}" >"$log" 2>&1 || rc=$?
    printf '  round %d  %-15s %-8s %4ds%s\n' "$round" "$w" "$impl" $((SECONDS - t0)) \
        "$([ $rc = 0 ] || echo "  (exit $rc, see $log)")" >&2
    [ $rc = 0 ] || return 0 # a failed run leaves no figures
    awk -v r="$round" -v i="$impl" -v w="$w" \
        'NF == 3 && $2 ~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/ {print r, i, w, $1, $2, $3}' "$log" >>"$raw"
}

echo "running ${impls[*]}, $ROUNDS round(s) ..." >&2
for ((r = 1; r <= ROUNDS; r++)); do
    for w in $WORKLOADS; do
        for impl in $(impls_of "$w"); do
            run "$r" "$impl" "$w"
        done
    done
done

# ---- the table ------------------------------------------------------------
table=$out/table.txt
ours_built=0
[ -x "$BUILD/bench/bench_threads" ] && ours_built=1
awk -v rounds="$ROUNDS" -v workloads="$WORKLOADS" -v impls="${impls[*]}" -v built="$ours_built" -v busy="$BUSY_US" '
    { v[$1, $2, $3, $4] = $5; seen[$2, $3, $4] = 1 }
    function med(a, n,    i, j, t) {  # median of a[1..n], sorts a
        for (i = 2; i <= n; i++)
            for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    # the quartiles of sorted a[1..n] (for 3 rounds: the lowest and highest)
    function quart(a, n, q) { return q < 0.5 ? a[1 + int((n - 1) / 4)] : a[n - int((n - 1) / 4)] }
    # the median over the rounds of impl, workload, metric, or "".
    function m(i, w, k,    r, a, n) {
        n = 0
        for (r = 1; r <= rounds; r++) if ((r, i, w, k) in v) a[++n] = v[r, i, w, k]
        return n ? med(a, n) : ""
    }
    function sum(i, w, k,    r, s) {
        s = 0
        for (r = 1; r <= rounds; r++) if ((r, i, w, k) in v) s += v[r, i, w, k]
        return s
    }
    # paired ratio ours vs peer for metric k, median over rounds; hi: higher
    # is better. Sets Q1, Q3; returns "" if no round has both.
    function pr(w, peer, k, hi) { return pr2(w, "ours", peer, k, hi) }
    function pr2(w, us, peer, k, hi,    r, a, n, x, y) {
        n = 0
        for (r = 1; r <= rounds; r++)
            if ((r, us, w, k) in v && (r, peer, w, k) in v) {
                x = v[r, us, w, k]; y = v[r, peer, w, k]
                if ((hi ? y : x) > 0) a[++n] = hi ? x / y : y / x
            }
        if (!n) { Q1 = Q3 = ""; return "" }
        x = med(a, n); Q1 = quart(a, n, 0.25); Q3 = quart(a, n, 0.75)
        return x
    }
    function om(c, p, hi) {  # ratio of medians
        if (c == "" || p == "" || (hi ? p : c) <= 0) return "-"
        return sprintf("%.2fx", hi ? c / p : p / c)
    }
    function f(x) {
        if (x == "") return "-"
        if (x >= 1e6) return sprintf("%.3g", x)
        if (x >= 1000) return sprintf("%.0f", x)
        if (x >= 100) return sprintf("%.1f", x)
        return sprintf("%.2f", x)
    }
    END {
        nw = split(workloads, W, " ")
        ni = split((built ? "" : "ours ") impls, I, " ")
        printf "%-15s %-8s %10s %-5s %8s %8s %8s %11s %10s %10s %-11s %-24s %s\n", "workload", "impl",
            "median", "unit", "mean_us", "p99_us", "max_us", "cpu/op", "of medians", "paired",
            "(q1-q3)", "target", "result"
        for (x = 1; x <= nw; x++) {
            w = W[x]; ts = w == "threadsafe"
            k = ts ? "threadsafe_cb_per_s" : "to_thread_median_us"
            ck = ts ? "threadsafe_cpu_ns_per_cb" : "to_thread_cpu_us_per_op"
            cu = ts ? "ns" : "us"
            oc = m("ours", w, k)
            shown = 0
            for (y = 1; y <= ni; y++) {
                i = I[y]
                if ((!ts && i == "minimal") || i == "ours_bp") continue
                c = m(i, w, k)
                if (c == "" && !((i, w, k) in seen)) {
                    printf "%-15s %-8s %10s   (%s)\n", shown++ ? "" : w, i, "-",
                        i == "ours" && !built ? "bench_threads did not build" : "no figures: every run failed"
                    continue
                }
                tgt = ""; res = ""; ratio = "-"; q = ""
                if (i != "ours") {
                    p = pr(w, i, k, ts)
                    if (p != "") { ratio = sprintf("%.2fx", p); q = sprintf("%.2f-%.2f", Q1, Q3) }
                    if (w == "to_thread_2cpu" && i == "asyncio") { tgt = ">= 10x asyncio"; lim = 10 }
                    else if (!ts && i == "asyncio") { tgt = "(shown: judged on 2 CPUs)"; lim = "" }
                    else if (!ts && i == "libuv") { tgt = ">= 1.0x libuv (no slower)"; lim = 1 }
                    else if (ts && i == "minimal") { tgt = ">= 0.9x minimal queue"; lim = 0.9 }
                    else lim = ""
                    if (lim != "") {
                        if (p == "") { res = "n/a"; nas++ }
                        else if (p >= lim) { res = "PASS"; passes++ }
                        else { res = "FAIL"; fails++ }
                    }
                }
                fl = sum(i, w, "threadsafe_failures"); oe = sum(i, w, "threadsafe_order_errors")
                if (fl > 0 || oe > 0) {
                    res = res (res == "" ? "" : " ") "(" fl " failed calls, " oe " out of order)"
                    if (i == "ours") { fails++ }
                }
                printf "%-15s %-8s %10s %-5s %8s %8s %8s %8s %-2s %10s %10s %-11s %-24s %s\n",
                    shown++ ? "" : w, i, f(c), ts ? "cb/s" : "us",
                    ts ? "-" : f(m(i, w, "to_thread_mean_us")),
                    ts ? "-" : f(m(i, w, "to_thread_p99_us")), ts ? "-" : f(m(i, w, "to_thread_max_us")),
                    f(m(i, w, ck)), cu, i == "ours" ? "-" : om(oc, c, ts), ratio, q, tgt, res
            }
        }
        for (x = 1; x <= nw; x++) {
            w = W[x]
            if (w == "threadsafe" || m("ours_bp", w, "to_thread_median_us") == "") continue
            printf "%-15s %-8s %10s %-5s %8s %8s %8s %8s %-2s  paired: %s asyncio, %s libuv (busy poll %s us, opt-in)\n",
                w, "ours_bp", f(m("ours_bp", w, "to_thread_median_us")), "us",
                f(m("ours_bp", w, "to_thread_mean_us")), f(m("ours_bp", w, "to_thread_p99_us")),
                f(m("ours_bp", w, "to_thread_max_us")), f(m("ours_bp", w, "to_thread_cpu_us_per_op")), "us",
                (p = pr2(w, "ours_bp", "asyncio", "to_thread_median_us", 0)) == "" ? "-" : sprintf("%.2fx", p),
                (p = pr2(w, "ours_bp", "libuv", "to_thread_median_us", 0)) == "" ? "-" : sprintf("%.2fx", p), busy
        }
        print "medians over " rounds " round(s); ratios are ours vs the peer of the row, > 1 when ours is"
        print "better (to_thread: peer/ours of the median round trip; threadsafe: ours/peer of the rate);"
        print "paired: the median of the rounds'"'"' ratios (q1-q3 their quartiles), on which the targets"
        print "are judged; cpu/op: the process'"'"'s CPU time (user + sys, all threads) per round trip or"
        print "callback; mean_us, p99_us, max_us: of the round trips of a run (median over the rounds)."
        print "Python'"'"'s threadsafe runs post fewer callbacks (PY_THREADSAFE_N)."
        printf "targets: %d PASS, %d FAIL, %d n/a\n", passes, fails, nas
    }' "$raw" | tee "$table"
echo "total time: $(($(date +%s) - start_s)) s; raw output: $out" | tee -a "$table"
