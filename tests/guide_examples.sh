#!/bin/sh
# The guide's example programs (docs/guide/*.md) compile and run.
#
#   sh tests/guide_examples.sh BUILD_DIR SOURCE_DIR
#
# Every fenced ```c block that contains "int main(" is a complete program:
# it is compiled with -std=c11 -Wall -Wextra -Werror against
# BUILD_DIR/libasyncio.a (headers from SOURCE_DIR/include); a ```cpp one
# likewise, with -std=c++11 (skipped when there is no C++ compiler). Each
# is run in a temporary directory of its own (also its TMPDIR), with no
# input and a timeout of 20 s, and must exit 0. Blocks without main are
# fragments and are left alone. One line is printed per program ("ok",
# "FAIL" or "skip", the file and the line its block starts on); the
# script fails if any program fails, showing the compiler's or the
# program's output.
#
# Environment: CC (default cc) and CXX (default c++); GUIDE_LIBS, what
# the static library needs beyond libc, libm, libdl and pthreads (the
# kqueue build's -lkqueue: asyncio.pc's Libs.private); GUIDE_CFLAGS, more
# flags for compiling and linking (e.g. -fsanitize=address,undefined for a
# library built so); GUIDE_TIMEOUT (seconds, default 20).
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
    exit 2
fi
build=$1
src=$2
lib=$build/libasyncio.a
cc=${CC:-cc}
# C++ examples (```cpp blocks) need a C++ compiler; without one they are
# skipped.
if [ -n "${CXX:-}" ]; then
    cxx=$CXX
elif command -v c++ >/dev/null 2>&1; then
    cxx=c++
else
    cxx=
fi
limit=${GUIDE_TIMEOUT:-20}
if [ ! -f "$lib" ]; then
    echo "FAIL: no $lib (build the library first)" >&2
    exit 1
fi
if [ ! -d "$src/docs/guide" ]; then
    echo "FAIL: no $src/docs/guide" >&2
    exit 1
fi
# The libraries libasyncio.a needs: threads, dladdr() (libdl before glibc
# 2.34), and libm for what the programs use.
libs="-lpthread -ldl -lm ${GUIDE_LIBS:-}"
if command -v timeout >/dev/null 2>&1; then
    run_limited="timeout -k 5 $limit"
else
    run_limited=
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/guide_examples.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

failed=0
count=0
for md in "$src"/docs/guide/*.md; do
    [ -f "$md" ] || continue
    base=$(basename "$md" .md)
    # Each ```c or ```cpp block to $tmp/<base>_<line>.c or .cpp, <line>
    # being the line of its opening fence; those with a main() are listed
    # in $tmp/<base>.list as "<line> <c|cpp>".
    awk -v dir="$tmp" -v base="$base" '
        !inblock && /^```(c|cpp)[ \t]*$/ { inblock = 1; start = NR; lang = substr($1, 4);
                                           file = dir "/" base "_" NR "." lang;
                                           hasmain = 0; printf "" > file; next }
        inblock && /^```[ \t]*$/          { inblock = 0; close(file);
                                           if (hasmain) print start, lang > (dir "/" base ".list");
                                           next }
        inblock                           { print > file; if (index($0, "int main(")) hasmain = 1 }
        END { if (inblock) { print "unterminated block at line " start > "/dev/stderr"; exit 1 } }
    ' "$md" || { echo "FAIL $base.md: cannot extract its blocks"; failed=$((failed + 1)); continue; }
    [ -f "$tmp/$base.list" ] || continue
    while read -r line lang; do
        count=$((count + 1))
        name="$base.md:$line"
        prog="$tmp/${base}_$line"
        if [ "$lang" = cpp ]; then
            if [ -z "$cxx" ]; then
                echo "skip $name: no C++ compiler"
                continue
            fi
            set -- "$cxx" -std=c++11
        else
            set -- "$cc" -std=c11
        fi
        # shellcheck disable=SC2086 # GUIDE_CFLAGS and libs are lists of flags
        if ! "$@" -Wall -Wextra -Werror ${GUIDE_CFLAGS:-} -I"$src/include" \
                -o "$prog" "$prog.$lang" "$lib" $libs >"$prog.log" 2>&1; then
            echo "FAIL $name: does not compile"
            sed 's/^/    /' "$prog.log"
            failed=$((failed + 1))
            continue
        fi
        rundir="$tmp/run_${base}_$line"
        mkdir "$rundir"
        start=$(date +%s)
        # shellcheck disable=SC2086 # run_limited is a command and its argument
        (cd "$rundir" && TMPDIR="$rundir" $run_limited "$prog" </dev/null >"$prog.out" 2>&1)
        rc=$?
        secs=$(($(date +%s) - start))
        if [ "$rc" -ne 0 ]; then
            if [ "$rc" -eq 124 ]; then
                echo "FAIL $name: still running after ${limit} s"
            else
                echo "FAIL $name: exit status $rc"
            fi
            sed 's/^/    /' "$prog.out"
            failed=$((failed + 1))
        else
            echo "ok   $name (${secs} s)"
        fi
    done <"$tmp/$base.list"
done

if [ "$count" -eq 0 ]; then
    echo "FAIL: no example program found in $src/docs/guide"
    exit 1
fi
if [ "$failed" -ne 0 ]; then
    echo "$failed of $count guide examples failed"
    exit 1
fi
echo "all $count guide examples passed"
exit 0
