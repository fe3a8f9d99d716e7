#!/bin/sh
# The names libasyncio defines globally: every one must start with asyncio_
# or ASYNCIO_ (issue 15: ~65 internal names such as stack_alloc, io_wait and
# the TLS variable loop_tls were global in libasyncio.a and clashed with a
# program's own names; src/names.h now prefixes them). Checks
#   - libasyncio.a: `nm -g --defined-only`; the one exception is what
#     AddressSanitizer makes of a prefixed variable (its ODR indicator
#     __odr_asan.asyncio_NAME, in sanitizer builds only);
#   - libasyncio.so: `nm -D -g --defined-only`, the global names of its
#     dynamic symbol table (-g: gold puts the local loop_tls there too).
#     A name there that libasyncio's own code does not define anywhere (it
#     is in no symbol table of libasyncio.a, local or global) is allowed and
#     listed: the linker made it (gold exports _edata, _end and __bss_start)
#     or the compiler driver linked it in from its run-time library
#     (libgcov's __gcov_* and mangle_path in a coverage build). Those are
#     not the library's names, and libasyncio.a, which a program links
#     statically, does not have them;
#   - that asyncio_run is exported by both, and that every function the .so
#     exports is global in the .a (no public name lost on the way).
#
# usage: check_symbols.sh NM STATIC_LIB SHARED_LIB
# Exit status: 0 passed, 1 failed. A failure lists the names: a new
# internal name belongs in src/names.h.
set -u

me=symbols_exported
[ $# -eq 3 ] || { echo "usage: $0 NM STATIC_LIB SHARED_LIB" >&2; exit 1; }
nm=$1
lib_a=$2
lib_so=$3

status=0
fail() {
    printf '%s: FAILED: %s\n' "$me" "$*" >&2
    status=1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/asyncio-symbols.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# Defined global names, one a line, sorted: the last field of each
# "VALUE TYPE NAME" line (file headers and blank lines have fewer fields),
# without a symbol version (@VER or @@VER).
names() {
    awk 'NF >= 3 && $(NF-1) ~ /^[A-Za-z]$/ { n = $NF; sub(/@.*/, "", n); print n }' |
        LC_ALL=C sort -u
}

if ! "$nm" -g --defined-only "$lib_a" >"$tmp/a.nm" 2>"$tmp/a.err"; then
    cat "$tmp/a.err" >&2
    fail "$nm -g --defined-only $lib_a failed"
fi
names <"$tmp/a.nm" >"$tmp/a"
if ! "$nm" -D -g --defined-only "$lib_so" >"$tmp/so.nm" 2>"$tmp/so.err"; then
    cat "$tmp/so.err" >&2
    fail "$nm -D -g --defined-only $lib_so failed"
fi
names <"$tmp/so.nm" >"$tmp/so"
# Every name libasyncio's code defines, local ones too.
"$nm" --defined-only "$lib_a" 2>/dev/null | names >"$tmp/own"
printf '%s: %s: %s global names; %s: %s dynamic names\n' "$me" \
    "$lib_a" "$(wc -l <"$tmp/a" | tr -d ' ')" "$lib_so" "$(wc -l <"$tmp/so" | tr -d ' ')"

grep -v -E '^(asyncio_|ASYNCIO_|__odr_asan[._]asyncio_)' "$tmp/a" >"$tmp/a.bad"
grep -v -E '^(asyncio_|ASYNCIO_)' "$tmp/so" >"$tmp/so.other"
LC_ALL=C comm -12 "$tmp/so.other" "$tmp/own" >"$tmp/so.bad"
LC_ALL=C comm -23 "$tmp/so.other" "$tmp/own" >"$tmp/so.foreign"
if [ -s "$tmp/so.foreign" ]; then
    printf '%s: allowed in %s, not defined by libasyncio'"'"'s code (made by the linker or the toolchain'"'"'s run-time):\n' \
        "$me" "$lib_so"
    sed 's/^/    /' "$tmp/so.foreign"
fi

if [ -s "$tmp/so.bad" ]; then
    fail "$lib_so exports $(wc -l <"$tmp/so.bad" | tr -d ' ') names without the asyncio_/ASYNCIO_ prefix:"
    sed 's/^/    /' "$tmp/so.bad" >&2
fi
grep -q -x asyncio_run "$tmp/so" || fail "$lib_so does not export asyncio_run"

if [ -s "$tmp/a.bad" ]; then
    fail "$lib_a defines $(wc -l <"$tmp/a.bad" | tr -d ' ') global names without the asyncio_/ASYNCIO_ prefix (they clash with a program's own; add them to src/names.h):"
    sed 's/^/    /' "$tmp/a.bad" >&2
fi
grep -q -x asyncio_run "$tmp/a" || fail "$lib_a does not define asyncio_run globally"
LC_ALL=C comm -23 "$tmp/so" "$tmp/a" | grep -E '^(asyncio_|ASYNCIO_)' >"$tmp/lost"
if [ -s "$tmp/lost" ]; then
    fail "$lib_a lacks $(wc -l <"$tmp/lost" | tr -d ' ') public names that $lib_so exports:"
    sed 's/^/    /' "$tmp/lost" >&2
fi

if [ "$status" -ne 0 ]; then
    exit 1
fi
echo "$me: passed: only asyncio_/ASYNCIO_ names are global"
exit 0
