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
#   - that asyncio_run (or the --expect name) is exported by both, and that
#     every function the .so exports is global in the .a (no public name
#     lost on the way).
# The same checks apply to a library layered on libasyncio, libasyncio-tls
# (test symbols_exported_tls): give it as STATIC_LIB and SHARED_LIB, and
# libasyncio's own with --core-static and --core-shared. Then also:
#   - the names libasyncio-tls.so leaves undefined and libasyncio.so
#     defines (`nm -D --undefined-only`) are all public asyncio_ names, none
#     an internal asyncio__ one: it uses only libasyncio's public calls;
#     and an asyncio_/ASYNCIO_ name it leaves undefined that libasyncio.so
#     does not export fails (it would not resolve when loaded);
#   - the same for libasyncio-tls.a against libasyncio.a (where libasyncio's
#     internal asyncio__ names are global, and a static link would take
#     them silently);
#   - the two libraries define no global name twice (a static link of both
#     would fail with "multiple definition").
#
# usage: check_symbols.sh [--test NAME] [--expect SYMBOL]
#                         [--core-static CORE_A --core-shared CORE_SO]
#                         NM STATIC_LIB SHARED_LIB
# Exit status: 0 passed, 1 failed. A failure lists the names: a new
# internal name belongs in src/names.h (src/tls/tls.h for libasyncio-tls).
set -u

me=symbols_exported
expect=asyncio_run
core_a=
core_so=
usage() {
    echo "usage: $0 [--test NAME] [--expect SYMBOL] [--core-static CORE_A --core-shared CORE_SO] NM STATIC_LIB SHARED_LIB" >&2
    exit 1
}
while [ $# -gt 0 ]; do
    case $1 in
        --test | --expect | --core-static | --core-shared)
            [ $# -ge 2 ] || usage
            case $1 in
                --test) me=$2 ;;
                --expect) expect=$2 ;;
                --core-static) core_a=$2 ;;
                --core-shared) core_so=$2 ;;
            esac
            shift 2
            ;;
        --*) usage ;;
        *) break ;;
    esac
done
[ $# -eq 3 ] || usage
if { [ -n "$core_a" ] && [ -z "$core_so" ]; } || { [ -z "$core_a" ] && [ -n "$core_so" ]; }; then
    usage
fi
nm=$1
lib_a=$2
lib_so=$3
# Where a new internal name is to be prefixed.
names_h=src/names.h
[ -n "$core_a" ] && names_h="the library's internal header (src/tls/tls.h for libasyncio-tls)"

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
    printf '%s: allowed in %s, not defined by the library'"'"'s code (made by the linker or the toolchain'"'"'s run-time):\n' \
        "$me" "$lib_so"
    sed 's/^/    /' "$tmp/so.foreign"
fi

if [ -s "$tmp/so.bad" ]; then
    fail "$lib_so exports $(wc -l <"$tmp/so.bad" | tr -d ' ') names without the asyncio_/ASYNCIO_ prefix:"
    sed 's/^/    /' "$tmp/so.bad" >&2
fi
grep -q -x "$expect" "$tmp/so" || fail "$lib_so does not export $expect"

if [ -s "$tmp/a.bad" ]; then
    fail "$lib_a defines $(wc -l <"$tmp/a.bad" | tr -d ' ') global names without the asyncio_/ASYNCIO_ prefix (they clash with a program's own; add them to $names_h):"
    sed 's/^/    /' "$tmp/a.bad" >&2
fi
grep -q -x "$expect" "$tmp/a" || fail "$lib_a does not define $expect globally"
LC_ALL=C comm -23 "$tmp/so" "$tmp/a" | grep -E '^(asyncio_|ASYNCIO_)' >"$tmp/lost"
if [ -s "$tmp/lost" ]; then
    fail "$lib_a lacks $(wc -l <"$tmp/lost" | tr -d ' ') public names that $lib_so exports:"
    sed 's/^/    /' "$tmp/lost" >&2
fi

# ---- a library layered on libasyncio: what it takes from it -------------
# Undefined names, one a line, sorted ("U NAME", "w NAME": two fields).
undefined_names() {
    awk 'NF >= 2 && $(NF-1) ~ /^[UVvw]$/ { n = $NF; sub(/@.*/, "", n); print n }' |
        LC_ALL=C sort -u
}
# list FILE: its lines, indented, several to a line.
list() {
    LC_ALL=C sort "$1" | awk '{ printf "%s%s", (NR % 4 == 1 ? (NR > 1 ? "\n    " : "    ") : " "), $0 } END { if (NR) print "" }'
}
if [ -n "$core_so" ]; then
    # libasyncio.so's dynamic names and libasyncio.a's global ones.
    if ! "$nm" -D -g --defined-only "$core_so" >"$tmp/core_so.nm" 2>"$tmp/core_so.err"; then
        cat "$tmp/core_so.err" >&2
        fail "$nm -D -g --defined-only $core_so failed"
    fi
    names <"$tmp/core_so.nm" >"$tmp/core_so"
    if ! "$nm" -g --defined-only "$core_a" >"$tmp/core_a.nm" 2>"$tmp/core_a.err"; then
        cat "$tmp/core_a.err" >&2
        fail "$nm -g --defined-only $core_a failed"
    fi
    names <"$tmp/core_a.nm" >"$tmp/core_a"
    "$nm" --defined-only "$core_a" 2>/dev/null | names >"$tmp/core_own"

    # The .so: what it leaves undefined, and which of those libasyncio.so gives.
    if ! "$nm" -D --undefined-only "$lib_so" >"$tmp/so_u.nm" 2>"$tmp/so_u.err"; then
        cat "$tmp/so_u.err" >&2
        fail "$nm -D --undefined-only $lib_so failed"
    fi
    undefined_names <"$tmp/so_u.nm" >"$tmp/so_u"
    LC_ALL=C comm -12 "$tmp/so_u" "$tmp/core_so" >"$tmp/so_from_core"
    printf '%s: %s takes %s names from %s:\n' "$me" "$lib_so" \
        "$(wc -l <"$tmp/so_from_core" | tr -d ' ')" "$core_so"
    list "$tmp/so_from_core"
    # A name libasyncio's code does not define (the linker's or toolchain's,
    # see above) is not one of its calls.
    grep -v -E '^(asyncio_|ASYNCIO_)' "$tmp/so_from_core" | LC_ALL=C comm -12 - "$tmp/core_own" >"$tmp/so_from_core.bad"
    grep -E '^asyncio__' "$tmp/so_from_core" >>"$tmp/so_from_core.bad"
    if [ -s "$tmp/so_from_core.bad" ]; then
        fail "$lib_so uses $(wc -l <"$tmp/so_from_core.bad" | tr -d ' ') names of $core_so that are not its public asyncio_ calls:"
        sed 's/^/    /' "$tmp/so_from_core.bad" >&2
    fi
    grep -E '^(asyncio_|ASYNCIO_)' "$tmp/so_u" | LC_ALL=C comm -23 - "$tmp/core_so" >"$tmp/so_unresolved"
    if [ -s "$tmp/so_unresolved" ]; then
        fail "$lib_so needs $(wc -l <"$tmp/so_unresolved" | tr -d ' ') asyncio names that $core_so does not export (they would not resolve when it is loaded):"
        sed 's/^/    /' "$tmp/so_unresolved" >&2
    fi

    # The .a: its undefined names that none of its own members define.
    if ! "$nm" --undefined-only "$lib_a" >"$tmp/a_u.nm" 2>"$tmp/a_u.err"; then
        cat "$tmp/a_u.err" >&2
        fail "$nm --undefined-only $lib_a failed"
    fi
    undefined_names <"$tmp/a_u.nm" | LC_ALL=C comm -23 - "$tmp/own" >"$tmp/a_u"
    grep -E '^(asyncio_|ASYNCIO_)' "$tmp/a_u" >"$tmp/a_from_core"
    grep -E '^asyncio__' "$tmp/a_from_core" >"$tmp/a_internal"
    if [ -s "$tmp/a_internal" ]; then
        fail "$lib_a uses $(wc -l <"$tmp/a_internal" | tr -d ' ') internal asyncio__ names of $core_a (only the public calls are allowed):"
        sed 's/^/    /' "$tmp/a_internal" >&2
    fi
    LC_ALL=C comm -23 "$tmp/a_from_core" "$tmp/core_a" >"$tmp/a_unresolved"
    if [ -s "$tmp/a_unresolved" ]; then
        fail "$lib_a needs $(wc -l <"$tmp/a_unresolved" | tr -d ' ') asyncio names that $core_a does not define globally:"
        sed 's/^/    /' "$tmp/a_unresolved" >&2
    fi
    if ! cmp -s "$tmp/a_from_core" "$tmp/so_from_core"; then
        printf '%s: note: %s and %s take different names from libasyncio (a name only one lists is used inline, or by code only one links)\n' \
            "$me" "$lib_a" "$lib_so"
    fi

    # No name defined twice.
    LC_ALL=C comm -12 "$tmp/a" "$tmp/core_a" >"$tmp/twice"
    if [ -s "$tmp/twice" ]; then
        fail "$lib_a and $core_a both define $(wc -l <"$tmp/twice" | tr -d ' ') global names (a static link of both fails):"
        sed 's/^/    /' "$tmp/twice" >&2
    fi
fi

if [ "$status" -ne 0 ]; then
    exit 1
fi
if [ -n "$core_so" ]; then
    echo "$me: passed: only asyncio_/ASYNCIO_ names are global, and only libasyncio's public asyncio_ calls are used"
else
    echo "$me: passed: only asyncio_/ASYNCIO_ names are global"
fi
exit 0
