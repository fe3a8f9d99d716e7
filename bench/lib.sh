# bench/lib.sh: what the benchmark scripts share; sourced, not run.

# install_missing NAME PKG...: as root on Debian, apt-get install the
# packages; otherwise say on stderr (as NAME) that they are missing.
install_missing() {
    local name=$1
    shift
    [ $# -gt 0 ] || return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "$name: installing $*" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq "$@" >/dev/null
    else
        echo "$name: missing $* (install them, or run as root on Debian)" >&2
    fi
}
