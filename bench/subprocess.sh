#!/usr/bin/env bash
# bench/subprocess.sh: the benchmarks of child processes (issue 20). Builds
# bench_subprocess in Release and its peers, runs them alternating the
# implementations within every round (in an order rotated each round), and
# prints one table of medians over the rounds, paired ratios and the
# targets.
#
#   bench/subprocess.sh                 7 rounds (~4 min)
#   ROUNDS=1 SPAWN_N=500 PIPE_BYTES=100000000 bench/subprocess.sh   a quick check
#   WORKLOADS=pipe bench/subprocess.sh  only some of spawn pipe
#
# Workloads:
#   spawn (rows spawn_c1, spawn_c8: one per concurrency of CONC)
#       Processes per second: /bin/true started and waited for SPAWN_N
#       times, CONC at a time (a new one as soon as one is reaped), after
#       min(N/10, 200) not measured; stdin, stdout and stderr inherited.
#       ours: CONC tasks of asyncio_create_subprocess_exec() +
#       asyncio_process_wait() (bench/bench_subprocess.c); bare: a
#       posix_spawn() + waitpid(-1) loop with no event loop, the limit
#       (bench/subprocess/spawn_bare.c); libuv: uv_spawn() with the next
#       started from the exit callback (bench/subprocess/spawn_uv.c);
#       asyncio: CONC tasks of asyncio.create_subprocess_exec() +
#       proc.wait() (bench/py/bench_subprocess.py, PY_SPAWN_N processes).
#       Each program times itself, from the first spawn of the N to the last
#       reap; cpu_us is the user + system CPU per process of the spawner
#       and its children together (a fork's cost falls on both sides; the
#       spawner's own share is in raw.txt, spawn_parent_cpu_us).
#   pipe
#       Reading a child's stdout: the child writes PIPE_BYTES zero bytes
#       (`head -c PIPE_BYTES /dev/zero`, 4 KiB a write). ours:
#       bench_subprocess pipe, the stream read to its end with reads of
#       PIPE_CHUNK bytes, dropped; shell:
#       `sh -c 'head -c PIPE_BYTES /dev/zero | cat >/dev/null'`. Both timed
#       the same way, from outside, with bash's `time`: MB/s (10^6 bytes)
#       over the wall time of the whole process, and cpu_us, the user +
#       system CPU per MB of every process of the run (head's included,
#       the same in both).
# Nothing is pinned: a child runs where the scheduler puts it, as it would.
#
# Targets (issue 20): spawn: ours >= 0.9x bare's rate and >= libuv's (their
# paired ratios); pipe: ours >= 0.9x the shell pipeline's MB/s. Python's
# ratio is shown without a target. Ratios are ours vs the peer of the row,
# > 1 when ours is better (thr: ours/peer, cpu: peer/ours), the median over
# the rounds of each round's ratio (a round's implementations ran one after
# the other, so a pair shares the machine's speed of the moment); q1-q3
# their quartiles.
#
# Environment:
#   ROUNDS       rounds (default 7)
#   WORKLOADS    default "spawn pipe"
#   CONC         spawn's concurrencies, one row each (default "1 8")
#   SPAWN_N      processes per spawn run in C (default 5000)
#   PY_SPAWN_N   the same for Python (default SPAWN_N)
#   PIPE_BYTES   bytes through the pipe (default 1073741824: 1 GiB)
#   PIPE_CHUNK   bytes a read of ours asks for (default 65536, the stream's
#                limit). cat asks for 128 KiB; against head's 4 KiB writes,
#                reads of 128 KiB cost ours 1.4-2x the CPU of 64 KiB ones on
#                a 2-vCPU VM: neither side slept (about 100 context switches
#                for 300 MB instead of 12000) and perf showed head spinning
#                on the pipe's lock (mutex_spin_on_owner) while ours copied.
#   BUILD        build directory (default bench/results/build-subprocess)
#   PYTHON       interpreter (default /usr/bin/python3)
#
# As root, installs what is missing with apt-get (build-essential cmake
# libuv1-dev python3). If bench_subprocess does not build, the peers run
# alone and ours shows "-". ASYNCIO_BUSY_POLL_US and ASYNCIO_BACKEND are
# unset: the library's defaults. Raw output goes to
# bench/results/subprocess-<timestamp>/.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
ROUNDS=${ROUNDS:-7}
WORKLOADS=${WORKLOADS:-spawn pipe}
CONC=${CONC:-1 8}
SPAWN_N=${SPAWN_N:-5000}
PY_SPAWN_N=${PY_SPAWN_N:-$SPAWN_N}
PIPE_BYTES=${PIPE_BYTES:-1073741824}
PIPE_CHUNK=${PIPE_CHUNK:-65536}
BUILD=${BUILD:-$here/results/build-subprocess}
PY=${PYTHON:-/usr/bin/python3}
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in bench/py
unset ASYNCIO_BUSY_POLL_US ASYNCIO_BACKEND

# shellcheck source=bench/lib.sh
. "$here/lib.sh"
check_settings subprocess.sh "spawn pipe" ROUNDS SPAWN_N PY_SPAWN_N PIPE_BYTES PIPE_CHUNK
for c in $CONC; do
    case $c in '' | *[!0-9]* | 0) echo "subprocess.sh: CONC must be positive integers (1-1024)" >&2; exit 2 ;; esac
    [ "$c" -le 1024 ] || { echo "subprocess.sh: CONC must be positive integers (1-1024)" >&2; exit 2; }
done
start_s=$(date +%s)

# ---- what is needed -------------------------------------------------------
missing=()
if wants spawn; then
    have_uvdev || missing+=(libuv1-dev)
    [ -x "$PY" ] || missing+=(python3)
fi
install_with_build_tools subprocess.sh "${missing[@]}"

# ---- where the output goes ------------------------------------------------
new_results subprocess

# ---- build ----------------------------------------------------------------
blog=$out/build.txt
sbin=$BUILD/subprocess
ours=$BUILD/bench/bench_subprocess
build_bench "$blog" bench_subprocess
build_peer "$blog" "$here/subprocess/spawn_bare.c" "$sbin/spawn_bare"
build_uv_peer "$blog" "$here/subprocess/spawn_uv.c" "$sbin/spawn_uv"

spawn_impls=() pipe_impls=()
[ -x "$ours" ] && spawn_impls+=(ours) pipe_impls+=(ours)
[ -x "$sbin/spawn_bare" ] && spawn_impls+=(bare)
[ -x "$sbin/spawn_uv" ] && spawn_impls+=(libuv)
if [ -x "$PY" ]; then spawn_impls+=(asyncio); else echo "subprocess.sh: no $PY: Python runs skipped" >&2; fi
pipe_impls+=(shell)

{
    bench_header "libasyncio subprocess benchmarks"
    echo "peers:   libuv $(dpkg-query -W -f='${Version}' libuv1-dev 2>/dev/null || echo '?')," \
        "python $("$PY" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || echo none)," \
        "$(readlink -f /bin/sh) for the pipeline, $(head --version 2>/dev/null | head -n 1)"
    echo "runs:    ROUNDS=$ROUNDS WORKLOADS=\"$WORKLOADS\" CONC=\"$CONC\" SPAWN_N=$SPAWN_N" \
        "PY_SPAWN_N=$PY_SPAWN_N PIPE_BYTES=$PIPE_BYTES PIPE_CHUNK=$PIPE_CHUNK; not pinned"
    echo "impls:   spawn: ${spawn_impls[*]}; pipe: ${pipe_impls[*]}"
} | tee "$out/header.txt"
echo

# ---- one run of each workload ---------------------------------------------
# failed ROUND WORKLOAD IMPL T0 RC LOG: report a run that left no figures.
failed() {
    progress "$1" "$2" "$3" "$4" "FAILED (exit $5): $(tail -n 1 "$6" 2>/dev/null)"
}

# run_spawn ROUND IMPL CONC: one process, its figures recorded.
run_spawn() {
    local round=$1 impl=$2 c=$3 w=spawn_c$3 t0=$SECONDS rc=0 n=$SPAWN_N cmd log thr cpu
    case $impl in
        ours) cmd=("$ours") ;;
        bare) cmd=("$sbin/spawn_bare") ;;
        libuv) cmd=("$sbin/spawn_uv") ;;
        asyncio) cmd=("$PY" "$here/py/bench_subprocess.py") n=$PY_SPAWN_N ;;
    esac
    log=$out/r$round-$w-$impl.txt
    timeout -k 5 900 "${cmd[@]}" spawn "$n" "$c" >"$log" 2>&1 </dev/null || rc=$?
    thr=$(field "$log" spawn_per_s)
    cpu=$(field "$log" spawn_cpu_us)
    if [ $rc != 0 ] || [ -z "$thr" ]; then
        failed "$round" "$w" "$impl" "$t0" "$rc" "$log"
        return 0
    fi
    record "$round" "$impl" "$w" thr "$thr" procs/s
    record "$round" "$impl" "$w" cpu_us "$cpu" us
    record "$round" "$impl" "$w" parent_cpu_us "$(field "$log" spawn_parent_cpu_us)" us
    record "$round" "$impl" "$w" failures "$(field "$log" spawn_failures)" procs
    progress "$round" "$w" "$impl" "$t0" "$(printf '%9.0f procs/s %9.1f us CPU/proc (spawner %s us)%s' \
        "$thr" "$cpu" "$(field "$log" spawn_parent_cpu_us)" \
        "$([ "$(field "$log" spawn_failures)" = 0 ] || echo "  ($(field "$log" spawn_failures) failed)")")"
}

# run_pipe ROUND IMPL: one run under bash's time, its figures recorded.
run_pipe() {
    local round=$1 impl=$2 w=pipe t0=$SECONDS rc=0 cmd log real user sys
    # shellcheck disable=SC2016 # $0 is the inner shell's
    case $impl in
        ours) cmd=("$ours" pipe "$PIPE_BYTES" "$PIPE_CHUNK") ;;
        shell) cmd=(sh -c 'head -c "$0" /dev/zero | cat >/dev/null' "$PIPE_BYTES") ;;
    esac
    log=$out/r$round-$w-$impl.txt
    local TIMEFORMAT='%R %U %S'
    { time timeout -k 5 900 "${cmd[@]}" >"$log" 2>&1 </dev/null; } 2>"$log.time" || rc=$?
    read -r real user sys <"$log.time" || true
    if [ $rc != 0 ] || [ -z "${sys:-}" ]; then
        failed "$round" "$w" "$impl" "$t0" "$rc" "$log"
        return 0
    fi
    local mbs cpu
    mbs=$(awk -v b="$PIPE_BYTES" -v t="$real" 'BEGIN {if (t > 0) printf "%.1f", b / 1e6 / t}')
    cpu=$(awk -v b="$PIPE_BYTES" -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", (u + s) * 1e6 / (b / 1e6)}')
    record "$round" "$impl" "$w" thr "$mbs" MB/s
    record "$round" "$impl" "$w" cpu_us "$cpu" us
    record "$round" "$impl" "$w" wall_s "$real" s
    progress "$round" "$w" "$impl" "$t0" "$(printf '%9s MB/s %9s us CPU/MB  (%s s, user %s s, sys %s s)' \
        "$mbs" "$cpu" "$real" "$user" "$sys")"
}

# ---- the rounds -----------------------------------------------------------
echo "running $WORKLOADS, $ROUNDS round(s) ..." >&2
for ((r = 1; r <= ROUNDS; r++)); do
    if wants spawn; then
        for c in $CONC; do
            for impl in $(rotate "$r" "${spawn_impls[@]}"); do run_spawn "$r" "$impl" "$c"; done
        done
    fi
    if wants pipe; then
        for impl in $(rotate "$r" "${pipe_impls[@]}"); do run_pipe "$r" "$impl"; done
    fi
done

# ---- the table ------------------------------------------------------------
# Rows as paired_table (bench/lib.sh) reads them.
rows=$out/rows.txt
{
    if wants spawn; then
        for c in $CONC; do
            echo "spawn_c$c|ours||"
            echo "spawn_c$c|bare|thr >= 0.9x bare (the limit)|thr >= 0.9"
            echo "spawn_c$c|libuv|thr >= libuv|thr >= 1"
            echo "spawn_c$c|asyncio|(no target)|"
        done
    fi
    if wants pipe; then
        echo "pipe|ours||"
        echo "pipe|shell|thr >= 0.9x shell pipeline|thr >= 0.9"
    fi
} >"$rows"
paired_table "$rows" "$ROUNDS round(s) (spawn: $SPAWN_N processes a run, Python $PY_SPAWN_N; pipe: $PIPE_BYTES bytes)" \
    "a round's implementations ran one after the other" | tee "$out/table.txt"
echo "cpu_us: user + system CPU per process (spawn: the spawner's and its children's) or per MB (pipe: every" |
    tee -a "$out/table.txt"
echo "process of the run, head's included); MB = 10^6 bytes" | tee -a "$out/table.txt"
