#!/usr/bin/env bash
# bench/compare.sh: A/B benchmark of two builds of libasyncio in one run.
# A is a revision, B the working tree as it is (uncommitted changes and
# untracked files that git does not ignore included), or a second revision. Both are built in
# Release in a scratch directory, then measured in turn, round by round, and
# a table gives per metric the medians of A and B and the median and
# quartiles of the rounds' paired ratios, with a verdict.
#
#   bench/compare.sh REV                      REV against the working tree
#   bench/compare.sh REV REV2                 REV against REV2 (two commits)
#   ROUNDS=3 SECS=1 bench/compare.sh REV      quick mode (about 2.5 min)
#   BENCHES="switch sync" WORKLOADS="echo http redis" bench/compare.sh REV
#   bench/compare.sh HEAD                     identical code: a noise check
#   MIN_EFFECT=0.02 bench/compare.sh --table bench/results/compare-STAMP
#                                             an earlier run's table again
#
# The defaults took 6.6 min on a 2-vCPU AMD EPYC VM (builds 30 s, each round
# about 50 s: the engine benchmarks 33 s, echo 16 s); quick mode 2.5 min.
#
# What a round is (the order A, B flips every round, so that neither always
# goes first):
#   engine  for each of BENCHES (switch spawn scale timers sync, as in
#           bench/run.sh): bench_NAME of A, then of B (or B, then A), pinned
#           to CPU 1. Each prints medians of its own repetitions.
#   echo    both builds' examples/echo_server run at once (CPU 0), one
#           bench/net/echo_load (CPU 1) loads them in turn, SLICE seconds each
#           (forwards, then backwards), until each has had SECS seconds, per
#           case of ECHO_CASES (SIZExDEPTH: 10 connections, DEPTH messages of
#           SIZE bytes in flight on each; default 1 KiB x1, 1 KiB x16,
#           100 KiB x16 as in bench/net.sh). Rows: msgs_per_s, and cpu_us, the
#           server's CPU per message (echo_load --pid, all its threads). TCP
#           receive buffers are fixed at ECHO_RMEM meanwhile (as root), as
#           net.sh does: with autotuning the 100 KiB x16 case alone drifts
#           by 20%.
#   http    (WORKLOADS) both builds' examples/http_server; a wrk -t1 -c100 on
#           each, taking turns through bench/net/alternate (SIGSTOP/SIGCONT,
#           SLICE seconds each): req_per_s over the time its wrk ran, and
#           cpu_us per request.
#   redis   (WORKLOADS) both builds' examples/kv_server; redis-benchmark -c 50
#           -t ping_mbulk, set, get, without and with -P 16, the same number
#           of requests each, taking turns through alternate; req_per_s per
#           test, cpu_us per request over the three.
# Fresh servers every round and case, each on a port no socket used before;
# a server counts as started when it is alive and itself holds the listening
# socket of its port. The machine's speed drifts by 25-60% from run to run
# and by 5-10% between 50 ms slices: only A and B measured in the same turn
# can be compared, so every round gives one paired ratio per metric.
#
# The table: median A, median B (over the rounds), then the median of the
# rounds' paired ratios, oriented so that > 1 means B (the working tree) is
# better (B/A for rates, A/B for times and costs), their first and third
# quartiles (linear interpolation, as numpy's default), and the verdict:
#   better  q1 > 1 and median ratio > 1 + max(MIN_EFFECT, q3 - q1)
#   worse   q3 < 1 and median ratio < 1 - max(MIN_EFFECT, q3 - q1)
#   same    otherwise
# That is, the whole interquartile range of the paired ratios lies beyond 1,
# and the median lies beyond 1 by more than that range is wide and by more
# than MIN_EFFECT (default 0.01, 1%). The interquartile range alone says
# that at least three rounds in four agree, which happens by chance in 20-35%
# of metrics with 5-7 rounds (each round's ratio is as likely above 1 as
# below with identical code); asking the shift to exceed the spread as well
# brings that to a few percent on noisy metrics (max_wake_late_ms,
# create_s) and to nothing on steady ones. The price: a shift smaller than
# its own round-to-round spread reads "same" (more ROUNDS narrow nothing
# there; longer SECS and fewer other processes do). Counts (tasks, timers)
# read "same" when every round agrees, else "differs". Differences of code
# placement alone (see README.md) can move a microbenchmark by a few percent
# with no change to its code: a "worse" on one microbenchmark, alone, is worth
# a second run before it is believed.
#
# Environment:
#   ROUNDS      rounds (default 5)
#   SECS        seconds of echo load per build and case in a round (default 3;
#               http and redis: seconds per build and test)
#   BENCHES     engine benchmarks (default "switch spawn scale timers sync")
#   WORKLOADS   network workloads among echo http redis (default "echo"; ""
#               for none)
#   ECHO_CASES  echo cases, SIZExDEPTH (default "1024x1 1024x16 102400x16")
#   SCALE_N     tasks for bench_scale (default 1000000, as bench/run.sh)
#   SLICE       seconds a server is loaded before the other (default 0.05)
#   ECHO_RMEM   TCP receive buffer in bytes while echo runs (default 4194304;
#               "auto": the kernel's autotuning)
#   A_ENV, B_ENV  environment for A's or B's programs (servers and engine
#               benchmarks), as VAR=VALUE words: with two identical builds,
#               the cost of a run-time switch, e.g.
#               B_ENV=ASYNCIO_TASK_COUNTERS=1 bench/compare.sh HEAD HEAD
#   MIN_EFFECT  smallest shift a verdict reports (default 0.01)
#   OUT         output directory (default bench/results/compare-<stamp>/,
#               which .gitignore covers)
#   KEEP        1: keep the sources and builds in OUT (default: removed)
#   PORT_BASE   first port tried (default 18400)
#   WAIT_QUIET  before each round, wait up to this many seconds until other
#               processes use less than 10% of a CPU over 5 s (default 0:
#               do not wait). Either way the table's footer says how much
#               CPU other processes took during the rounds (the machine's
#               busy time less this script's and its children's), and each
#               round's share is in raw.txt (side x, other_cpu_pct).
#
# The sources: REV with git archive, the working tree by copying the files
# of `git ls-files --cached --others --exclude-standard` that exist, into
# OUT/a/src and OUT/b/src (paths of the same length, so that identical code
# makes identical binaries; the header says which binaries are). Nothing is
# written to the repository: no worktree, index or stash. The load tools
# (echo_load, alternate) are built from B's bench/net/. Sources and builds
# are removed at exit, also on failure or Ctrl-C; servers are stopped by
# their pids. Kept in OUT: header.txt, table.txt, raw.txt (round side
# metric value unit), progress.txt, every run's output (rR-SIDE-NAME.txt),
# the build logs, b-status.txt and b.diff (the working tree's changes
# against its HEAD) and a-b-files.txt (the files that differ).
#
# Exits 2 on bad usage, 1 when a build fails, a server does not start or a
# measurement fails (the rounds so far stay in raw.txt). As root on Debian,
# installs what is missing (build-essential, cmake; wrk for http,
# redis-tools for redis) with install_missing from bench/lib.sh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
me=compare.sh
# shellcheck source=bench/lib.sh disable=SC1091 # followed with shellcheck -x
. "$here/lib.sh"

# table RAW ROUNDS A-NAME B-NAME TOTAL-S OUT: the table, on stdout
table() {
    awk -v rounds="$2" -v min="$MIN_EFFECT" -v a="$3" -v b="$4" -v total="$5" -v out="$6" '
    function fmt(x, ax) {
        if (x == "") return "-"
        ax = x < 0 ? -x : x
        if (ax >= 1e6) return sprintf("%.4g", x)
        if (ax >= 1000) return sprintf("%.0f", x)
        if (ax >= 100) return sprintf("%.1f", x)
        if (ax >= 10) return sprintf("%.2f", x)
        return sprintf("%.4g", x)
    }
    '"$awk_quantile"' # quantile(), from bench/lib.sh
    # 1: higher is better (rates), 0: lower is better (times, costs), -1: a count
    function dir(m) {
        if (m == "tasks" || m == "timers") return -1
        return m ~ /_per_s$/ ? 1 : 0
    }
    {   # round side metric value unit
        if ($2 == "x") { other[$1] = $4; next }   # other_cpu_pct of the round
        if (!($3 in seen)) { seen[$3] = 1; order[++nm] = $3; unit[$3] = $5 }
        val[$1, $2, $3] = $4
        list[$2, $3] = list[$2, $3] " " $4
    }
    END {
        printf "%-30s %-7s %11s %11s %8s %8s %8s %3s  %s\n", "metric", "unit", "A", "B", "B vs A", "q1", "q3", "n", "verdict"
        for (k = 1; k <= nm; k++) {
            m = order[k]
            if (m ~ /_load_cpu_pct$/) continue   # in raw.txt only
            d = dir(m)
            ma = quantile(list["a", m], 0.5); mb = quantile(list["b", m], 0.5)
            rl = ""; np = 0; differ = 0
            for (r = 1; r <= rounds; r++) {
                if (!((r, "a", m) in val) || !((r, "b", m) in val)) continue
                x = val[r, "a", m] + 0; y = val[r, "b", m] + 0
                np++
                if (d == -1) { if (x != y) differ = 1; continue }
                if (x > 0 && y > 0) rl = rl " " (d ? y / x : x / y)
            }
            if (d == -1) {
                printf "%-30s %-7s %11s %11s %8s %8s %8s %3d  %s\n", m, unit[m], fmt(ma), fmt(mb), "-", "-", "-", np,
                    differ ? "differs" : "same"
                continue
            }
            if (rl == "") {
                printf "%-30s %-7s %11s %11s %8s %8s %8s %3d  %s\n", m, unit[m], fmt(ma), fmt(mb), "-", "-", "-", 0, "-"
                continue
            }
            q1 = quantile(rl, 0.25); md = quantile(rl, 0.5); q3 = quantile(rl, 0.75)
            band = q3 - q1 > min ? q3 - q1 : min
            v = "same"
            if (q1 > 1 && md > 1 + band) v = "better"
            else if (q3 < 1 && md < 1 - band) v = "worse"
            if (split(rl, tmp, " ") < 3) v = "-"   # too few rounds to tell
            cnt[v]++
            if (q3 - q1 > widest) { widest = q3 - q1; widest_m = m }
            printf "%-30s %-7s %11s %11s %8.3f %8.3f %8.3f %3d  %s\n", m, unit[m], fmt(ma), fmt(mb), md, q1, q3, split(rl, tmp, " "), v
        }
        print "A = " a ", B = " b "; medians of " rounds " round(s), A and B in turn (order flipped every round)."
        print "B vs A: the median of the rounds'"'"' paired ratios, > 1 when B is better (B/A for rates, A/B for"
        print "times and costs), q1 and q3 their quartiles; better/worse: q1 > 1 (q3 < 1) and the median beyond 1"
        printf "by more than max(q3 - q1, %s), with n >= 3; n: paired rounds. verdicts: %d better, %d worse, %d same",
            min, cnt["better"], cnt["worse"], cnt["same"]
        if (widest_m != "") printf "; widest q1-q3: %.3f (%s)", widest, widest_m
        print ""
        ol = ""; omax = -1
        for (r = 1; r <= rounds; r++) if (r in other) {
            ol = ol " " other[r]
            if (other[r] + 0 > omax) { omax = other[r] + 0; rmax = r }
        }
        if (ol != "") {
            # (a comparison among the arguments of printf would be read by awk
            # as an output redirection: decide the words first)
            loud = ""
            if (omax > 10) loud = ": the machine was not quiet, the ratios are less sure"
            printf "other processes: %.1f%% of a CPU (median of the rounds), at most %.1f%% (round %d)%s\n",
                quantile(ol, 0.5), omax, rmax, loud
        }
        print "total time: " total " s; raw output: " out
    }' "$1"
}

# bench/compare.sh --table DIR: the table of an earlier run again, from its
# raw.txt (with this MIN_EFFECT)
if [ "${1-}" = --table ]; then
    if [ $# != 2 ] || [ ! -f "$2/raw.txt" ] || [ ! -f "$2/meta.txt" ]; then
        echo "$me: --table DIR: no DIR/raw.txt or DIR/meta.txt" >&2
        exit 2
    fi
    MIN_EFFECT=${MIN_EFFECT:-0.01}
    mapfile -t meta <"$2/meta.txt"
    table "$2/raw.txt" "${meta[0]}" "${meta[1]}" "${meta[2]}" "${meta[3]}" "$(cd "$2" && pwd)"
    exit 0
fi

usage() {
    echo "usage:" >&2
    sed -n '/^#   bench\/compare.sh REV /,/^#   bench\/compare.sh HEAD/p' "${BASH_SOURCE[0]}" | sed 's/^#/ /' >&2
    exit 2
}
[ $# = 1 ] || [ $# = 2 ] || usage
rev_arg=$1
revb_arg=${2-}
for a in "$@"; do
    case $a in '' | -*) usage ;; esac
done

ROUNDS=${ROUNDS:-5}
SECS=${SECS:-3}
BENCHES=${BENCHES-switch spawn scale timers sync}
WORKLOADS=${WORKLOADS-echo}
ECHO_CASES=${ECHO_CASES:-1024x1 1024x16 102400x16}
SCALE_N=${SCALE_N:-1000000}
SLICE=${SLICE:-0.05}
ECHO_RMEM=${ECHO_RMEM:-4194304}
MIN_EFFECT=${MIN_EFFECT:-0.01}
KEEP=${KEEP:-0}
PORT_BASE=${PORT_BASE:-18400}
WAIT_QUIET=${WAIT_QUIET:-0}

die2() { echo "$me: $*" >&2; exit 2; }
for v in ROUNDS SECS SCALE_N PORT_BASE; do
    case ${!v} in '' | *[!0-9]* | 0) die2 "$v must be a positive integer" ;; esac
done
case $WAIT_QUIET in '' | *[!0-9]*) die2 "WAIT_QUIET must be a number of seconds" ;; esac
num() { awk -v s="$1" 'BEGIN {exit !(s ~ /^[0-9]*\.?[0-9]+$/)}'; }
if ! num "$SLICE" || ! awk -v s="$SLICE" 'BEGIN {exit !(s > 0)}'; then
    die2 "SLICE must be a positive number of seconds"
fi
num "$MIN_EFFECT" || die2 "MIN_EFFECT must be a number (0.01 is 1%)"
case $ECHO_RMEM in auto) ;; '' | *[!0-9]* | 0) die2 "ECHO_RMEM must be a number of bytes or auto" ;; esac
read -r -a benches <<<"$BENCHES"
read -r -a workloads <<<"$WORKLOADS"
read -r -a echo_cases <<<"$ECHO_CASES"
for b in "${benches[@]}"; do
    case $b in switch | spawn | scale | timers | sync) ;; *) die2 "unknown benchmark $b (switch spawn scale timers sync)" ;; esac
done
for w in "${workloads[@]}"; do
    case $w in echo | http | redis) ;; *) die2 "unknown workload $w (echo http redis)" ;; esac
done
for c in "${echo_cases[@]}"; do
    [[ $c =~ ^[1-9][0-9]*x[1-9][0-9]*$ ]] || die2 "bad echo case $c (SIZExDEPTH, such as 1024x16)"
done
[ ${#benches[@]} -gt 0 ] || [ ${#workloads[@]} -gt 0 ] || die2 "nothing to run (BENCHES and WORKLOADS are empty)"
wants() { local w; for w in "${workloads[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }

git -C "$root" rev-parse --git-dir >/dev/null 2>&1 || { echo "$me: $root is not a git repository" >&2; exit 2; }
rev=$(git -C "$root" rev-parse --verify -q "$rev_arg^{commit}") || die2 "$rev_arg is not a commit"
rev_short=$(git -C "$root" rev-parse --short "$rev")
revb="" revb_short=""
if [ -n "$revb_arg" ]; then
    revb=$(git -C "$root" rev-parse --verify -q "$revb_arg^{commit}") || die2 "$revb_arg is not a commit"
    revb_short=$(git -C "$root" rev-parse --short "$revb")
fi
head_short=$(git -C "$root" rev-parse --short HEAD)

start_s=$(date +%s)

# ---- what is needed -------------------------------------------------------
missing=()
{ command -v cc >/dev/null && command -v make >/dev/null; } || missing+=(build-essential)
command -v cmake >/dev/null || missing+=(cmake)
command -v tar >/dev/null || missing+=(tar)
if wants http; then command -v wrk >/dev/null || missing+=(wrk); fi
if wants redis; then command -v redis-benchmark >/dev/null || missing+=(redis-tools); fi
install_missing "$me" "${missing[@]}"
for t in cc cmake tar; do
    command -v "$t" >/dev/null || { echo "$me: $t is needed" >&2; exit 1; }
done
if wants http; then command -v wrk >/dev/null || { echo "$me: http needs wrk" >&2; exit 1; }; fi
if wants redis; then
    command -v redis-benchmark >/dev/null || { echo "$me: redis needs redis-benchmark (redis-tools)" >&2; exit 1; }
fi

# ---- where things go ------------------------------------------------------
stamp=$(date +%Y%m%d-%H%M%S)
out=${OUT:-$here/results/compare-$stamp}
[ ! -e "$out" ] || [ -z "$(ls -A "$out" 2>/dev/null)" ] || die2 "$out exists and is not empty"
mkdir -p "$out"
out=$(cd "$out" && pwd)
raw=$out/raw.txt   # round side metric value unit
: >"$raw"
: >"$out/progress.txt"

# ---- processes: every one started here is stopped by its pid --------------
pids=()
forget() {  # PID: off the list
    local i
    for i in "${!pids[@]}"; do [ "${pids[i]}" = "$1" ] && unset 'pids[i]'; done
    pids=("${pids[@]}")
}
cleanup() {
    local i rc=$?
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[i]}"; done
    pids=()
    tcp_rmem_restore "$me"
    if [ "$KEEP" != 1 ]; then rm -rf "$out/a" "$out/b" "$out/tools"; fi
    [ $rc = 0 ] || echo "$me: stopped (exit $rc); what was measured is in $out" >&2
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() { echo "$me: $*" >&2; exit 1; }

# progress TEXT: on stderr and in progress.txt
progress() { echo "  $*" | tee -a "$out/progress.txt" >&2; }

# ---- the sources ----------------------------------------------------------
mkdir -p "$out/a/src" "$out/b/src"
git -C "$root" archive --format=tar "$rev" | tar -C "$out/a/src" -xf - ||
    fail "git archive $rev_short failed"
if [ -n "$revb" ]; then
    git -C "$root" archive --format=tar "$revb" | tar -C "$out/b/src" -xf - ||
        fail "git archive $revb_short failed"
    : >"$out/b-status.txt"
    : >"$out/b.diff"
else
    git -C "$root" status --porcelain=v1 --untracked-files=all >"$out/b-status.txt"
    git -C "$root" diff HEAD >"$out/b.diff"
    git -C "$root" ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do
            if [ -e "$root/$f" ] || [ -L "$root/$f" ]; then printf '%s\0' "$f"; fi
        done >"$out/b-files.lst"
    tar -C "$root" --null -T "$out/b-files.lst" -cf - | tar -C "$out/b/src" -xf - ||
        fail "copying the working tree failed"
    rm -f "$out/b-files.lst"
fi
(cd "$out" && diff -rq a/src b/src | sed -e 's|^Files a/src/\(.*\) and b/src/.* differ$|\1|' \
    -e 's|^Only in \([ab]\)/src/*\([^:]*\): \(.*\)$|\2/\3 (only in \1)|' -e 's|^/||') >"$out/a-b-files.txt" || true
b_changes=$(wc -l <"$out/b-status.txt")

# ---- build ----------------------------------------------------------------
nproc_=$(nproc 2>/dev/null || echo 2)
targets=()
for b in "${benches[@]}"; do targets+=("bench_$b"); done
servers=()
if wants echo; then servers+=(echo_server); fi
if wants http; then servers+=(http_server); fi
if wants redis; then servers+=(kv_server); fi
for s in "${servers[@]}"; do targets+=("example_$s"); done
onoff() { if [ "$1" -gt 0 ]; then echo ON; else echo OFF; fi; }

name_of() {  # SIDE: what it is, in words
    if [ "$1" = a ]; then echo "$rev_short"; elif [ -n "$revb" ]; then echo "$revb_short"; else echo "the working tree"; fi
}
build() {  # SIDE: OUT/SIDE/src into OUT/SIDE/build
    local side=$1 log=$out/build-$1.txt t0=$SECONDS
    echo "$me: building $side ..." >&2
    if ! { cmake -S "$out/$side/src" -B "$out/$side/build" -DCMAKE_BUILD_TYPE=Release \
        -DASYNCIO_BUILD_TESTS=OFF -DASYNCIO_BUILD_BENCH="$(onoff ${#benches[@]})" \
        -DASYNCIO_BUILD_EXAMPLES="$(onoff ${#servers[@]})" &&
        cmake --build "$out/$side/build" -j "$nproc_" --target "${targets[@]}"; } >"$log" 2>&1; then
        tail -n 20 "$log" | sed 's/^/    /' >&2
        fail "the build of $side ($(name_of "$side")) failed; see $log"
    fi
    echo "$me: built $side in $((SECONDS - t0)) s" >&2
}
build a
build b
side_env() {  # SIDE: "env VAR=VALUE..." for A_ENV or B_ENV, or nothing
    local e
    if [ "$1" = a ]; then e=${A_ENV:-}; else e=${B_ENV:-}; fi
    [ -z "$e" ] || echo "env $e"
}

bin() {  # SIDE NAME: the path of a built program
    case $2 in
        bench_*) echo "$out/$1/build/bench/$2" ;;
        *) echo "$out/$1/build/examples/$2" ;;
    esac
}
# Which machine code is the same: the libraries, the benchmark programs
# (linked statically) and the examples' objects (their executables name
# their own build directory in their run path, so never match).
same_bins=() diff_bins=()
same() {  # NAME FILE-A FILE-B
    if cmp -s "$2" "$3"; then same_bins+=("$1"); else diff_bins+=("$1"); fi
}
for f in libasyncio.so libasyncio.a; do
    [ ! -e "$out/a/build/$f" ] || same "$f" "$out/a/build/$f" "$out/b/build/$f"
done
for t in "${targets[@]}"; do
    n=${t#example_}
    for side in a b; do
        [ -x "$(bin "$side" "$n")" ] || fail "the build of $side made no $n"
    done
    case $t in
        bench_*) same "$n" "$(bin a "$n")" "$(bin b "$n")" ;;
        *)
            o=examples/CMakeFiles/$t.dir/$n.c.o
            same "$n.o" "$out/a/build/$o" "$out/b/build/$o"
            # each example must load its own build's libasyncio.so
            for side in a b; do
                lib=$(ldd "$(bin "$side" "$n")" 2>/dev/null | awk '$1 ~ /^libasyncio\.so/ {print $3}')
                case $lib in
                    "$out/$side/build/"*) ;;
                    *) fail "$side's $n loads libasyncio.so from '${lib:-nowhere}', not from its build (LD_LIBRARY_PATH?)" ;;
                esac
            done
            ;;
    esac
done

tools=$out/tools
mkdir -p "$tools"
if [ ${#workloads[@]} -gt 0 ]; then
    for p in echo_load alternate; do
        cc -O2 -std=gnu11 -Wall -Wextra -o "$tools/$p" "$out/b/src/bench/net/$p.c" >>"$out/build-tools.txt" 2>&1 ||
            fail "bench/net/$p.c does not build (see $out/build-tools.txt)"
    done
fi

# ---- machine set-up -------------------------------------------------------
pin_srv=() pin_load=()
if command -v taskset >/dev/null && [ "$nproc_" -ge 2 ] && taskset -c 1 true 2>/dev/null; then
    pin_srv=(taskset -c 0)
    pin_load=(taskset -c 1)
else
    echo "$me: not pinned (needs taskset and 2 CPUs): numbers are noisier" >&2
fi
if wants echo && [ "$ECHO_RMEM" != auto ] && [ "$(id -u)" != 0 ]; then
    echo "$me: not root: echo runs with autotuned TCP buffers (ECHO_RMEM=auto)" >&2
    ECHO_RMEM=auto
fi
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
ulimit -n "$hard" 2>/dev/null || true

subject() { git -C "$root" log -1 --format=%s "$1" | cut -c1-60; }
{
    echo "libasyncio A/B comparison, $(date '+%Y-%m-%d %H:%M:%S %Z')"
    echo "A:        $rev_short ($(subject "$rev"))"
    if [ -n "$revb" ]; then
        echo "B:        $revb_short ($(subject "$revb"))"
    elif [ "$b_changes" = 0 ]; then
        echo "B:        working tree = HEAD $head_short ($(subject HEAD)), no changes"
    else
        echo "B:        working tree = HEAD $head_short + $b_changes changed or untracked file(s) (b-status.txt, b.diff)"
    fi
    echo "sources:  $(wc -l <"$out/a-b-files.txt") file(s) differ (a-b-files.txt)$(
        d=$(grep -E '^(bench|examples)/' "$out/a-b-files.txt" | tr '\n' ' ' | sed 's/ *$//' || true)
        [ -z "$d" ] || echo "; benchmarks and examples: $d")"
    echo "binaries: ${#same_bins[@]} identical${same_bins[*]:+ (${same_bins[*]})}, ${#diff_bins[@]} differ${diff_bins[*]:+ (${diff_bins[*]})}"
    echo "machine:  $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)," \
        "$(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "runs:     ROUNDS=$ROUNDS SECS=$SECS BENCHES=\"${benches[*]}\" WORKLOADS=\"${workloads[*]}\"" \
        "ECHO_CASES=\"${echo_cases[*]}\" SCALE_N=$SCALE_N SLICE=$SLICE ECHO_RMEM=$ECHO_RMEM" \
        "MIN_EFFECT=$MIN_EFFECT, pinned: ${pin_srv[*]:-no} (servers) / ${pin_load[*]:-no} (load, engine)"
    [ -z "${A_ENV:-}${B_ENV:-}" ] || echo "env:      A: ${A_ENV:-(none)}; B: ${B_ENV:-(none)}"
} | tee "$out/header.txt"
echo

# ---- helpers --------------------------------------------------------------
# record ROUND SIDE METRIC VALUE UNIT
record() { [ -n "$4" ] && echo "$1 $2 $3 $4 $5" >>"$raw"; return 0; }
field() { awk -v n="$2" '$1 == n {print $2}' "$1"; }  # FILE NAME: the value of `NAME value unit`
div() { awk -v a="$1" -v b="$2" -v m="${3:-1}" 'BEGIN {if (b > 0) printf "%.6g\n", a * m / b}'; }

next_port=$PORT_BASE
pick_port() {  # sets port to one no socket uses, a new one every time
    while port_state "$next_port"; do
        next_port=$((next_port + 1))
        [ "$next_port" -lt 65536 ] || fail "no free port from PORT_BASE=$PORT_BASE"
    done
    port=$next_port
    next_port=$((next_port + 1))
}

# serve LOG CMD...: start CMD (pinned to the server CPU) on $port; sets spid.
# Waits until it holds the listening socket of $port itself; exits the
# script if it died or did not listen within 10 s.
serve() {
    local log=$1 i
    shift
    pick_port
    "${pin_srv[@]}" "$@" "$port" >"$log" 2>&1 &
    spid=$!
    pids+=("$spid")
    for ((i = 0; i < 200; i++)); do
        alive "$spid" || break
        listens "$spid" "$port" && return 0
        sleep 0.05
    done
    if alive "$spid"; then
        stop_pid "$spid"
        fail "$* did not listen on port $port within 10 s (see $log)"
    fi
    fail "$* $port exited at start (see $log: $(tail -n 1 "$log"))"
}

stop_server() {  # PID [LOG]: fails if it died before being stopped
    if ! alive "$1"; then
        forget "$1"
        wait "$1" 2>/dev/null || true
        fail "server pid $1 died during the run${2:+ (see $2)}"
    fi
    stop_pid "$1"
    forget "$1"
}

order() {  # ROUND: a b in odd rounds, b a in even ones
    if (($1 % 2)); then echo "a b"; else echo "b a"; fi
}

# ---- engine ---------------------------------------------------------------
run_bench() {  # ROUND SIDE NAME
    local r=$1 side=$2 b=$3 log=$out/r$1-$2-bench_$3.txt t0=$SECONDS rc=0 args=()
    [ "$b" = scale ] && args=("$SCALE_N")
    # shellcheck disable=SC2046 # side_env's words are meant to split
    "${pin_load[@]}" $(side_env "$side") "$(bin "$side" "bench_$b")" "${args[@]}" >"$log" 2>&1 || rc=$?
    [ $rc = 0 ] || fail "bench_$b of $side exited $rc in round $r (see $log)"
    awk -v r="$r" -v s="$side" 'NF == 3 && $2 ~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/ {print r, s, $1, $2, $3}' "$log" >>"$raw"
    progress "$(printf 'round %d  %s  bench_%-7s %3ds  %s' "$r" "$side" "$b" $((SECONDS - t0)) \
        "$(awk 'NF == 3 {printf "%s %s  ", $1, $2}' "$log")")"
}

# ---- echo -----------------------------------------------------------------
run_echo() {  # ROUND SIZE DEPTH SIDE SIDE
    local r=$1 size=$2 depth=$3 t0=$SECONDS w rc=0 sides=("$4" "$5") spids=() ports=() i side k
    w=echo_$(if ((size % 1024 == 0)); then echo "$((size / 1024))k"; else echo "$size"; fi)_d$depth
    local log=$out/r$r-$w.txt
    for side in "${sides[@]}"; do
        # shellcheck disable=SC2046
        serve "$out/r$r-$side-$w-server.txt" $(side_env "$side") "$(bin "$side" echo_server)"
        spids+=("$spid")
        ports+=("$port")
    done
    timeout $((2 * (SECS * 2 + 5) + 40)) "${pin_load[@]}" "$tools/echo_load" 127.0.0.1 "${ports[0]},${ports[1]}" \
        10 "$size" "$depth" "$SECS" --pid "${spids[0]},${spids[1]}" --warmup 0.2 --slice "$SLICE" \
        >"$log" 2>&1 || rc=$?
    for i in 0 1; do stop_server "${spids[i]}" "$out/r$r-${sides[i]}-$w-server.txt"; done
    [ $rc = 0 ] || fail "echo_load exited $rc in round $r, $w (see $log: $(tail -n 1 "$log"))"
    local text=""
    for i in 0 1; do
        side=${sides[i]}
        k=t$((i + 1)).
        local thr cpu
        thr=$(field "$log" "${k}msgs_per_s")
        cpu=$(field "$log" "${k}server_cpu_us_per_msg")
        [ -n "$thr" ] || fail "no ${k}msgs_per_s in $log"
        record "$r" "$side" "${w}_msgs_per_s" "$thr" msgs/s
        record "$r" "$side" "${w}_cpu_us" "$cpu" us/msg
        record "$r" "$side" "${w}_load_cpu_pct" "$(field "$log" "${k}load_cpu_pct")" %
        text+="$(printf '%s %9.0f msgs/s %7.3f us/msg   ' "$side" "$thr" "${cpu:-0}")"
    done
    progress "$(printf 'round %d  %-14s %3ds  %s' "$r" "$w" $((SECONDS - t0)) "$text")"
}

# ---- http -----------------------------------------------------------------
run_http() {  # ROUND SIDE SIDE
    local r=$1 t0=$SECONDS w=http rc=0 sides=("$2" "$3") spids=() ports=() i side
    local alog=$out/r$r-http-alternate.txt args=() c0=() c1=()
    for side in "${sides[@]}"; do
        # shellcheck disable=SC2046
        serve "$out/r$r-$side-http-server.txt" $(side_env "$side") "$(bin "$side" http_server)"
        spids+=("$spid")
        ports+=("$port")
    done
    for i in 0 1; do
        "${pin_load[@]}" wrk -t1 -c100 -d1s "http://127.0.0.1:${ports[i]}/" >"$out/r$r-${sides[i]}-http.warmup" 2>&1 || true
        [ "$i" = 0 ] || args+=(--)
        args+=("$out/r$r-${sides[i]}-http.txt" wrk -t1 -c100 -d"$((2 * SECS))s" "http://127.0.0.1:${ports[i]}/")
    done
    for i in 0 1; do c0[i]=$(cpu_ns "${spids[i]}"); done
    timeout $((2 * SECS * 3 + 30)) "${pin_load[@]}" "$tools/alternate" --slice "$SLICE" "${args[@]}" >"$alog" 2>&1 || rc=$?
    for i in 0 1; do c1[i]=$(cpu_ns "${spids[i]}"); done
    for i in 0 1; do stop_server "${spids[i]}" "$out/r$r-${sides[i]}-http-server.txt"; done
    [ $rc = 0 ] || fail "alternate (wrk) exited $rc in round $r (see $alog)"
    local text=""
    for i in 0 1; do
        side=${sides[i]}
        local log=$out/r$r-$side-http.txt act reqs errs thr cpu
        act=$(field "$alog" "c$((i + 1)).active_s")
        reqs=$(awk '$2 == "requests" && $3 == "in" {print $1}' "$log")
        errs=$(awk '/Non-2xx or 3xx responses:/ {e += $NF}
            /Socket errors:/ {gsub(/,/, ""); e += $4 + $6 + $8 + $10} END {print e + 0}' "$log")
        if [ -z "$act" ] || [ -z "$reqs" ]; then fail "no result from wrk in $log"; fi
        [ "$errs" = 0 ] || fail "wrk saw $errs errors from $side's http_server in round $r (see $log)"
        thr=$(div "$reqs" "$act")
        cpu=$(div $((c1[i] - c0[i])) "$reqs" 0.001)
        record "$r" "$side" http_req_per_s "$thr" req/s
        record "$r" "$side" http_cpu_us "$cpu" us/req
        text+="$(printf '%s %9.0f req/s %7.3f us/req   ' "$side" "$thr" "${cpu:-0}")"
    done
    progress "$(printf 'round %d  %-14s %3ds  %s' "$r" "$w" $((SECONDS - t0)) "$text")"
}

# ---- redis ----------------------------------------------------------------
# requests per test and build: a guess for SECS seconds at first, then SECS
# seconds at the mean rate seen in the round before
# shellcheck disable=SC2034 # read as ${!nvar}
redis_n_p1=$((SECS * 60000))
# shellcheck disable=SC2034
redis_n_p16=$((SECS * 800000))

run_redis() {  # ROUND MODE SIDE SIDE
    local r=$1 mode=$2 t0=$SECONDS w=redis_$2 rc sides=("$3" "$4") spids=() ports=() i side test
    local nvar=redis_n_$2 n extra=() cpu=(0 0) done_=(0 0) rates="" text=("" "")
    n=${!nvar}
    [ "$mode" = p16 ] && extra=(-P 16)
    for side in "${sides[@]}"; do
        # shellcheck disable=SC2046
        serve "$out/r$r-$side-$w-server.txt" $(side_env "$side") "$(bin "$side" kv_server)"
        spids+=("$spid")
        ports+=("$port")
    done
    for test in ping_mbulk set get; do
        local alog=$out/r$r-$w-$test-alternate.txt args=() c0=() c1=()
        for i in 0 1; do
            [ "$i" = 0 ] || args+=(--)
            args+=("$out/r$r-${sides[i]}-$w-$test.txt" redis-benchmark -h 127.0.0.1 -p "${ports[i]}"
                -t "$test" -c 50 -n "$n" "${extra[@]}" --csv)
            c0[i]=$(cpu_ns "${spids[i]}")
        done
        rc=0
        timeout $((2 * SECS * 6 + 20)) "${pin_load[@]}" "$tools/alternate" --slice "$SLICE" "${args[@]}" \
            >"$alog" 2>&1 || rc=$?
        for i in 0 1; do c1[i]=$(cpu_ns "${spids[i]}"); done
        [ $rc = 0 ] || fail "alternate (redis-benchmark $test) exited $rc in round $r (see $alog)"
        for i in 0 1; do
            side=${sides[i]}
            local a rps
            a=$(field "$alog" "c$((i + 1)).active_s")
            if [ -z "$a" ] || ! grep -q '^"[A-Z_]*","[0-9.]*"' "$out/r$r-$side-$w-$test.txt"; then
                fail "redis-benchmark $test against $side did not finish in round $r (see $out/r$r-$side-$w-$test.txt)"
            fi
            rps=$(div "$n" "$a")
            record "$r" "$side" "${w}_${test}_req_per_s" "$rps" req/s
            rates+=" $rps"
            text[i]+="$test $(printf '%.0f' "$rps")  "
            cpu[i]=$((cpu[i] + c1[i] - c0[i]))
            done_[i]=$((done_[i] + n))
        done
    done
    for i in 0 1; do
        stop_server "${spids[i]}" "$out/r$r-${sides[i]}-$w-server.txt"
        record "$r" "${sides[i]}" "${w}_cpu_us" "$(div "${cpu[i]}" "${done_[i]}" 0.001)" us/req
        progress "$(printf 'round %d  %-14s %3ds  %s %s%s us/req' "$r" "$w" $((SECONDS - t0)) "${sides[i]}" \
            "${text[i]}" "$(div "${cpu[i]}" "${done_[i]}" 0.001)")"
    done
    n=$(echo "$rates" | awk -v s="$SECS" '{for (i = 1; i <= NF; i++) {t += $i; k++}}
        END {if (k) {n = int(t / k * s / 10000) * 10000; print n < 10000 ? 10000 : n}}')
    printf -v "$nvar" '%s' "$n"
}

# ---- what else ran --------------------------------------------------------
# The CPU time the whole machine spent (user, nice, system) less what this
# script and its processes spent: other processes, as a percentage of one
# CPU over a round. (Interrupt time is left out on both sides.)
clk_tck=$(getconf CLK_TCK 2>/dev/null || echo 100)
# cpu_mark: sets mark to "BUSY OWN WALL": the machine's busy CPU seconds,
# those of this shell and its children that have ended, and the time. Not
# to be called in a subshell: `times` would count nothing there.
cpu_mark() {
    times >"$out/.times"
    mark=$(awk -v hz="$clk_tck" -v w="$(date +%s.%N)" '
        FILENAME != "/proc/stat" {for (i = 1; i <= NF; i++) {split($i, t, "m"); own += t[1] * 60 + t[2]}}
        FILENAME == "/proc/stat" && $1 == "cpu" {busy = ($2 + $3 + $4) / hz}
        END {printf "%.2f %.2f %s\n", busy, own, w}' "$out/.times" /proc/stat)
}
# others_pct MARK: sets other to the CPU other processes used since MARK (of
# cpu_mark), in % of one CPU
others_pct() {
    local m0=$1
    cpu_mark
    other=$(awk -v m0="$m0" -v m1="$mark" 'BEGIN {
        split(m0, a, " "); split(m1, b, " ")
        x = 100 * ((b[1] - a[1]) - (b[2] - a[2])) / (b[3] - a[3]); printf "%.1f\n", x < 0 ? 0 : x}')
}
# wait_quiet: with WAIT_QUIET, until other processes used less than 10% of a
# CPU over 5 s, for WAIT_QUIET seconds at most
wait_quiet() {
    [ "$WAIT_QUIET" -gt 0 ] || return 0
    local t0=$SECONDS said=0
    while :; do
        cpu_mark
        sleep 5
        others_pct "$mark"
        awk -v x="$other" 'BEGIN {exit !(x < 10)}' && return 0
        if ((SECONDS - t0 >= WAIT_QUIET)); then
            progress "the machine is still busy (other processes: $other% of a CPU); going on after $((SECONDS - t0)) s"
            return 0
        fi
        [ $said = 1 ] || progress "waiting for the machine to be quiet (other processes: $other% of a CPU) ..."
        said=1
    done
}

# ---- the rounds -----------------------------------------------------------
echo "$me: $ROUNDS round(s): ${benches[*]:-no engine benchmarks}; ${workloads[*]:-no network workloads}" >&2
for ((r = 1; r <= ROUNDS; r++)); do
    read -r -a sides <<<"$(order "$r")"
    wait_quiet
    cpu_mark
    mark0=$mark
    for b in "${benches[@]}"; do
        for side in "${sides[@]}"; do run_bench "$r" "$side" "$b"; done
    done
    if wants echo; then
        if [ "$ECHO_RMEM" != auto ]; then tcp_rmem_fix "$me" "$ECHO_RMEM" || ECHO_RMEM=auto; fi
        for c in "${echo_cases[@]}"; do run_echo "$r" "${c%x*}" "${c#*x}" "${sides[@]}"; done
        tcp_rmem_restore "$me"
    fi
    if wants http; then run_http "$r" "${sides[@]}"; fi
    if wants redis; then
        for mode in p1 p16; do run_redis "$r" "$mode" "${sides[@]}"; done
    fi
    others_pct "$mark0"
    record "$r" x other_cpu_pct "$other" %
    progress "round $r: $(awk -v m0="$mark0" -v m1="$mark" 'BEGIN {split(m0, a, " "); split(m1, b, " ")
        printf "%.0f", b[3] - a[3]}') s," \
        "other processes used $other% of a CPU$(awk -v x="$other" 'BEGIN {if (x > 10) print " (disturbed)"}')"
done
rm -f "$out/.times"

# ---- the table ------------------------------------------------------------
total=$(($(date +%s) - start_s))
printf '%s\n' "$ROUNDS" "$rev_short" "$(name_of b)" "$total" >"$out/meta.txt"
table "$raw" "$ROUNDS" "$rev_short" "$(name_of b)" "$total" "$out" | tee "$out/table.txt"
