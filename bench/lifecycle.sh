#!/usr/bin/env bash
# bench/lifecycle.sh: the benchmarks of the loop's life cycle calls: a loop
# run by another program's event loop (asyncio_loop_backend_fd() and
# asyncio_loop_run_nowait()), and a server with a loop on each of several
# threads. Builds libasyncio's examples in Release and the load generators
# in bench/net/, runs each workload against ours and its peer, alternating
# them within every round, and prints one table of medians, paired ratios
# and the targets.
#
#   bench/lifecycle.sh                           11 rounds of both (~3 min)
#   ROUNDS=1 SECS=1 ECHO_SECS=1 bench/lifecycle.sh   a quick check
#   WORKLOADS=embed bench/lifecycle.sh           only some of embed http_workers
#
# Workloads:
#   embed         echo of 1 KiB messages, one connection, one message in
#                 flight (bench/net/echo_load): round trips per second and
#                 server CPU per round trip of examples/embed --serve (the
#                 loop driven by the program's own poll() loop: "embed")
#                 beside examples/echo_server, the same server (the same
#                 handler, 256 KiB read buffer and 64 KiB stacks) whose loop
#                 the library runs itself (run_until_complete, as in
#                 asyncio_run(): "own_run"). Both run at once, pinned to
#                 CPU 0, and one echo_load on CPU 1 loads them in turn,
#                 SLICE seconds each (forwards, then backwards), until each
#                 has had ECHO_SECS seconds, as bench/net.sh's echo workload
#                 (see there why). TCP buffers are left to the kernel: one
#                 1 KiB message in flight never fills them.
#   http_workers  wrk -t1 -c100 against examples/http_server --workers
#                 WORKERS (a loop on each of WORKERS threads) and nginx with
#                 worker_processes WORKERS (bench/net/nginx.conf), both
#                 answering "Hello, World!" at /; one wrk per server, taking
#                 turns in SLICE-second slices (bench/net/alternate) until
#                 each has run about SECS seconds. With 2 cores the load
#                 generator shares them with the servers' workers: nothing
#                 is pinned, the scheduler places everything.
# Throughput is per second. Server CPU per message or request: the CPU time
# of all the server's threads (/proc/PID/task/*/schedstat; nginx: master +
# workers) over its slices (embed) or the run (http_workers; a server
# waiting for its turn spends next to nothing), divided by its round trips
# or requests.
#
# Targets: embed >= 0.95x own_run's round trips per second (what driving
# the loop from outside may cost); http_workers: our CPU per request at or
# below nginx's. Ratios are ours vs the peer of the row, paired within a
# round (the implementations of a round ran in turn), their median over the
# rounds judged against the target.
#
# Environment:
#   ROUNDS      rounds (default 11)
#   SECS        seconds per http_workers measurement (default 1)
#   ECHO_SECS   seconds per embed measurement (default 3x SECS)
#   SLICE       seconds a server is loaded before the next (default 0.05)
#   WORKLOADS   which of embed http_workers to run (default both)
#   WORKERS     worker threads (ours) and processes (nginx) of http_workers
#               (default 2)
#   BUILD       build directory (default bench/results/build-lifecycle)
#   OURS        where our embed, echo_server and http_server are (default
#               $BUILD/examples, built here; another directory is used as is)
#   PORT_BASE   first port tried for a server (default 18500)
#
# As root, installs what is missing with apt-get: build-essential cmake
# nginx-light wrk. When one of our examples is missing (or does not build),
# its workload runs the peer only; without nginx or wrk, http_workers runs
# what it can. ASYNCIO_BUSY_POLL_US and ASYNCIO_BACKEND are unset: the
# library's defaults. Every process started here is stopped by its pid, also
# on errors and Ctrl-C. Raw output goes to bench/results/lifecycle-<timestamp>/.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
netsrc=$here/net
ROUNDS=${ROUNDS:-11}
SECS=${SECS:-1}
ECHO_SECS=${ECHO_SECS:-$((3 * SECS))}
SLICE=${SLICE:-0.05}
WORKLOADS=${WORKLOADS:-embed http_workers}
WORKERS=${WORKERS:-2}
BUILD=${BUILD:-$here/results/build-lifecycle}
OURS=${OURS:-$BUILD/examples}
PORT_BASE=${PORT_BASE:-18500}
export PATH=$PATH:/usr/sbin:/sbin # nginx lives in /usr/sbin
unset ASYNCIO_BUSY_POLL_US ASYNCIO_BACKEND

# shellcheck source=bench/lib.sh
. "$here/lib.sh"
check_settings lifecycle.sh "embed http_workers" ROUNDS SECS ECHO_SECS WORKERS PORT_BASE
start_s=$(date +%s)

# ---- what is needed -------------------------------------------------------
missing=()
if wants http_workers; then
    command -v nginx >/dev/null || missing+=(nginx-light)
    command -v wrk >/dev/null || missing+=(wrk)
fi
install_with_build_tools lifecycle.sh "${missing[@]}"

# ---- where the output goes ------------------------------------------------
new_results lifecycle
scratch=$(mktemp -d "${TMPDIR:-/tmp}/asyncio-lifecycle.XXXXXX")

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
build_ours "$blog" embed echo_server http_server
nbin=$BUILD/net
build_net_tools "$blog" echo_load alternate

# ---- machine set-up -------------------------------------------------------
http_impls=(ours nginx)
command -v nginx >/dev/null || { echo "lifecycle.sh: no nginx: its runs skipped" >&2; http_impls=(ours); }
if wants http_workers && ! command -v wrk >/dev/null; then
    echo "lifecycle.sh: no wrk: http_workers skipped" >&2
    WORKLOADS=$(echo " $WORKLOADS " | sed 's/ http_workers / /; s/^ *//; s/ *$//')
fi

pin_two_cpus # for embed; http_workers runs unpinned
embed_pin_srv=("${pin_srv[@]}") embed_pin_load=("${pin_load[@]}")

{
    bench_header "libasyncio life cycle benchmarks"
    echo "peers:   $(nginx -v 2>&1 | sed 's/.*: //'), $(wrk -v 2>&1 | head -n 1 | awk '{print $1, $2}')"
    echo "runs:    ROUNDS=$ROUNDS SECS=$SECS ECHO_SECS=$ECHO_SECS SLICE=$SLICE WORKLOADS=\"$WORKLOADS\"" \
        "WORKERS=$WORKERS, embed pinned: ${pin_srv[*]:-no} / ${pin_load[*]:-no}; http_workers not pinned"
} | tee "$out/header.txt"
echo

# ---- embed ----------------------------------------------------------------
next_port=$PORT_BASE
echo_cmd() { # IMPL: sets cmd (for run_echo), 1 if it is not available
    local b
    case $1 in
        embed) b=$(ours_bin embed) || return 1; cmd=("$b" --serve "$port") ;;
        own_run) b=$(ours_bin echo_server) || return 1; cmd=("$b" "$port") ;;
    esac
}

# ---- the rounds -----------------------------------------------------------
echo "running $WORKLOADS, $ROUNDS round(s) ..." >&2
for ((r = 1; r <= ROUNDS; r++)); do
    if wants embed; then
        pin_srv=("${embed_pin_srv[@]}") pin_load=("${embed_pin_load[@]}")
        # shellcheck disable=SC2046 # one word per implementation
        run_echo "$r" embed 1 1024 1 $(rotate "$r" embed own_run)
    fi
    if wants http_workers; then
        pin_srv=() pin_load=()
        # shellcheck disable=SC2046
        run_http "$r" http_workers "$WORKERS" $(rotate "$r" "${http_impls[@]}")
    fi
done

# ---- the table ------------------------------------------------------------
# Rows as paired_table (bench/lib.sh) reads them; the embed ratios are
# embed's against own_run's.
rows=$out/rows.txt
{
    if wants embed; then
        echo "embed|embed||"
        echo "embed|own_run|embed thr >= 0.95x own_run|thr >= 0.95|embed"
    fi
    if wants http_workers; then
        echo "http_workers|ours||"
        echo "http_workers|nginx|cpu/req <= nginx|cpu >= 1"
    fi
} >"$rows"
paired_table "$rows" "$ROUNDS round(s) of $SECS s (embed: $ECHO_SECS s)" | tee "$out/table.txt"
