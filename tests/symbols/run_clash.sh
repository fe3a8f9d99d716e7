#!/bin/sh
# Test symbols_static_clash: build the program clash.c, which links
# libasyncio.a statically beside functions and a variable of its own named
# like the library's internals, then run it. The target is not part of
# `all`: were the library's internal names global again, the link would
# fail here, as this test's failure, not as a broken build.
#
# usage: run_clash.sh CMAKE BUILD_DIR TARGET EXECUTABLE [CONFIG]
# Exit status: 0 passed, 1 failed.
set -u

me=symbols_static_clash
[ $# -ge 4 ] || {
    echo "usage: $0 CMAKE BUILD_DIR TARGET EXECUTABLE [CONFIG]" >&2
    exit 1
}
cmake=$1
build_dir=$2
target=$3
exe=$4
config=${5:-}

failed() {
    printf '%s: FAILED: %s\n' "$me" "$*" >&2
    exit 1
}

set -- "$cmake" --build "$build_dir" --target "$target"
if [ -n "$config" ]; then
    set -- "$@" --config "$config"
fi
printf '+ %s\n' "$*"
"$@" || failed "building $target failed: libasyncio.a's names clash with the program's (see the linker's messages above)"

printf '+ %s\n' "$exe"
"$exe" || failed "$exe exited with status $?"
echo "$me: passed"
exit 0
