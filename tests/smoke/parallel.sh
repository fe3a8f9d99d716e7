#!/bin/sh
# Smoke test for examples/parallel, on each backend:
#  - 20 commands with -j 4 from a pipe: each writes lines to stdout and
#    stderr in turn, with sleeps between; some fail (exit codes, a signal),
#    one writes nothing, one no final newline. Every block must be whole,
#    its lines those of its command in order, each command once; the
#    summary lists the failures; status 1; never more than 4 at a time,
#    and 4 at some point.
#  - 1 MB of output from one command (stdin a regular file: read through
#    a cat child), byte for byte, beside a small one; status 0.
#  - SIGINT while 4 long commands run (3 of them a shell waiting for its
#    own child) and 3 wait: status 130, the finished block and the summary
#    printed, the 4 listed as killed and the 3 as not started, and none of
#    their processes left, grandchildren included.
#  - its stdout closed (| head -n 1) while a long command runs: status 141
#    (SIGPIPE handled like SIGINT), nothing left running.
#  - empty input; bad options (usage errors). Once: -j defaults to the
#    number of CPUs; fd 0's O_NONBLOCK is off again after a run on a pipe.
. "$(dirname "$0")/lib.sh"

need_subprocesses "$1"

trap 'rm -f "$_tmp".*; [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null' EXIT
LOG=$_tmp.log # each command appends "+" when it starts, "-" before it ends

# ---- inputs -------------------------------------------------------------------
# 20 commands ($_tmp.cmds), and what each one's block must be ($_tmp.blocks,
# lines "N<TAB>text": its header, then its output) and the summary ($_tmp.sum).
awk -v lg="$LOG" -v want="$_tmp.blocks" -v sum="$_tmp.sum" 'BEGIN {
    q = "\""
    for (i = 1; i <= 20; i++) {
        out = ""
        if (i % 5 == 0) {
            status = "exit " i / 5
            cmd = "echo + >>" lg "; echo " q "c" i " out 1" q "; echo " q "c" i " err 1" q " >&2; sleep 0.05; echo - >>" lg "; exit " i / 5
            out = "c" i " out 1\nc" i " err 1\n"
        } else if (i == 7) {
            status = "signal 15"
            cmd = "echo + >>" lg "; echo " q "c7 out 1" q "; echo - >>" lg "; kill -TERM $$; echo c7 not reached"
            out = "c7 out 1\n"
        } else if (i == 12) {
            status = "exit 0"
            cmd = "echo + >>" lg "; sleep 0.05; echo - >>" lg
        } else if (i == 13) {
            status = "exit 0"
            cmd = "echo + >>" lg "; printf " q "c13 no newline" q "; echo - >>" lg
            out = "c13 no newline\n"
        } else {
            status = "exit 0"
            cmd = "echo + >>" lg "; for k in 1 2 3; do echo " q "c" i " out $k" q "; echo " q "c" i " err $k" q " >&2; sleep 0.0" (2 + i % 4) "; done; echo - >>" lg
            for (k = 1; k <= 3; k++)
                out = out "c" i " out " k "\nc" i " err " k "\n"
        }
        print cmd
        if (i == 3)
            print "" # blank lines are skipped
        printf "%d\t=== [%d] %s: %s\n", i, i, status, cmd >want
        n = split(out, lines, "\n")
        for (k = 1; k < n; k++)
            printf "%d\t%s\n", i, lines[k] >want
        if (status != "exit 0")
            failed[i] = "  [" i "] " status ": " cmd
    }
    print "parallel: 20 commands, 15 succeeded, 5 failed" >sum
    for (i = 1; i <= 20; i++)
        if (i in failed)
            print failed[i] >sum
}' >"$_tmp.cmds"

# expect_blocks WANT: the output's blocks are exactly those of WANT, in any
# order, each once, nothing outside them before the summary.
expect_blocks() {
    _msg=$(awk -F '\t' '
        FNR == NR { i = $1; sub(/^[^\t]*\t/, ""); want[i] = want[i] $0 "\n"; n++; next }
        /^=== \[[0-9]+\] / {
            cur = substr($0, 6); sub(/\].*/, "", cur)
            if (cur in got) { printf "block %s printed twice", cur; bad = 1; exit }
            got[cur] = $0 "\n"; next
        }
        /^parallel: / { cur = ""; summary = 1; next }
        summary { next }
        cur == "" { printf "line %d is in no block: %s", FNR, $0; bad = 1; exit }
        { got[cur] = got[cur] $0 "\n" }
        END {
            if (bad) exit
            for (i in want)
                if (got[i] != want[i]) {
                    printf "block %s is not what its command wrote:\n--- expected ---\n%s--- got ---\n%s", i, want[i], got[i]
                    exit
                }
            for (i in got)
                if (!(i in want)) { printf "unexpected block %s", i; exit }
        }' "$1" "$OUT")
    [ -z "$_msg" ] || fail "$_msg"
}

# max_running: the most commands of $LOG that ran at once.
max_running() {
    awk '{ c += $1 == "+" ? 1 : -1; if (c > m) m = c } END { print m + 0 }' "$LOG"
}

# sleeps ARG: how many processes run "sleep ARG" now (a zombie has no
# command line: one killed and not yet reaped does not count). The pattern
# is "[2]9.PID": grep's own command line does not match it.
sleeps() {
    _first=${1%"${1#?}"}
    grep -lxz -e "[$_first]${1#?}" /proc/[0-9]*/cmdline 2>/dev/null | wc -l | tr -d ' '
}

# ---- per backend ----------------------------------------------------------------
MARK=29.$$  # a sleep of 29.PID seconds: ours and nobody else's
printf '%s\n' 'echo quick' "sleep $MARK; echo never 2" "sleep $MARK; echo never 3" \
    "sleep $MARK; echo never 4" "exec sleep $MARK" 'echo queued 6' 'echo queued 7' 'echo queued 8' \
    >"$_tmp.long"
printf '%s\n' 'echo first' 'sleep 0.3; echo second' "sleep $MARK" >"$_tmp.pipecmds"
printf '%s\n' 'seq 150000' 'echo small' >"$_tmp.big"
seq 150000 >"$_tmp.seq"
mkfifo "$_tmp.fifo" || fail "cannot make a fifo"

for b in $BACKENDS; do
    export ASYNCIO_BACKEND="$b"

    # -- 20 commands, 4 at a time, from a pipe --------------------------------------
    : >"$LOG"
    cat "$_tmp.cmds" >"$_tmp.fifo" &
    run_expect 1 "$1" -j 4 <"$_tmp.fifo"
    expect_blocks "$_tmp.blocks"
    tail -n 6 "$OUT" | cmp -s - "$_tmp.sum" || {
        diff "$_tmp.sum" "$OUT" >&2
        fail "the summary is not the last 6 lines, as expected (diff above)"
    }
    [ ! -s "$ERR" ] || fail "it wrote to stderr"
    [ "$(grep -c '^+$' "$LOG")" -eq 20 ] || fail "not all 20 commands started"
    m=$(max_running)
    [ "$m" -eq 4 ] || fail "up to $m commands ran at once with -j 4"
    T20=$ELAPSED

    # -- 1 MB of output; stdin a regular file ------------------------------------
    run_example "$1" -j 2 <"$_tmp.big"
    awk '/^=== / { on = $0 == "=== [1] exit 0: seq 150000"; next } /^parallel: / { on = 0 } on' \
        "$OUT" >"$_tmp.got"
    cmp -s "$_tmp.got" "$_tmp.seq" ||
        fail "the block of 'seq 150000' is not its output ($(wc -c <"$_tmp.got") bytes)"
    expect_lines <<'END'
=== [2] exit 0: echo small
small
parallel: 2 commands, 2 succeeded, 0 failed
END
    expect_count '=== [1] exit 0: seq 150000' 1
    [ ! -s "$ERR" ] || fail "it wrote to stderr (1 MB)"

    # -- SIGINT while commands run ------------------------------------------------
    timeout --foreground -k 2 "$RUN_LIMIT" "$1" -j 4 <"$_tmp.long" >"$OUT" 2>"$ERR" &
    SERVER_PID=$!
    _i=0
    until grep -qx '=== \[1\] exit 0: echo quick' "$OUT" && [ "$(sleeps "$MARK")" -eq 4 ]; do
        kill -0 "$SERVER_PID" 2>/dev/null || fail "it ended before it was interrupted"
        _i=$((_i + 1))
        [ "$_i" -le 200 ] || fail "4 long commands were not running after 10 s ($(sleeps "$MARK") sleeps)"
        sleep 0.05
    done
    t0=$(now)
    stop_server INT 130
    SERVER_PID=
    ELAPSED=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')
    cat >"$_tmp.wint" <<END
=== [1] exit 0: echo quick
quick
parallel: 1 command, 1 succeeded, 0 failed
parallel: interrupted by SIGINT: 4 killed, 3 not started
  [2] killed: sleep $MARK; echo never 2
  [3] killed: sleep $MARK; echo never 3
  [4] killed: sleep $MARK; echo never 4
  [5] killed: exec sleep $MARK
END
    cmp -s "$_tmp.wint" "$OUT" || {
        diff "$_tmp.wint" "$OUT" >&2
        fail "unexpected output after SIGINT (diff above)"
    }
    [ ! -s "$ERR" ] || fail "it wrote to stderr (SIGINT)"
    left=$(sleeps "$MARK")
    [ "$left" -eq 0 ] || fail "$left of its commands' processes still run after it exited"
    TINT=$ELAPSED

    # -- its stdout closed ---------------------------------------------------------
    (
        bounded "$RUN_LIMIT" "$1" -j 3 <"$_tmp.pipecmds" 2>"$ERR"
        echo $? >"$_tmp.pst"
    ) | head -n 1 >"$OUT"
    st=$(cat "$_tmp.pst")
    [ "$st" -eq 141 ] || fail "status $st$(why "$st") with its stdout closed, expected 141"
    grep -qx '=== \[1\] exit 0: echo first' "$OUT" || fail "head did not get the first block's header"
    [ ! -s "$ERR" ] || fail "it wrote to stderr (stdout closed)"
    left=$(sleeps "$MARK")
    [ "$left" -eq 0 ] || fail "$left of its commands' processes still run after SIGPIPE"

    # -- empty input, usage errors ---------------------------------------------------
    run_example "$1" </dev/null
    expect_lines <<'END'
parallel: 0 commands, 0 succeeded, 0 failed
END
    expect_nlines 1
    for args in '-j 0' '-j 1025' '-j x' '-j' '-j 2 extra' '-k'; do
        # shellcheck disable=SC2086 # split on purpose
        expect_usage_error "$1" $args
    done
    echo "$b: 20 commands in $T20 s, 1 MB, SIGINT ($TINT s to exit), SIGPIPE, usage errors"
done

# -- once: the default -j, and fd 0's flags after a run on a pipe ---------------
CPUS=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
n=$((CPUS * 2))
[ "$n" -le 64 ] || n=64
: >"$LOG"
i=0
while [ "$i" -lt "$n" ]; do
    echo "echo + >>$LOG; sleep 0.2; echo - >>$LOG"
    i=$((i + 1))
done >"$_tmp.cpus"
run_example "$1" <"$_tmp.cpus"
m=$(max_running)
want=$CPUS
[ "$want" -le "$n" ] || want=$n
[ "$m" -le "$want" ] || fail "$m commands at once by default, more than the $CPUS CPUs"
[ "$want" -lt 2 ] || [ "$m" -ge 2 ] || fail "one command at a time by default, with $CPUS CPUs"

# A reader after it, on the same open pipe, must find it blocking again.
echo 'echo one' >"$_tmp.fifo" &
sh -c '"$0" -j 1 >/dev/null && grep "^flags:" /proc/self/fdinfo/0' "$1" <"$_tmp.fifo" >"$_tmp.flags" ||
    fail "the run on a pipe failed"
flags=$(awk '{ print $2 }' "$_tmp.flags")
[ -n "$flags" ] || fail "no flags in /proc/self/fdinfo/0"
nonblock=$(awk -v f="$flags" 'BEGIN { v = 0; for (i = 1; i <= length(f); i++) v = v * 8 + substr(f, i, 1); print int(v / 2048) % 2 }')
[ "$nonblock" -eq 0 ] || fail "fd 0 was left non-blocking (flags $flags)"

unset ASYNCIO_BACKEND
ELAPSED=-
pass "on $BACKENDS; -j defaulted to $CPUS, at most $m at once"
