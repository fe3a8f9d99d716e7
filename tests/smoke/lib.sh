# lib.sh: helpers for the example smoke tests (POSIX sh and awk only).
#
# A test script sources this file, then:
#     run_example "$1"            # run the example given as the first argument
#     expect_lines <<'END'        # these lines, exact text, in this order
#     ...                         # (other lines may come in between)
#     END
#     expect_count 'text' 3       # exactly 3 lines equal to 'text'
#     expect_elapsed 2.5 5.5      # wall time of the run, in seconds
# Each check exits with status 1 and a clear message (and the output of the
# example) when it fails.
#
# Nothing a smoke test starts or waits for may hang it until CTest kills it
# at its 60 s TIMEOUT with no word of what hung: every example, server and
# client tool runs under timeout(1) (see bounded and the *_LIMIT values
# below), and every wait for a file to fill or a process to end is a loop
# with a limit.

NAME=$(basename "$0" .sh)
_tmp=${TMPDIR:-/tmp}/asyncio-smoke-$NAME.$$
OUT=$_tmp.out         # the example's stdout
ERR=$_tmp.err         # the example's stderr
ELAPSED=              # seconds the example ran for (set by run_example)
COARSE=               # set when the clock only has whole seconds
trap 'rm -f "$_tmp".*' EXIT
trap 'exit 130' HUP INT TERM

# ---- time limits --------------------------------------------------------------
# Seconds, all below CTest's TIMEOUT of 60 s, far above what a run takes:
CLIENT_LIMIT=20 # one run of a client tool (nc, curl, redis-cli, echo_client...)
RUN_LIMIT=40    # one run of an example (run_example; the longest takes 10 s)
SERVER_LIMIT=45 # the whole life of a server (start_server)

# Without coreutils' timeout (macOS, for one), run the command unbounded
# rather than not at all.
if ! command -v timeout >/dev/null 2>&1; then
    timeout() {
        while :; do
            case $1 in
                -k) shift 2 ;;
                -*) shift ;;
                *) break ;;
            esac
        done
        shift # the duration
        "$@"
    }
fi

# timeout(1) always runs with --foreground here: without it, timeout passes
# a signal it gets (kill "$SERVER_PID") on twice, to the command and to its
# process group, and a server that handles the first SIGTERM by leaving
# may die of the second one (status 143).
#
# A signal timeout passes on also starts its -k clock: a server gets
# SERVER_KILL_AFTER s after stop_server's signal, more than the 10 s
# stop_server waits (with -k 2, a server with 64 workers under TSan on a
# loaded machine was killed 2 s into a clean stop: status 137).
SERVER_KILL_AFTER=12
#
# bounded SECONDS CMD ARGS...: run CMD, TERM it once it has run SECONDS
# (KILL 2 s later), and return its status: 124 (137 after the KILL) when it
# had to be stopped, and then say so on stderr.
bounded() {
    _b_limit=$1
    shift
    timeout --foreground -k 2 "$_b_limit" "$@"
    _b_st=$?
    case $_b_st in
        124 | 137) echo "$NAME: stopped '$*' after $_b_limit s: it hung" >&2 ;;
    esac
    return "$_b_st"
}

# why STATUS: a note for the statuses timeout(1) gives, for fail messages:
#     CMD || fail "CMD exited with status $?$(why $?)"
why() {
    case $1 in
        124 | 137) printf ' (stopped by timeout: it hung)' ;;
    esac
}

fail() {
    echo "FAIL ($NAME): $*" >&2
    if [ -f "$OUT" ]; then
        echo "--- stdout of $NAME ---" >&2
        cat "$OUT" >&2
    fi
    if [ -s "$ERR" ]; then
        echo "--- stderr of $NAME ---" >&2
        cat "$ERR" >&2
    fi
    exit 1
}

# Seconds since the epoch, with a fraction where date supports %N.
now() {
    _t=$(date +%s.%N 2>/dev/null)
    case $_t in
        '' | *[!0-9.]*) date +%s ;;
        *) echo "$_t" ;;
    esac
}

# run_example BINARY [ARGS...]: run it (for at most RUN_LIMIT s), keep its
# output in $OUT and its duration in $ELAPSED; fail unless it exits with
# status 0. Its stdin is the script's.
run_example() {
    run_expect 0 "$@"
}

# run_expect STATUS BINARY [ARGS...]: the same, for a run that must exit
# with STATUS.
run_expect() {
    _want=$1
    shift
    [ -n "$1" ] || fail "usage: $0 PATH-TO-EXAMPLE"
    [ -x "$1" ] || fail "not an executable: $1"
    _start=$(now)
    timeout --foreground -k 2 "$RUN_LIMIT" "$@" >"$OUT" 2>"$ERR"
    _status=$?
    _end=$(now)
    case $_start in *.*) ;; *) COARSE=1 ;; esac
    ELAPSED=$(awk -v a="$_start" -v b="$_end" 'BEGIN { printf "%.3f", b - a }')
    _exp=
    [ "$_want" -eq 0 ] || _exp=", expected $_want"
    [ "$_status" -eq "$_want" ] ||
        fail "exited with status $_status$(why "$_status") after $ELAPSED s (limit $RUN_LIMIT s)$_exp"
}

# expect_lines [FILE] < EXPECTED: every line of EXPECTED appears in FILE
# (default $OUT) as a whole line, in this order.
expect_lines() {
    cat >"$_tmp.want"
    _msg=$(awk 'NR == FNR { want[++n] = $0; next }
                i < n && $0 == want[i + 1] { i++ }
                END {
                    if (i < n)
                        printf "expected line %d of %d, \"%s\", is missing or out of order", i + 1, n, want[i + 1]
                }' "$_tmp.want" "${1:-$OUT}")
    [ -z "$_msg" ] || fail "$_msg"
}

# expect_count TEXT N [FILE]: exactly N lines of FILE (default $OUT) are TEXT.
expect_count() {
    _n=$(awk -v t="$1" '$0 == t { n++ } END { print n + 0 }' "${3:-$OUT}")
    [ "$_n" -eq "$2" ] || fail "expected $2 line(s) \"$1\", got $_n"
}

# expect_nlines N [FILE]: FILE (default $OUT) has exactly N lines.
expect_nlines() {
    _n=$(awk 'END { print NR }' "${2:-$OUT}")
    [ "$_n" -eq "$1" ] || fail "expected $1 lines of output, got $_n"
}

# expect_elapsed MIN MAX: the run took between MIN and MAX seconds (one more
# second of slack on each side if the clock only has whole seconds).
expect_elapsed() {
    awk -v t="$ELAPSED" -v lo="$1" -v hi="$2" -v c="$COARSE" \
        'BEGIN { if (c) { lo -= 1; hi += 1 }; exit !(t >= lo && t <= hi) }' ||
        fail "took $ELAPSED s, expected between $1 and $2 s${COARSE:+ (+-1 s: whole-second clock)}"
}

# in_range WHAT VALUE MIN MAX: fail unless MIN <= VALUE <= MAX.
in_range() {
    [ -n "$2" ] || fail "$1: not found in the output"
    awk -v t="$2" -v lo="$3" -v hi="$4" 'BEGIN { exit !(t >= lo && t <= hi) }' ||
        fail "$1 was $2 s, expected between $3 and $4 s"
}

# The loop's backends here, for a test that runs an example on each
# (ASYNCIO_BACKEND=$b): epoll where there is one, and poll.
BACKENDS=poll
[ "$(uname -s)" = Linux ] && BACKENDS="epoll poll"

pass() {
    echo "PASS ($NAME): ${*:-output and timing as expected} (${ELAPSED} s)"
    exit 0
}

# ---- servers ----------------------------------------------------------------
# start_server BINARY ARGS...: start a server example in the background with
# its output in $OUT/$ERR, wait (up to 10 s) for its ready line
# "listening on HOST:PORT", and set SERVER_PID and PORT from it. Pass port 0
# to have it pick a free port. The server runs under timeout(1): it lives
# SERVER_LIMIT s at most; SERVER_PID is timeout's, which passes a signal
# on to the server and exits with the server's status.
SERVER_PID=
PORT=
start_server() {
    [ -x "$1" ] || fail "not an executable: $1"
    : >"$OUT" # there before the loop below reads it
    timeout --foreground -k "$SERVER_KILL_AFTER" "$SERVER_LIMIT" "$@" >"$OUT" 2>"$ERR" &
    SERVER_PID=$!
    trap 'kill "$SERVER_PID" 2>/dev/null; rm -f "$_tmp".*' EXIT
    _i=0
    while :; do
        PORT=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$OUT" | head -n 1)
        [ -n "$PORT" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || fail "the server exited before it was ready"
        _i=$((_i + 1))
        [ "$_i" -le 200 ] || fail "no ready line after 10 s"
        sleep 0.05
    done
}

# stop_server [SIGNAL [STATUS]]: send SIGTERM (or SIGNAL) to the server (or
# any program started in the background, its pid in SERVER_PID) and fail
# unless it exits with status 0 (or STATUS) within 10 s.
stop_server() {
    kill -"${1:-TERM}" "$SERVER_PID" || fail "the server was not running"
    _i=0
    while kill -0 "$SERVER_PID" 2>/dev/null; do
        _i=$((_i + 1))
        [ "$_i" -le 200 ] || fail "still running 10 s after SIG${1:-TERM}"
        sleep 0.05
    done
    wait "$SERVER_PID"
    _status=$?
    [ "$_status" -eq "${2:-0}" ] ||
        fail "the server exited with status $_status$(why "$_status") after SIG${1:-TERM}${2:+, expected $2}"
    ELAPSED=-
}

# need TOOL...: skip the test (exit 77, which CTest reports as skipped) when
# a client tool it drives is not installed.
need() {
    for _t in "$@"; do
        command -v "$_t" >/dev/null 2>&1 || { echo "SKIP ($NAME): $_t is not installed"; exit 77; }
    done
}

# need_subprocesses BINARY ARGS...: skip the test (exit 77) when the example
# cannot start a child here: it says "Function not implemented" (no pidfd,
# before Linux 5.3). Runs it once, stdin /dev/null, output dropped.
need_subprocesses() {
    bounded "$CLIENT_LIMIT" "$@" </dev/null >/dev/null 2>"$_tmp.nsp"
    if grep -q 'Function not implemented' "$_tmp.nsp"; then
        echo "SKIP ($NAME): no child processes here (pidfd_open, Linux 5.3 and later)"
        exit 77
    fi
}

# ---- servers with several workers (--workers N) -------------------------------
# expect_usage_error BINARY ARGS...: the program refuses ARGS at once, with
# status 2 and a usage line on stderr.
expect_usage_error() {
    bounded "$CLIENT_LIMIT" "$@" >"$_tmp.uout" 2>"$_tmp.uerr"
    _st=$?
    [ "$_st" -eq 2 ] || fail "'$*' exited with status $_st$(why "$_st"), expected 2 (usage error)"
    grep -q '^usage: ' "$_tmp.uerr" || fail "'$*': no usage line on stderr"
}

# expect_workers N TOTAL: the server, stopped, reported N workers
# ("worker I: C connections", I from 0) that served TOTAL connections in
# all, at least two of them some (the kernel spread the connections).
expect_workers() {
    _msg=$(awk -v n="$1" -v total="$2" '
        /^worker [0-9]+: [0-9]+ connections$/ { w++; sum += $3; busy += $3 > 0 }
        END {
            if (w != n)
                printf "%d worker lines at exit, expected %d", w, n
            else if (sum != total)
                printf "the workers served %d connections in all, expected %d", sum, total
            else if (busy < 2)
                printf "only %d worker(s) served connections, expected 2 or more", busy
        }' "$OUT")
    [ -z "$_msg" ] || fail "$_msg"
}

# server_threads: how many threads the server (timeout's child) has now, or
# nothing where /proc does not tell.
# server_pid: the server's own pid (SERVER_PID is timeout(1)'s, which
# passes on only the signals it stops on, not SIGUSR1 say); fails the test
# where there is none (Linux /proc only).
server_pid() {
    _c=$(cat "/proc/$SERVER_PID/task/$SERVER_PID/children" 2>/dev/null)
    _c=${_c%% *}
    [ -n "$_c" ] || fail "no server process under timeout $SERVER_PID"
    echo "$_c"
}

# hold_start PORT N: start tests/smoke/hold_connections.py in the
# background, holding N connections to PORT (HOLD_PID; its output in
# $_tmp.hold), its input a FIFO held open on fd 3; hold_line TEXT SECONDS:
# until it printed the line TEXT.
hold_start() {
    mkfifo "$_tmp.fifo" || fail "mkfifo failed"
    timeout --foreground -k 2 50 "$PY" "$(dirname "$0")/hold_connections.py" "$1" "$2" \
        <"$_tmp.fifo" >"$_tmp.hold" 2>"$_tmp.holderr" &
    HOLD_PID=$!
    exec 3>"$_tmp.fifo"
}
hold_line() {
    _i=0
    until grep -qx "$1" "$_tmp.hold"; do
        kill -0 "$HOLD_PID" 2>/dev/null || fail "hold_connections.py exited: $(cat "$_tmp.holderr")"
        _i=$((_i + 1))
        [ "$_i" -le $(($2 * 20)) ] || fail "no '$1' after $2 s: $(cat "$_tmp.holderr")"
        sleep 0.05
    done
}
# hold_end: close its input (it closes every connection and exits 0).
hold_end() {
    exec 3>&-
    wait "$HOLD_PID" || fail "hold_connections.py exited with status $?$(why $?): $(cat "$_tmp.holderr")"
    HOLD_PID=
}

server_threads() {
    _c=$(cat "/proc/$SERVER_PID/task/$SERVER_PID/children" 2>/dev/null) || return 0
    [ -n "$_c" ] || return 0
    set -- "/proc/${_c%% *}/task/"*
    [ -e "$1" ] && echo $#
}

# sigs_handled PID: SIGINT and SIGTERM are taken by a loop of PID's: a
# signalfd of PID's reads both (its fdinfo's sigmask: the loop's own, or
# libkqueue's under the kqueue backend), or both are caught (a build without
# signalfd has sigaction() handlers write to a pipe). Not the thread's
# blocked mask: pthread_create() blocks every signal while it makes a thread
# (libkqueue makes two as its first kqueue opens), and a signal sent then
# would find no handler yet.
sigs_handled() {
    cat "/proc/$1/status" "/proc/$1/fdinfo/"* 2>/dev/null |
        awk '/^(sigmask|SigCgt):/ {
                 h = substr($2, length($2) - 3); v = 0
                 for (i = 1; i <= 4; i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1
                 if (int(v / 2) % 2 && int(v / 16384) % 2) ok = 1
             }
             END { exit !ok }'
}

# expect_stop_while_starting SIGNAL BINARY ARGS...: start the server and send
# SIGNAL as soon as its main thread handles it (its workers are most likely
# still starting then): it must end with status 0 within 10 s. Sets EARLY
# to "yes" if the signal came before its ready line, else "no". Skips the
# check (EARLY empty) where /proc does not show signal masks.
EARLY=
expect_stop_while_starting() {
    _sig=$1
    shift
    EARLY=
    [ -r /proc/self/status ] && grep -q '^SigBlk:' /proc/self/status || return 0
    : >"$OUT"
    rm -f "$_tmp.pid"
    # sh writes its pid, then becomes the server: that pid is the server's.
    timeout --foreground -k "$SERVER_KILL_AFTER" "$SERVER_LIMIT" sh -c 'echo $$ >"$0" && exec "$@"' "$_tmp.pid" "$@" \
        >"$OUT" 2>"$ERR" &
    SERVER_PID=$!
    _i=0
    until [ -s "$_tmp.pid" ] && read -r _pid <"$_tmp.pid" && [ -n "$_pid" ] && sigs_handled "$_pid"; do
        kill -0 "$SERVER_PID" 2>/dev/null || fail "the server exited before it handled signals"
        _i=$((_i + 1))
        [ "$_i" -le 5000 ] || fail "the server did not handle signals after 10 s"
        sleep 0.002
    done
    stop_server "$_sig"
    # It prints its ready line only if no stop came first.
    grep -q '^listening on ' "$OUT" && EARLY=no || EARLY=yes
}

# expect_clean_start_failures BINARY ARGS...: run the server with ever more
# file descriptors allowed (ulimit -n 4, 5, ...) until it starts, so that it
# runs out of them at each step of its start in turn (a loop, a listening
# socket, the signal handlers; the main thread's and each worker's). Each
# run that does not start must end by itself at once with status 1 (a
# worker's failure stops the whole program, no thread left waiting) and
# nothing on stderr but its own lines ("NAME: ..."); at least one of them
# must be about a worker. The run that starts must stop on SIGTERM with
# status 0.
expect_clean_start_failures() {
    _n=4
    _worker_said=
    while :; do
        [ "$_n" -le 64 ] || fail "did not start with 64 fds"
        : >"$OUT"
        timeout --foreground -k "$SERVER_KILL_AFTER" 10 sh -c 'ulimit -n "$0" && exec "$@"' "$_n" "$@" >"$OUT" 2>"$ERR" &
        SERVER_PID=$!
        _i=0
        while kill -0 "$SERVER_PID" 2>/dev/null && ! grep -q '^listening on ' "$OUT"; do
            _i=$((_i + 1))
            [ "$_i" -le 500 ] || fail "with ulimit -n $_n: neither started nor ended after 10 s"
            sleep 0.02
        done
        grep -q '^listening on ' "$OUT" && break
        wait "$SERVER_PID"
        _st=$?
        if [ "$_st" -eq 127 ] && grep -q 'error while loading shared libraries' "$ERR"; then
            _n=$((_n + 1)) # too few fds for the dynamic loader: not the program's doing
            continue
        fi
        [ "$_st" -eq 1 ] || fail "with ulimit -n $_n: status $_st$(why "$_st"), expected 1"
        awk -v p="$NAME: " 'index($0, p) != 1 { bad = 1 } END { exit bad }' "$ERR" ||
            fail "with ulimit -n $_n: unexpected output on stderr"
        grep -q -e ': worker [0-9]*: ' -e ': cannot start worker' "$ERR" && _worker_said=yes
        _n=$((_n + 1))
    done
    stop_server
    [ -n "$_worker_said" ] || fail "no run stopped at a worker's failure (fds 4 to $_n)"
}
