#!/bin/sh
# run.sh BUILD_DIR SECONDS [TARGET...]: run each fuzz target of BUILD_DIR (a
# build configured with -DASYNCIO_FUZZ=ON, see tests/fuzz/CMakeLists.txt)
# for SECONDS seconds, starting from its seed corpus (corpus/TARGET/) and its
# regression inputs (regressions/TARGET/). Default targets: all three.
#
# The fuzzer works on a scratch copy of the corpus, so the tree is never
# written (FUZZ_WORK_DIR=DIR: use DIR instead and keep it, with the corpus
# each run grew, e.g. to pick new seeds from). Each target runs with
# -max_total_time=SECONDS -timeout=10 -rss_limit_mb=2048 -print_final_stats=1.
# A crash, a leak, an input slower than 10 s or a target over 2 GB fails the
# run: the input that did it is kept in BUILD_DIR/fuzz-artifacts/TARGET/,
# and how to run it again is printed. Exit status: 0 if every target ran
# clean, 1 if one did not, 2 for a usage error.
set -u

usage() {
    echo "usage: $0 BUILD_DIR SECONDS [TARGET...]" >&2
    exit 2
}
[ $# -ge 2 ] || usage
BUILD=$1
SECONDS_EACH=$2
shift 2
case $SECONDS_EACH in '' | *[!0-9]*) usage ;; esac
[ "$SECONDS_EACH" -gt 0 ] || usage
[ $# -gt 0 ] || set -- fuzz_stream fuzz_http_parse fuzz_resp

HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$BUILD/tests/fuzz
ARTIFACTS=$BUILD/fuzz-artifacts
for t in "$@"; do
    [ -x "$BIN/$t" ] || {
        echo "run.sh: no $BIN/$t: configure with -DCMAKE_C_COMPILER=clang -DASYNCIO_SANITIZE=address,undefined" \
            "-DASYNCIO_FUZZ=ON and build the target fuzz_targets" >&2
        exit 2
    }
done

if [ -n "${FUZZ_WORK_DIR:-}" ]; then
    WORK=$FUZZ_WORK_DIR
    mkdir -p "$WORK" || exit 2
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/asyncio-fuzz.XXXXXX") || exit 2
    trap 'rm -rf "$WORK"' EXIT
    trap 'exit 130' HUP INT TERM
fi

# UBSan findings are fatal (the build has -fno-sanitize-recover=all) and
# come with a stack.
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
export UBSAN_OPTIONS

now() { date +%s; }
start_all=$(now)
failed=
for t in "$@"; do
    corpus=$WORK/$t/corpus
    mkdir -p "$corpus" "$ARTIFACTS/$t" || exit 2
    cp "$HERE/corpus/$t"/* "$corpus"/ 2>/dev/null
    [ -d "$HERE/regressions/$t" ] && cp "$HERE/regressions/$t"/* "$corpus"/ 2>/dev/null
    log=$WORK/$t/log
    stamp=$WORK/$t/stamp
    : >"$stamp"
    start=$(now)
    echo "== $t: $SECONDS_EACH s, $(ls "$corpus" | wc -l) inputs to start from"
    "$BIN/$t" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$ARTIFACTS/$t/" "$corpus" >"$log" 2>&1
    status=$?
    end=$(now)
    # The last status line ("#N DONE cov: ... ft: ... corp: ...") and the stats.
    grep -E '^#[0-9]+[[:space:]]+(DONE|INITED)' "$log" | tail -n 1
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" |
        tr '\n' ' '
    echo
    echo "   $t: status $status after $((end - start)) s"
    found=$(find "$ARTIFACTS/$t" -type f -newer "$stamp")
    if [ "$status" -ne 0 ] || [ -n "$found" ]; then
        failed="$failed $t"
        echo "FAIL ($t): status $status. The fuzzer's report:" >&2
        grep -E 'ERROR|SUMMARY|fuzz_[a-z_]+:|runtime error|Test unit written' "$log" | head -n 20 >&2
        for f in $found; do
            echo "  reproducer: $f" >&2
            echo "  run it again: $BIN/$t $f" >&2
        done
        [ -n "${FUZZ_WORK_DIR:-}" ] && echo "  whole log: $log" >&2
    fi
done
echo "== total: $(($(now) - start_all)) s for $# target(s) of $SECONDS_EACH s"
if [ -n "$failed" ]; then
    echo "FAIL:$failed" >&2
    exit 1
fi
echo "PASS: no crash, leak or timeout"
exit 0
