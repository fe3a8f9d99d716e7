#!/usr/bin/env bash
# bench/run.sh: build libasyncio in Release, run its benchmarks beside the same
# workloads on Python's asyncio and on uvloop (bench/py/), alternating
# C, asyncio, uvloop for each benchmark and round, and print one table of
# medians, ratios and the targets.
#
#   bench/run.sh                      3 rounds, bench_scale with 1,000,000 tasks
#   ROUNDS=1 SCALE_N=100000 bench/run.sh   a quick check
#   BENCHES="sync" bench/run.sh            only some of switch spawn scale sweep
#                                          timers sync
#
# sweep is bench_scale --sweep SWEEP_S: the same million sleeping tasks,
# with the stack sweep on (asyncio_loop_set_stack_sweep()) and the first
# deadline 2 SWEEP_S + 3 s later, so that every task is swept first; its
# memory is resident memory plus page tables (VmRSS + VmPTE) per task, as
# the Python runs measure at the same moment of the same timeline.
#
# Environment:
#   ROUNDS   rounds of every benchmark (default 3); the table has the medians
#   SCALE_N  tasks for bench_scale, C and Python alike (default 1000000; the
#            targets on tasks are for 1000000)
#   SWEEP_S  the stack sweep's threshold for the sweep runs (default 1 s)
#   BUILD    build directory (default bench/results/build)
#   PYTHON   interpreter for the Python runs (default /usr/bin/python3, for
#            which Debian's python3-uvloop is installed)
#
# As root, installs what is missing with apt-get (build-essential, cmake,
# python3, python3-uvloop). Raw output goes to bench/results/<timestamp>/.
# The benchmark processes are pinned to CPU 1 with taskset when it exists.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
ROUNDS=${ROUNDS:-3}
SCALE_N=${SCALE_N:-1000000}
SWEEP_S=${SWEEP_S:-1}
BENCHES=${BENCHES:-switch spawn scale sweep timers sync}  # which to run
BUILD=${BUILD:-$here/results/build}
PY=${PYTHON:-/usr/bin/python3}
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in bench/py

case $ROUNDS in '' | *[!0-9]* | 0) echo "run.sh: ROUNDS must be a positive integer" >&2; exit 2 ;; esac
case $SCALE_N in '' | *[!0-9]* | 0) echo "run.sh: SCALE_N must be a positive integer" >&2; exit 2 ;; esac

start_s=$(date +%s)

# ---- what is needed -------------------------------------------------------
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
missing=()
{ command -v cc >/dev/null && command -v make >/dev/null; } || missing+=(build-essential)
command -v cmake >/dev/null || missing+=(cmake)
[ -x "$PY" ] || missing+=(python3)
have_uvloop || missing+=(python3-uvloop)
install_missing run.sh "${missing[@]}"
command -v cmake >/dev/null || { echo "run.sh: cmake is needed" >&2; exit 1; }
impls=(c)
if [ -x "$PY" ]; then impls+=(asyncio); else echo "run.sh: no $PY: asyncio runs skipped" >&2; fi
if have_uvloop; then impls+=(uvloop); else echo "run.sh: no uvloop for $PY: uvloop runs skipped" >&2; fi

# ---- build ----------------------------------------------------------------
cmake -S "$root" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DASYNCIO_BUILD_BENCH=ON \
    -DASYNCIO_BUILD_TESTS=OFF -DASYNCIO_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)" \
    --target bench_switch bench_spawn bench_scale bench_timers bench_sync >/dev/null
bin=$BUILD/bench

pin=()
if command -v taskset >/dev/null && taskset -c 1 true 2>/dev/null; then
    pin=(taskset -c 1)
fi

# ---- where the output goes ------------------------------------------------
stamp=$(date +%Y%m%d-%H%M%S)
out=$here/results/$stamp
mkdir -p "$out"
raw=$out/raw.txt   # round impl bench name value unit, one line per result
: >"$raw"

{
    echo "libasyncio benchmarks, $(date '+%Y-%m-%d %H:%M:%S %Z')"
    echo "commit:  $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)"
    echo "kernel:  $(uname -srm)"
    echo "memory:  $(free -g 2>/dev/null | awk '/^Mem:/ {print $2 " GB total"}')"
    echo "python:  $("$PY" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || echo none)," \
        "uvloop $("$PY" -c 'import uvloop; print(uvloop.__version__)' 2>/dev/null || echo none)"
    echo "runs:    ROUNDS=$ROUNDS SCALE_N=$SCALE_N BENCHES=\"$BENCHES\", pinned: ${pin[*]:-no}"
} | tee "$out/header.txt"
echo

# run ROUND IMPL BENCH: one benchmark process, its lines appended to raw.txt.
run() {
    local round=$1 impl=$2 bench=$3 cmd log rc=0
    case $impl/$bench in
        c/switch) cmd=("$bin/bench_switch") ;;
        c/spawn) cmd=("$bin/bench_spawn") ;;
        c/scale) cmd=("$bin/bench_scale" "$SCALE_N") ;;
        c/sweep) cmd=("$bin/bench_scale" --sweep "$SWEEP_S" "$SCALE_N") ;;
        c/timers) cmd=("$bin/bench_timers") ;;
        c/sync) cmd=("$bin/bench_sync") ;;
        */switch) cmd=("$PY" "$here/py/bench_yield.py" --loop "$impl") ;;
        */scale) cmd=("$PY" "$here/py/bench_scale.py" --loop "$impl" "$SCALE_N") ;;
        */sweep) cmd=("$PY" "$here/py/bench_scale.py" --loop "$impl" --sweep "$SWEEP_S" "$SCALE_N") ;;
        *) cmd=("$PY" "$here/py/bench_$bench.py" --loop "$impl") ;;
    esac
    log=$out/r$round-$impl-$bench.txt
    local t0=$SECONDS
    "${pin[@]}" "${cmd[@]}" >"$log" 2>&1 || rc=$?
    printf '  round %d  %-8s %-7s %4ds%s\n' "$round" "$impl" "$bench" $((SECONDS - t0)) \
        "$([ $rc = 0 ] || echo "  (exit $rc, see $log)")" >&2
    awk -v r="$round" -v i="$impl" -v b="$bench" \
        'NF == 3 && $2 ~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/ {print r, i, b, $1, $2, $3}' "$log" >>"$raw"
}

echo "running ${impls[*]}, $ROUNDS round(s) ..." >&2
for ((r = 1; r <= ROUNDS; r++)); do
    for bench in $BENCHES; do
        for impl in "${impls[@]}"; do
            run "$r" "$impl" "$bench"
        done
    done
done

# ---- the table ------------------------------------------------------------
# med IMPL NAME: the median over the rounds, or empty.
med() {
    awk -v i="$1" -v n="$2" '$2 == i && $4 == n {print $5}' "$raw" | sort -g |
        awk '{v[NR] = $1} END {if (NR) printf "%.10g\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

# fmt VALUE: a compact number, or "-".
fmt() {
    [ -n "$1" ] || { echo -; return; }
    awk -v x="$1" 'BEGIN {
        a = x < 0 ? -x : x
        if (x == int(x) && a < 1e7) printf "%.0f\n", x
        else if (a >= 1e6) printf "%.3g\n", x
        else if (a >= 1000) printf "%.0f\n", x
        else if (a >= 100) printf "%.1f\n", x
        else printf "%.2f\n", x }'
}

# ratio C PY DIR: >1 means libasyncio is better; DIR is lower or higher (is
# better); "-" if either is missing or the metric is not a cost.
ratio() {
    [ -n "$1" ] && [ -n "$2" ] && [ "$3" != none ] || { echo -; return; }
    awk -v c="$1" -v p="$2" -v d="$3" 'BEGIN {
        num = d == "lower" ? p : c; den = d == "lower" ? c : p
        if (den == 0) print (num == 0 ? "-" : "inf"); else printf "%.1fx\n", num / den }'
}

# check EXPR: PASS or FAIL from an awk condition on c, s, a (see below).
check() {
    awk -v c="$C" -v s="$SW" -v a="$A" -v p="$P" "BEGIN {
        if (c == \"\") { print \"n/a\"; exit }
        print (($1) ? \"PASS\" : \"FAIL\") }"
}

passes=0 fails=0
table=$out/table.txt
{
    printf '%-20s %11s %11s %11s %10s %10s  %-30s %s\n' \
        metric libasyncio asyncio uvloop 'vs asyncio' 'vs uvloop' target result
    # name: the C metric; py: the Python metric it is compared with; dir:
    # lower/higher is better, none for counts; target text; awk condition on
    # c (this metric, C median), s (switch_ns), a (asyncio median), p (SCALE_N).
    while IFS='|' read -r name py dir target cond; do
        C=$(med c "$name")
        A=""; U=""
        if [ -n "$py" ]; then A=$(med asyncio "$py"); U=$(med uvloop "$py"); fi
        SW=$(med c switch_ns)
        P=$SCALE_N
        if [ -n "$cond" ]; then
            res=$(check "$cond")
            case $res in PASS) passes=$((passes + 1)) ;; FAIL) fails=$((fails + 1)) ;; esac
        else
            res=""
        fi
        printf '%-20s %11s %11s %11s %10s %10s  %-30s %s\n' "$name" \
            "$(fmt "$C")" "$(fmt "$A")" "$(fmt "$U")" \
            "$(ratio "$C" "$A" "$dir")" "$(ratio "$C" "$U" "$dir")" "$target" "$res"
    done <<'EOF'
switch_ns||lower|<= 12|c <= 12
swapcontext_ns||lower|swapcontext/switch >= 15|s > 0 && c / s >= 15
yield_ns|yield_ns|lower|<= 30, vs asyncio >= 50|c <= 30 && a != "" && a / c >= 50
spawn_tasks_per_s|spawn_tasks_per_s|higher|>= 3e6|c >= 3e6
tasks|tasks|none|== 1000000|c == 1000000
create_s|create_s|lower||
start_s|start_s|lower||
rss_per_task_bytes|rss_per_task_bytes|lower|<= 8192|c <= 8192
max_wake_late_ms|max_wake_late_ms|lower|<= 100|c <= 100
swept_tasks||none|== tasks|c == p
sweep_mem_per_task_bytes|sweep_mem_per_task_bytes|lower|<= 1280|c <= 1280
sweep_max_wake_late_ms|sweep_max_wake_late_ms|lower|<= 100|c <= 100
timers|timers|none||
schedule_and_fire_s|schedule_and_fire_s|lower|<= 1.0|c <= 1.0
cancel_ns|cancel_ns|lower||
lock_handoff_ns|lock_handoff_ns|lower|vs asyncio >= 30|a != "" && a / c >= 30
queue_items_per_s|queue_items_per_s|higher|vs asyncio >= 30|a != "" && c / a >= 30
taskgroup_100k_s|taskgroup_100k_s|lower|vs asyncio >= 30|a != "" && a / c >= 30
taskgroup_100k_cold_s|taskgroup_100k_cold_s|lower||
EOF
    SW=$(med c switch_ns); SC=$(med c swapcontext_ns)
    [ -n "$SW" ] && [ -n "$SC" ] &&
        awk -v s="$SW" -v c="$SC" 'BEGIN {if (s > 0) printf "(swapcontext_ns / switch_ns = %.1f)\n", c / s}'
    echo "medians of $ROUNDS round(s); ratios > 1 mean libasyncio is better;" \
        "targets: $passes PASS, $fails FAIL"
    echo "total time: $(($(date +%s) - start_s)) s; raw output: $out"
} | tee "$table"
