#!/bin/sh
# Smoke test for examples/subprocess, on each backend: 'ls /zzz' and 'date'
# run at once, each one's report whole (its return code, then its output
# under [stderr] or [stdout]); the date read as one line of a child's
# stdout; 'sleep 10' stopped by the 0.5 s timeout, killed and waited for
# (return code -9), all in about 0.5 s with nothing on stderr. Then two
# commands of the caller's: both pipes of one, and its exit status.
. "$(dirname "$0")/lib.sh"

need_subprocesses "$1" true

LS_STATUS=$(ls /zzz >/dev/null 2>&1; echo $?) # 2 with GNU ls, 1 with busybox
[ "$LS_STATUS" -ne 0 ] || fail "there is a /zzz here: 'ls /zzz' would not fail"

# expect_report CMD STATUS STREAM REGEX: CMD's report, once: its first line,
# "[STREAM]", then a line that matches REGEX (awk).
expect_report() {
    awk -v h="['$1' exited with $2]" -v s="[$3]" -v re="$4" '
        $0 == h { n++; st = 1; next }
        st == 1 { st = $0 == s ? 2 : 0; next }
        st == 2 { ok += $0 ~ re; st = 0 }
        END { exit !(n == 1 && ok == 1) }' "$OUT" ||
        fail "expected one report of '$1': exited with $2, [$3], then a line like /$4/"
}

for b in $BACKENDS; do
    export ASYNCIO_BACKEND="$b"
    day1=$(date +%Y-%m-%d)
    run_example "$1"
    day2=$(date +%Y-%m-%d)
    expect_report 'ls /zzz' "$LS_STATUS" stderr '/zzz'
    expect_report date 0 stdout '[0-9]'
    expect_count '[stdout]' 1
    expect_count '[stderr]' 1
    # The reports (in either order) come before the rest.
    last_report=$(awk '/^\[.* exited with -?[0-9]+\]$/ { n = NR } END { print n + 0 }' "$OUT")
    first_date=$(awk '/^Current date: / { print NR; exit }' "$OUT")
    if [ -z "$first_date" ] || [ "$last_report" -ge "$first_date" ]; then
        fail "the two reports do not both come before the date"
    fi
    grep -qx -e "Current date: $day1" -e "Current date: $day2" "$OUT" ||
        fail "no line 'Current date: $day1'"
    expect_lines <<'END'
'sleep 10' still running after 0.5 s: killing it
END
    grep -Eqx "'sleep 10' killed: returncode -9 \(after (0\.[5-9]|1\.[0-9]) s\)" "$OUT" ||
        fail "no line \"'sleep 10' killed: returncode -9 (after 0.5 s)\" (0.5 to 1.9 s)"
    expect_nlines 11
    [ ! -s "$ERR" ] || fail "it wrote to stderr"
    expect_elapsed 0.45 5.0
    echo "$b: both reports, the date, the timeout and the kill in $ELAPSED s"

    # Commands of the caller's, concurrently.
    run_example "$1" 'echo out; echo err >&2; exit 3' 'sleep 0.2; printf "a\nb"' 'true'
    expect_lines <<'END'
['echo out; echo err >&2; exit 3' exited with 3]
[stdout]
out

[stderr]
err

['sleep 0.2; printf "a\nb"' exited with 0]
END
    sed "s/^Current date: .*/Current date: TODAY/" "$OUT" >"$_tmp.own"
    expect_lines "$_tmp.own" <<'END'
['true' exited with 0]
['sleep 0.2; printf "a\nb"' exited with 0]
[stdout]
a
b
Current date: TODAY
'sleep 10' still running after 0.5 s: killing it
END
    expect_count '[stdout]' 2
    expect_count '[stderr]' 1
    [ ! -s "$ERR" ] || fail "it wrote to stderr (commands of the caller's)"
done
unset ASYNCIO_BACKEND
pass "on $BACKENDS"
