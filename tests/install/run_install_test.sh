#!/bin/sh
# Install test for libasyncio: install the already-built project into a
# fresh temporary prefix, then build and run a small consumer program
# against that installed copy in the ways a user would:
#   1. a CMake project: find_package(asyncio) + asyncio::asyncio (shared)
#      and asyncio::asyncio_static (static);
#   2. a plain compiler call: cc main.c $(pkg-config --cflags --libs asyncio).
# With --tls ON (the build has libasyncio-tls) it checks that library's
# installed files (<asyncio/tls.h>, libasyncio-tls.so*, libasyncio-tls.a,
# asyncio-tls.pc), builds tls_main.c in the same ways (asyncio::tls,
# asyncio::tls_static, pkg-config asyncio-tls) and runs it; and checks
# with ldd that the installed libasyncio.so does not load libssl or
# libcrypto while libasyncio-tls.so does. With --tls OFF none of those
# files may be installed and the CMake package must say asyncio_HAVE_TLS
# false and define no asyncio::tls. --tls auto (the default, for a run by
# hand) takes what the installed tree has.
#
# Run by CTest (test "install_consumer", see CMakeLists.txt beside this
# file); it can also be run by hand:
#   sh tests/install/run_install_test.sh --cc cc --cmake cmake \
#      --build-dir build --source-dir tests/install/consumer [--tls ON]
#
# Exit status: 0 passed, 1 failed, 77 skipped (pkg-config not installed;
# the CMake part has then passed). Plain POSIX sh: no bash, no python.
#
# Set ASYNCIO_INSTALL_TEST_KEEP=1 to keep the temporary directory; it is
# always kept (and its path printed) when the test fails.

set -u

me=install_consumer

say() { printf '%s: %s\n' "$me" "$*"; }
fail() {
    printf '%s: FAILED: %s\n' "$me" "$*" >&2
    exit 1
}
# bounded SECONDS CMD ARGS...: run CMD under timeout(1) (TERM after SECONDS,
# KILL 2 s later; status 124 or 137 then), so that nothing this test waits
# for runs into CTest's TIMEOUT (300 s) with no word of what hung. Without
# a timeout command, CMD runs unbounded.
BUILD_LIMIT=240 # a cmake step: configure, build or install
RUN_LIMIT=30    # a consumer program (it takes 0.01 s)
bounded() {
    _limit=$1
    shift
    if command -v timeout >/dev/null 2>&1; then
        timeout --foreground -k 2 "$_limit" "$@"
    else
        "$@"
    fi
}
# why STATUS: a note for the statuses timeout(1) gives.
why() {
    case $1 in
        124 | 137) printf ' (stopped by timeout: it hung)' ;;
    esac
}
# Print a command, run it, stop the test if it fails.
run() {
    printf '+ %s\n' "$*"
    bounded "$BUILD_LIMIT" "$@" || fail "command failed (exit status $?$(why $?)): $*"
}
usage() {
    cat >&2 <<'EOF'
usage: run_install_test.sh --cc COMPILER --cmake CMAKE --build-dir DIR
                           --source-dir CONSUMER_DIR [--config CONFIG]
                           [--sanitize LIST] [--generator GEN]
                           [--make-program PROG] [--version X.Y.Z]
                           [--work-parent DIR] [--tls ON|OFF|auto]
EOF
    exit 1
}
# Physical absolute path of an existing directory.
canon_dir() { (cd "$1" 2>/dev/null && pwd -P); }

cc=
cmake=
build_dir=
source_dir=
config=
sanitize=
generator=
make_program=
version=
work_parent=
tls=auto

while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || { printf '%s: option %s needs a value\n' "$me" "$1" >&2; usage; }
    case $1 in
        --cc) cc=$2 ;;
        --cmake) cmake=$2 ;;
        --build-dir) build_dir=$2 ;;
        --source-dir) source_dir=$2 ;;
        --config) config=$2 ;;
        --sanitize) sanitize=$2 ;;
        --generator) generator=$2 ;;
        --make-program) make_program=$2 ;;
        --version) version=$2 ;;
        --work-parent) work_parent=$2 ;;
        --tls) tls=$2 ;;
        *) printf '%s: unknown option %s\n' "$me" "$1" >&2; usage ;;
    esac
    shift 2
done

if [ -z "$cc" ] || [ -z "$cmake" ] || [ -z "$build_dir" ] || [ -z "$source_dir" ]; then
    usage
fi
case $tls in
    ON | OFF | auto) ;;
    on | yes | YES | 1 | TRUE | true) tls=ON ;;
    off | no | NO | 0 | FALSE | false) tls=OFF ;;
    *) printf '%s: --tls takes ON, OFF or auto, not %s\n' "$me" "$tls" >&2; usage ;;
esac
[ -f "$build_dir/CMakeCache.txt" ] ||
    fail "$build_dir is not a configured CMake build directory (no CMakeCache.txt)"
if [ ! -f "$source_dir/main.c" ] || [ ! -f "$source_dir/CMakeLists.txt" ]; then
    fail "$source_dir does not hold the consumer project (main.c, CMakeLists.txt)"
fi
[ "$tls" = OFF ] || [ -f "$source_dir/tls_main.c" ] ||
    fail "$source_dir does not hold tls_main.c, the libasyncio-tls consumer"
command -v "$cmake" >/dev/null 2>&1 || fail "cmake not found: $cmake"
command -v "$cc" >/dev/null 2>&1 || fail "C compiler not found: $cc"
build_dir=$(canon_dir "$build_dir") || fail "cannot enter $build_dir"
source_dir=$(canon_dir "$source_dir") || fail "cannot enter $source_dir"
[ -n "$work_parent" ] || work_parent=$build_dir
mkdir -p "$work_parent" || fail "cannot create $work_parent"

# A fresh directory for every run, removed afterwards unless the test failed.
work=$(mktemp -d "$work_parent/install-consumer.XXXXXX") ||
    fail "cannot create a temporary directory in $work_parent"
work=$(canon_dir "$work")
# shellcheck disable=SC2317 # called through the trap
cleanup() {
    status=$?
    if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
        printf '%s: left the work directory for inspection: %s\n' "$me" "$work" >&2
    elif [ "${ASYNCIO_INSTALL_TEST_KEEP:-0}" != 0 ]; then
        say "kept the work directory: $work"
    else
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

prefix=$work/prefix

# Consumers of a sanitized library must be built with the same sanitizers:
# the runtime has to be linked into the executable.
san_cflags=
san_ldflags=
if [ -n "$sanitize" ]; then
    san_cflags="-fsanitize=$sanitize -fno-omit-frame-pointer"
    san_ldflags="-fsanitize=$sanitize"
    say "library built with -fsanitize=$sanitize: consumers use it too"
fi

say "work directory: $work"

# Check (with ldd, run as the consumers are) that the dynamic linker loads
# the library we installed (libasyncio.so, or the one named by $2), not
# another copy.
check_loads_installed_lib() {
    command -v ldd >/dev/null 2>&1 || return 0
    _lib=${2:-libasyncio}.so
    line=$(LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} ldd "$1" 2>/dev/null |
        grep -F "$_lib") ||
        fail "$1 does not load $_lib (ldd shows no such library)"
    path=$(printf '%s\n' "$line" | sed -n 's/.*=> *\([^ ]*\) .*/\1/p')
    if [ -z "$path" ] || [ ! -e "$path" ]; then
        fail "$1: $_lib not found at run time: $line"
    fi
    [ "$(canon_dir "$(dirname "$path")")" = "$(canon_dir "$libdir")" ] ||
        fail "$1 loads $path, not the copy installed in $libdir"
}
# check_static EXE TARGET: EXE, linked with TARGET, needs no libasyncio*.so.
check_static() {
    if command -v readelf >/dev/null 2>&1; then
        if readelf -d "$1" | grep NEEDED | grep 'libasyncio' >&2; then
            fail "$1 was linked with ${2:-asyncio::asyncio_static} but needs a shared libasyncio (above)"
        fi
    fi
}
# Run a consumer; with_libdir=1 puts the installed libdir on LD_LIBRARY_PATH.
run_consumer() {
    exe=$1
    with_libdir=$2
    [ -x "$exe" ] || fail "consumer $exe was not built"
    if [ "$with_libdir" = 1 ]; then
        printf '+ LD_LIBRARY_PATH=%s %s\n' "$libdir" "$exe"
        bounded "$RUN_LIMIT" env LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$exe" ||
            fail "consumer $exe failed (exit status $?$(why $?))"
    else
        printf '+ %s\n' "$exe"
        bounded "$RUN_LIMIT" "$exe" || fail "consumer $exe failed (exit status $?$(why $?))"
    fi
}

# --- 1. install -------------------------------------------------------------
say "== installing $build_dir into $prefix"
if [ -n "$config" ]; then
    run "$cmake" --install "$build_dir" --prefix "$prefix" --config "$config"
else
    run "$cmake" --install "$build_dir" --prefix "$prefix"
fi

# GNUInstallDirs may have picked lib, lib64 or lib/<multiarch>: find it.
pc_file=$(find "$prefix" -path '*/pkgconfig/asyncio.pc' -type f | head -n 1)
[ -n "$pc_file" ] || fail "no pkgconfig/asyncio.pc installed under $prefix"
libdir=$(dirname "$(dirname "$pc_file")")
say "installed libdir: $libdir"

header=$(find "$prefix" -path '*/asyncio.h' ! -path '*/asyncio/*' -type f | head -n 1)
[ -n "$header" ] || fail "asyncio.h not installed under $prefix"
includedir=$(dirname "$header")
# Every header the installed <asyncio.h> includes must be there beside it.
headers=$(sed -n 's|^#include <asyncio/\([A-Za-z0-9_]*\.h\)>.*|\1|p' "$header")
[ -n "$headers" ] || fail "the installed asyncio.h includes no <asyncio/*.h>"
for h in $headers; do
    [ -f "$includedir/asyncio/$h" ] || fail "header asyncio/$h not installed in $includedir"
done

[ -f "$libdir/libasyncio.a" ] || fail "static library libasyncio.a not installed in $libdir"
[ -e "$libdir/libasyncio.so" ] || fail "shared library libasyncio.so not installed in $libdir"
ls "$libdir"/libasyncio.so.* >/dev/null 2>&1 ||
    fail "no versioned shared library (libasyncio.so.N) in $libdir"
for f in asyncioConfig.cmake asyncioConfigVersion.cmake asyncioTargets.cmake; do
    [ -f "$libdir/cmake/asyncio/$f" ] || fail "$f not installed in $libdir/cmake/asyncio"
done
say "installed: headers, libasyncio.so, libasyncio.a, CMake package, asyncio.pc"

# libasyncio-tls: installed exactly when it was built.
tls_pc=$libdir/pkgconfig/asyncio-tls.pc
if [ "$tls" = auto ]; then
    if [ -f "$tls_pc" ]; then tls=ON; else tls=OFF; fi
    say "--tls auto: checking as --tls $tls (asyncio-tls.pc is$([ "$tls" = OFF ] && printf ' not') installed)"
fi
if [ "$tls" = ON ]; then
    [ -f "$includedir/asyncio/tls.h" ] || fail "header asyncio/tls.h not installed in $includedir"
    [ -f "$libdir/libasyncio-tls.a" ] || fail "static library libasyncio-tls.a not installed in $libdir"
    [ -e "$libdir/libasyncio-tls.so" ] || fail "shared library libasyncio-tls.so not installed in $libdir"
    ls "$libdir"/libasyncio-tls.so.* >/dev/null 2>&1 ||
        fail "no versioned shared library (libasyncio-tls.so.N) in $libdir"
    [ -f "$tls_pc" ] || fail "asyncio-tls.pc not installed in $libdir/pkgconfig"
    say "installed: asyncio/tls.h, libasyncio-tls.so, libasyncio-tls.a, asyncio-tls.pc"
else
    stray=$(find "$prefix" \( -name 'tls.h' -o -name 'libasyncio-tls*' -o -name 'asyncio-tls.pc' \) -print)
    if [ -n "$stray" ]; then
        printf '%s\n' "$stray" | sed 's/^/    /' >&2
        fail "libasyncio-tls was not built, but these of its files were installed (above)"
    fi
    say "installed: nothing of libasyncio-tls (not built), as it should be"
fi

# The libraries a shared library loads, one a line (ldd: all of them, as
# run with the installed libdir first; without ldd, readelf: the ones it
# names itself). Fails (status 1) if the tool does.
deps_of() {
    if command -v ldd >/dev/null 2>&1; then
        LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} ldd "$1"
    else
        readelf -d "$1" | grep NEEDED
    fi
}
if command -v ldd >/dev/null 2>&1 || command -v readelf >/dev/null 2>&1; then
    core_deps=$(deps_of "$libdir/libasyncio.so") ||
        fail "cannot list the libraries $libdir/libasyncio.so loads (ldd or readelf failed)"
    if printf '%s\n' "$core_deps" | grep -E 'libssl|libcrypto' >&2; then
        fail "the installed libasyncio.so loads OpenSSL (above): only libasyncio-tls.so may"
    fi
    say "libasyncio.so does not load libssl or libcrypto"
    if [ "$tls" = ON ]; then
        tls_deps=$(deps_of "$libdir/libasyncio-tls.so") ||
            fail "cannot list the libraries $libdir/libasyncio-tls.so loads (ldd or readelf failed)"
        for dep in libssl libcrypto libasyncio.so; do
            printf '%s\n' "$tls_deps" | grep -q -F "$dep" || {
                printf '%s\n' "$tls_deps" >&2
                fail "the installed libasyncio-tls.so does not load $dep (its libraries are above)"
            }
        done
        check_loads_installed_lib "$libdir/libasyncio-tls.so"
        say "libasyncio-tls.so loads libssl, libcrypto and the installed libasyncio.so"
    fi
else
    say "neither ldd nor readelf found: not checking which libraries the installed ones load"
fi

# --- 2. CMake consumer: find_package(asyncio) -------------------------------
if [ "$tls" = ON ]; then
    say "== CMake consumer: find_package(asyncio), asyncio::asyncio and asyncio::asyncio_static; asyncio::tls and asyncio::tls_static"
else
    say "== CMake consumer: find_package(asyncio), asyncio::asyncio and asyncio::asyncio_static; asyncio_HAVE_TLS false, no asyncio::tls"
fi
set -- -S "$source_dir" -B "$work/cmake-consumer" \
    -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$prefix" \
    -DASYNCIO_EXPECTED_PREFIX="$prefix" \
    -DASYNCIO_EXPECT_TLS="$tls" \
    -DCMAKE_BUILD_TYPE=Release
[ -n "$generator" ] && set -- "$@" -G "$generator"
[ -n "$make_program" ] && set -- "$@" -DCMAKE_MAKE_PROGRAM="$make_program"
if [ -n "$sanitize" ]; then
    set -- "$@" -DCMAKE_C_FLAGS="$san_cflags" -DCMAKE_EXE_LINKER_FLAGS="$san_ldflags"
fi
run "$cmake" "$@"
run "$cmake" --build "$work/cmake-consumer"

exe=$work/cmake-consumer/consumer_shared
run_consumer "$exe" 1
check_loads_installed_lib "$exe"
exe=$work/cmake-consumer/consumer_static
run_consumer "$exe" 0
check_static "$exe"
if [ "$tls" = ON ]; then
    exe=$work/cmake-consumer/tls_consumer_shared
    run_consumer "$exe" 1
    check_loads_installed_lib "$exe" libasyncio-tls
    check_loads_installed_lib "$exe"
    exe=$work/cmake-consumer/tls_consumer_static
    run_consumer "$exe" 0
    check_static "$exe" asyncio::tls_static
else
    for exe in "$work"/cmake-consumer/tls_consumer_*; do
        [ -e "$exe" ] && fail "libasyncio-tls was not built, but the consumer built $exe"
    done
fi
say "CMake consumer: ok"

# --- 3. pkg-config consumer ---------------------------------------------------
if ! command -v pkg-config >/dev/null 2>&1; then
    say "SKIPPED the pkg-config part: pkg-config is not installed (the CMake part passed)"
    exit 77
fi
say "== pkg-config consumer: cc main.c \$(pkg-config --cflags --libs asyncio)"
PKG_CONFIG_PATH=$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export PKG_CONFIG_PATH
say "PKG_CONFIG_PATH=$PKG_CONFIG_PATH"

pc_version=$(pkg-config --modversion asyncio) || fail "pkg-config cannot find asyncio"
say "pkg-config: asyncio $pc_version"
if [ -n "$version" ] && [ "$pc_version" != "$version" ]; then
    fail "pkg-config says version $pc_version, the project is $version"
fi
# The .pc file must point into the prefix we installed to, wherever that is.
for var in includedir libdir; do
    val=$(pkg-config --variable="$var" asyncio)
    want=$includedir
    [ "$var" = libdir ] && want=$libdir
    if [ -z "$val" ] || [ ! -d "$val" ] ||
        [ "$(canon_dir "$val")" != "$(canon_dir "$want")" ]; then
        fail "asyncio.pc: $var is '$val', not the installed $want (is the .pc relocatable?)"
    fi
done

cflags=$(pkg-config --cflags asyncio) || fail "pkg-config --cflags asyncio failed"
libs=$(pkg-config --libs asyncio) || fail "pkg-config --libs asyncio failed"
say "cflags: $cflags"
say "libs:   $libs"
exe=$work/pkgconfig-consumer
# shellcheck disable=SC2046,SC2086 # flag lists are meant to be split into words
run "$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror $san_cflags \
    -o "$exe" "$source_dir/main.c" $(pkg-config --cflags --libs asyncio) $san_ldflags
run_consumer "$exe" 1
check_loads_installed_lib "$exe"
say "pkg-config consumer: ok"

if [ "$tls" = ON ]; then
    say "== pkg-config consumer: cc tls_main.c \$(pkg-config --cflags --libs asyncio-tls)"
    pc_version=$(pkg-config --modversion asyncio-tls) || fail "pkg-config cannot find asyncio-tls"
    say "pkg-config: asyncio-tls $pc_version"
    if [ -n "$version" ] && [ "$pc_version" != "$version" ]; then
        fail "pkg-config says asyncio-tls is version $pc_version, the project is $version"
    fi
    for var in includedir libdir; do
        val=$(pkg-config --variable="$var" asyncio-tls)
        want=$includedir
        [ "$var" = libdir ] && want=$libdir
        if [ -z "$val" ] || [ ! -d "$val" ] ||
            [ "$(canon_dir "$val")" != "$(canon_dir "$want")" ]; then
            fail "asyncio-tls.pc: $var is '$val', not the installed $want (is the .pc relocatable?)"
        fi
    done
    libs=$(pkg-config --libs asyncio-tls) || fail "pkg-config --libs asyncio-tls failed"
    say "libs:   $libs"
    # It requires asyncio, so -lasyncio comes with it.
    case " $libs " in
        *" -lasyncio-tls -lasyncio "* | *" -lasyncio-tls "*" -lasyncio "*) ;;
        *) fail "pkg-config --libs asyncio-tls gives '$libs': want -lasyncio-tls, then -lasyncio" ;;
    esac
    exe=$work/pkgconfig-tls-consumer
    # shellcheck disable=SC2046,SC2086 # flag lists are meant to be split into words
    run "$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror $san_cflags \
        -o "$exe" "$source_dir/tls_main.c" $(pkg-config --cflags --libs asyncio-tls) $san_ldflags
    run_consumer "$exe" 1
    check_loads_installed_lib "$exe" libasyncio-tls
    check_loads_installed_lib "$exe"
    say "pkg-config tls consumer: ok"
elif pkg-config --exists asyncio-tls; then
    # Not from our prefix (its file is not there, checked above): say so.
    say "note: pkg-config finds an asyncio-tls elsewhere: $(pkg-config --variable=pcfiledir asyncio-tls)"
fi

say "PASSED"
exit 0
